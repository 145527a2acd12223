// CUDA SwiGLU gate, elementwise over (N, F) in fp32 math: out = silu(gate) * up with silu(g) = g * sigmoid(g).
// Backward: dup = dout * silu(gate); dgate = dout * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate))).
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/dense.h"
#include "cuda/grid_stride.cuh"

namespace stepwise::cuda {
namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }   // expf overflow gives 0

// Thread mapping: one thread per element i of the flattened (N, F) arrays (grid-stride loop).
template <class T>
__global__ void swiglu_forward_kernel(T* __restrict__ out, const T* __restrict__ gate, const T* __restrict__ up,
                                      int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) {
    const float g = to_float(gate[i]);
    out[i] = from_float<T>(g * sigmoid(g) * to_float(up[i]));
  }
}

// Thread mapping: one thread per element i (grid-stride loop).
template <class T>
__global__ void swiglu_backward_kernel(T* __restrict__ dgate, T* __restrict__ dup, const T* __restrict__ gate,
                                       const T* __restrict__ up, const T* __restrict__ dout, int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) {
    const float g = to_float(gate[i]), u = to_float(up[i]), dy = to_float(dout[i]);
    const float s = sigmoid(g);
    dgate[i] = from_float<T>(dy * u * s * (1.f + g * (1.f - s)));
    dup[i] = from_float<T>(dy * (g * s));
  }
}

template <class T>
bool check_swiglu(const SwigluParams<T>& p, const char* op) {
  cpu::require_nonnegative(p.N, op, "N");
  cpu::require_nonnegative(p.F, op, "F");
  if (p.N == 0 || p.F == 0) return false;
  cpu::require_pointer(p.gate, op, "gate");
  cpu::require_pointer(p.up, op, "up");
  return true;
}

}  // namespace

template <class T>
void swiglu_forward(const SwigluParams<T>& p, cudaStream_t stream) {
  if (!check_swiglu(p, "cuda::swiglu_forward")) return;
  cpu::require_pointer(p.out, "cuda::swiglu_forward", "out");
  const int64_t n = p.N * p.F;
  swiglu_forward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(p.out, p.gate, p.up, n);
  STEPWISE_CUDA_LAUNCH_CHECK("swiglu_forward_kernel");
}

template <class T>
void swiglu_backward(const SwigluParams<T>& p, cudaStream_t stream) {
  const char* op = "cuda::swiglu_backward";
  if (!check_swiglu(p, op)) return;
  cpu::require_pointer(p.dout, op, "dout");
  cpu::require_pointer(p.dgate, op, "dgate");
  cpu::require_pointer(p.dup, op, "dup");
  const int64_t n = p.N * p.F;
  swiglu_backward_kernel<<<grid_stride_blocks(n), kElementwiseThreads, 0, stream>>>(p.dgate, p.dup, p.gate, p.up,
                                                                                    p.dout, n);
  STEPWISE_CUDA_LAUNCH_CHECK("swiglu_backward_kernel");
}

template void swiglu_forward<float>(const SwigluParams<float>&, cudaStream_t);
template void swiglu_forward<bf16>(const SwigluParams<bf16>&, cudaStream_t);
template void swiglu_backward<float>(const SwigluParams<float>&, cudaStream_t);
template void swiglu_backward<bf16>(const SwigluParams<bf16>&, cudaStream_t);

}  // namespace stepwise::cuda
