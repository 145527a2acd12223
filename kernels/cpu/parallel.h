// When the CPU kernels go parallel: an OpenMP region costs a few microseconds (more when the 2 cores are busy), so
// loops over fewer elements than this run on the calling thread. Used as `#pragma omp parallel for if(parallel_worth(n))`.
#pragma once
#include <cstdint>

namespace stepwise::cpu {

constexpr int64_t kParallelMinElements = int64_t(1) << 15;

constexpr bool parallel_worth(int64_t elements) { return elements >= kParallelMinElements; }

}  // namespace stepwise::cpu
