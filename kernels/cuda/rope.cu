// CUDA rotary embedding, rotate-half (NeoX) pairing (x[i], x[i + D/2]) over all D dims, in place on x (N, H, D).
// Angles follow the CPU reference exactly: pos * theta^(-2i/D), cos and sin in double, then rounded to fp32; the
// rotation itself is fp32 math (rounded to T on store). Backward rotates by the negative angle.
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/dense.h"
#include "cuda/grid_stride.cuh"

namespace stepwise::cuda {
namespace {

// Thread mapping: one thread per (token n, pair i), i < D/2, over a grid-stride loop of N * D/2 items; the thread
// computes the angle once and rotates pair i of all H heads of token n (consecutive threads touch consecutive i).
template <class T>
__global__ void rope_kernel(T* __restrict__ x, const int32_t* __restrict__ pos, int64_t N, int64_t H, int64_t D,
                            double theta, double sign) {
  const int64_t half = D / 2;
  for (int64_t item = global_thread_index(); item < N * half; item += global_thread_count()) {
    const int64_t n = item / half, i = item - n * half;
    const double inv_freq = pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
    const double angle = static_cast<double>(pos[n]) * inv_freq;
    double sin_d, cos_d;
    sincos(angle, &sin_d, &cos_d);
    const float cos_a = static_cast<float>(cos_d), sin_a = static_cast<float>(sign * sin_d);
    for (int64_t h = 0; h < H; ++h) {
      T* lo = x + (n * H + h) * D + i;   // x[n, h, i]
      T* hi = lo + half;                 // x[n, h, i + D/2]
      const float a = to_float(*lo), b = to_float(*hi);
      *lo = from_float<T>(a * cos_a - b * sin_a);
      *hi = from_float<T>(b * cos_a + a * sin_a);
    }
  }
}

template <class T>
void rope_rotate(const RopeParams<T>& p, double sign, const char* op, cudaStream_t stream) {
  cpu::require_nonnegative(p.N, op, "N");
  cpu::require_nonnegative(p.H, op, "H");
  if (p.D <= 0 || p.D % 2 != 0) cpu::kernel_fail(op, "D = ", p.D, " must be positive and even");
  if (!(p.theta > 0)) cpu::kernel_fail(op, "theta = ", p.theta, " must be positive");
  if (p.N == 0 || p.H == 0) return;
  cpu::require_pointer(p.x, op, "x");
  cpu::require_pointer(p.pos, op, "pos");
  rope_kernel<<<grid_stride_blocks(p.N * (p.D / 2)), kElementwiseThreads, 0, stream>>>(p.x, p.pos, p.N, p.H, p.D,
                                                                                       p.theta, sign);
  STEPWISE_CUDA_LAUNCH_CHECK("rope_kernel");
}

}  // namespace

template <class T>
void rope_forward(const RopeParams<T>& p, cudaStream_t stream) {
  rope_rotate(p, +1.0, "cuda::rope_forward", stream);
}

template <class T>
void rope_backward(const RopeParams<T>& p, cudaStream_t stream) {
  rope_rotate(p, -1.0, "cuda::rope_backward", stream);
}

template void rope_forward<float>(const RopeParams<float>&, cudaStream_t);
template void rope_forward<bf16>(const RopeParams<bf16>&, cudaStream_t);
template void rope_backward<float>(const RopeParams<float>&, cudaStream_t);
template void rope_backward<bf16>(const RopeParams<bf16>&, cudaStream_t);

}  // namespace stepwise::cuda
