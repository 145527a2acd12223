// CUDA reductions and scaling over fp32 arrays for gradient clipping and overflow checks: sum of squares (fp32 block
// sums added atomically into a device scalar), count of non-finite values (int32, atomic), in-place scaling. Results
// stay on the device so a training step needs no host synchronisation until the caller reads them.
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/grid_stride.cuh"
#include "cuda/optim.h"

namespace stepwise::cuda {
namespace {

// Blocks of the reductions: enough to fill the GPU, few enough that the final atomics are negligible.
constexpr int64_t kReduceBlocks = 1024;

// Thread mapping: grid-stride loop over elements; each thread sums x^2 in double (its share can be long), the block
// reduces in fp32 and thread 0 adds the block sum into *out.
__global__ void sum_squares_kernel(const float* __restrict__ x, int64_t n, float* __restrict__ out) {
  double acc = 0;
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) {
    const double v = x[i];
    acc += v * v;
  }
  const float block = block_sum(static_cast<float>(acc));
  if (threadIdx.x == 0) atomicAdd(out, block);
}

// Thread mapping: grid-stride loop over elements; each warp sums its threads' counts and lane 0 adds a non-zero count.
__global__ void count_nonfinite_kernel(const float* __restrict__ x, int64_t n, int32_t* __restrict__ out) {
  int count = 0;
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) count += isfinite(x[i]) ? 0 : 1;
  for (int o = 16; o > 0; o >>= 1) count += __shfl_xor_sync(0xffffffffu, count, o);
  if (threadIdx.x % 32 == 0 && count != 0) atomicAdd(out, count);
}

// Thread mapping: one thread per element (grid-stride loop).
__global__ void scale_kernel(float* __restrict__ x, int64_t n, float s) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) x[i] *= s;
}

unsigned reduce_blocks(int64_t n) {
  const int64_t blocks = ceil_div(n, kElementwiseThreads);
  return static_cast<unsigned>(blocks < kReduceBlocks ? blocks : kReduceBlocks);
}

}  // namespace

void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream) {
  cpu::require_nonnegative(n, "cuda::sum_squares", "n");
  if (n == 0) return;
  cpu::require_pointer(x, "cuda::sum_squares", "x");
  cpu::require_pointer(out, "cuda::sum_squares", "out");
  sum_squares_kernel<<<reduce_blocks(n), kElementwiseThreads, 0, stream>>>(x, n, out);
  STEPWISE_CUDA_LAUNCH_CHECK("sum_squares_kernel");
}

void count_nonfinite(const float* x, int64_t n, int32_t* out, cudaStream_t stream) {
  cpu::require_nonnegative(n, "cuda::count_nonfinite", "n");
  if (n == 0) return;
  cpu::require_pointer(x, "cuda::count_nonfinite", "x");
  cpu::require_pointer(out, "cuda::count_nonfinite", "out");
  count_nonfinite_kernel<<<reduce_blocks(n), kElementwiseThreads, 0, stream>>>(x, n, out);
  STEPWISE_CUDA_LAUNCH_CHECK("count_nonfinite_kernel");
}

void scale_inplace(float* x, int64_t n, float s, cudaStream_t stream) {
  cpu::require_nonnegative(n, "cuda::scale_inplace", "n");
  if (n == 0) return;
  cpu::require_pointer(x, "cuda::scale_inplace", "x");
  scale_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(x, n, s);
  STEPWISE_CUDA_LAUNCH_CHECK("scale_kernel");
}

}  // namespace stepwise::cuda
