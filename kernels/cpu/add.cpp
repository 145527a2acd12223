// CPU reference of the residual add y += x over n elements (OpenMP over contiguous blocks).
#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

template <class T>
void add_inplace(T* y, const T* x, int64_t n) {
  require_nonnegative(n, "add_inplace", "n");
  if (n == 0) return;
  require_pointer(y, "add_inplace", "y");
  require_pointer(x, "add_inplace", "x");
#pragma omp parallel for simd if (parallel : parallel_worth(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template void add_inplace<float>(float*, const float*, int64_t);
template void add_inplace<double>(double*, const double*, int64_t);

}  // namespace stepwise::cpu
