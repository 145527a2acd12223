// CUDA conversions between fp32 and bf16 arrays (round to nearest even; bf16 -> fp32 is exact): the bf16 weight copy
// for the forward, test inputs, and reading bf16 results back as fp32.
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/grid_stride.cuh"
#include "cuda/optim.h"

namespace stepwise::cuda {
namespace {

// Thread mapping: one thread per element (grid-stride loop).
template <class In, class Out>
__global__ void convert_kernel(const In* __restrict__ in, Out* __restrict__ out, int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) out[i] = from_float<Out>(to_float(in[i]));
}

template <class In, class Out>
void launch_convert(const In* in, Out* out, int64_t n, cudaStream_t stream) {
  cpu::require_nonnegative(n, "cuda::convert", "n");
  if (n == 0) return;
  cpu::require_pointer(in, "cuda::convert", "in");
  cpu::require_pointer(out, "cuda::convert", "out");
  convert_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(in, out, n);
  STEPWISE_CUDA_LAUNCH_CHECK("convert_kernel");
}

}  // namespace

void convert(const float* in, bf16* out, int64_t n, cudaStream_t stream) { launch_convert(in, out, n, stream); }
void convert(const bf16* in, float* out, int64_t n, cudaStream_t stream) { launch_convert(in, out, n, stream); }

}  // namespace stepwise::cuda
