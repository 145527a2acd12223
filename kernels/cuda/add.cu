// CUDA residual add y += x over n elements (fp32 math, rounded to T on store).
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/dense.h"
#include "cuda/grid_stride.cuh"

namespace stepwise::cuda {
namespace {

// Thread mapping: one thread per element i (grid-stride loop).
template <class T>
__global__ void add_inplace_kernel(T* y, const T* x, int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count())
    y[i] = from_float<T>(to_float(y[i]) + to_float(x[i]));
}

}  // namespace

template <class T>
void add_inplace(T* y, const T* x, int64_t n, cudaStream_t stream) {
  cpu::require_nonnegative(n, "cuda::add_inplace", "n");
  if (n == 0) return;
  cpu::require_pointer(y, "cuda::add_inplace", "y");
  cpu::require_pointer(x, "cuda::add_inplace", "x");
  add_inplace_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(y, x, n);
  STEPWISE_CUDA_LAUNCH_CHECK("add_inplace_kernel");
}

template void add_inplace<float>(float*, const float*, int64_t, cudaStream_t);
template void add_inplace<bf16>(bf16*, const bf16*, int64_t, cudaStream_t);

}  // namespace stepwise::cuda
