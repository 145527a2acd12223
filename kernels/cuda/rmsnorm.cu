// CUDA RMSNorm in fp32 math whatever T is: out = inp * rstd * weight with rstd = 1/sqrt(mean(inp^2) + eps) saved in
// fp32; the fused residual variant adds the branch into x first. Backward: dinp = rstd * (weight*dout - inp * rstd^2 *
// mean(weight*dout*inp)) per row, and dweight (fp32) += sum_n dout * inp * rstd by column, with one atomicAdd per
// (column, row group).
#include <algorithm>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/dense.h"
#include "cuda/grid_stride.cuh"

namespace stepwise::cuda {
namespace {

constexpr int kRowThreads = 256;        // threads per row block (a multiple of 32, as block_sum needs)
constexpr int kDweightRowGroups = 64;   // row groups of the dweight reduction: atomics per column

// Thread mapping: block n normalises row n; thread t handles columns t, t + blockDim.x, ...
// When branch is non-null, inp (the residual stream x) is first updated in place: x = x + branch (rounded to T).
template <class T>
__global__ void rmsnorm_forward_kernel(T* out, float* __restrict__ rstd, T* inp,
                                       const T* branch, const T* __restrict__ weight, int64_t C, float eps) {
  const int64_t n = blockIdx.x;
  T* x = inp + n * C;   // (C)
  T* y = out + n * C;   // (C)
  float sum_sq = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float v = to_float(x[c]);
    if (branch != nullptr) {
      const T updated = from_float<T>(v + to_float(branch[n * C + c]));
      x[c] = updated;            // read back below by this same thread only
      v = to_float(updated);
    }
    sum_sq += v * v;
  }
  sum_sq = block_sum(sum_sq);
  const float r = 1.f / sqrtf(sum_sq / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[n] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = from_float<T>(to_float(x[c]) * r * to_float(weight[c]));
}

// Thread mapping: block n computes dinp for row n; thread t handles columns t, t + blockDim.x, ...
template <class T>
__global__ void rmsnorm_dinp_kernel(T* __restrict__ dinp, const T* __restrict__ inp, const T* __restrict__ weight,
                                    const T* __restrict__ dout, const float* __restrict__ rstd, int64_t C,
                                    bool accumulate) {
  const int64_t n = blockIdx.x;
  const T* x = inp + n * C;    // (C)
  const T* g = dout + n * C;   // (C)
  T* dx = dinp + n * C;        // (C)
  const float r = rstd[n];
  float dot = 0.f;   // sum_c weight * dout * inp
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += to_float(weight[c]) * to_float(g[c]) * to_float(x[c]);
  dot = block_sum(dot);
  const float coef = r * r * dot / static_cast<float>(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = r * (to_float(weight[c]) * to_float(g[c]) - to_float(x[c]) * coef);
    dx[c] = from_float<T>(accumulate ? to_float(dx[c]) + d : d);
  }
}

// Thread mapping: blockIdx.x * blockDim.x + threadIdx.x is the column c; blockIdx.y is a row group taking rows
// blockIdx.y, blockIdx.y + gridDim.y, ...; each thread sums its rows in fp32 and adds once into dweight[c].
template <class T>
__global__ void rmsnorm_dweight_kernel(float* __restrict__ dweight, const T* __restrict__ inp,
                                       const T* __restrict__ dout, const float* __restrict__ rstd, int64_t N,
                                       int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.f;
  for (int64_t n = blockIdx.y; n < N; n += gridDim.y)
    acc += to_float(dout[n * C + c]) * to_float(inp[n * C + c]) * rstd[n];
  atomicAdd(dweight + c, acc);
}

template <class T>
void check_rmsnorm(const RmsNormParams<T, float>& p, const char* op) {
  cpu::require_nonnegative(p.N, op, "N");
  if (p.C <= 0) cpu::kernel_fail(op, "C = ", p.C, " must be positive");
  if (!(p.eps >= 0.f)) cpu::kernel_fail(op, "eps = ", p.eps, " must be >= 0");
  if (p.N > 0x7fffffff) cpu::kernel_fail(op, "N = ", p.N, " exceeds the grid limit of 2^31 - 1 rows");
  if (p.N == 0) return;
  cpu::require_pointer(p.weight, op, "weight");
  cpu::require_pointer(p.rstd, op, "rstd");
}

}  // namespace

template <class T>
void rmsnorm_forward(const RmsNormParams<T, float>& p, cudaStream_t stream) {
  check_rmsnorm(p, "cuda::rmsnorm_forward");
  if (p.N == 0) return;
  cpu::require_pointer(p.inp, "cuda::rmsnorm_forward", "inp");
  cpu::require_pointer(p.out, "cuda::rmsnorm_forward", "out");
  // inp is only read when branch is null; the cast lets one kernel serve both variants.
  rmsnorm_forward_kernel<<<static_cast<unsigned>(p.N), kRowThreads, 0, stream>>>(
      p.out, p.rstd, const_cast<T*>(p.inp), static_cast<const T*>(nullptr), p.weight, p.C, p.eps);
  STEPWISE_CUDA_LAUNCH_CHECK("rmsnorm_forward_kernel");
}

template <class T>
void add_rmsnorm_forward(T* x, const T* branch, const RmsNormParams<T, float>& p, cudaStream_t stream) {
  check_rmsnorm(p, "cuda::add_rmsnorm_forward");
  if (p.N == 0) return;
  cpu::require_pointer(x, "cuda::add_rmsnorm_forward", "x");
  cpu::require_pointer(branch, "cuda::add_rmsnorm_forward", "branch");
  cpu::require_pointer(p.out, "cuda::add_rmsnorm_forward", "out");
  rmsnorm_forward_kernel<<<static_cast<unsigned>(p.N), kRowThreads, 0, stream>>>(p.out, p.rstd, x, branch, p.weight,
                                                                                 p.C, p.eps);
  STEPWISE_CUDA_LAUNCH_CHECK("rmsnorm_forward_kernel (add)");
}

template <class T>
void rmsnorm_backward(const RmsNormParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::rmsnorm_backward";
  check_rmsnorm(p, op);
  if (p.N == 0) return;
  cpu::require_pointer(p.inp, op, "inp");
  cpu::require_pointer(p.dout, op, "dout");
  cpu::require_pointer(p.dinp, op, "dinp");
  cpu::require_pointer(p.dweight, op, "dweight");
  rmsnorm_dinp_kernel<<<static_cast<unsigned>(p.N), kRowThreads, 0, stream>>>(p.dinp, p.inp, p.weight, p.dout, p.rstd,
                                                                              p.C, p.accumulate_dinp);
  STEPWISE_CUDA_LAUNCH_CHECK("rmsnorm_dinp_kernel");
  const dim3 grid(static_cast<unsigned>(ceil_div(p.C, kElementwiseThreads)),
                  static_cast<unsigned>(std::min<int64_t>(p.N, kDweightRowGroups)));
  rmsnorm_dweight_kernel<<<grid, kElementwiseThreads, 0, stream>>>(p.dweight, p.inp, p.dout, p.rstd, p.N, p.C);
  STEPWISE_CUDA_LAUNCH_CHECK("rmsnorm_dweight_kernel");
}

template void rmsnorm_forward<float>(const RmsNormParams<float, float>&, cudaStream_t);
template void rmsnorm_forward<bf16>(const RmsNormParams<bf16, float>&, cudaStream_t);
template void add_rmsnorm_forward<float>(float*, const float*, const RmsNormParams<float, float>&, cudaStream_t);
template void add_rmsnorm_forward<bf16>(bf16*, const bf16*, const RmsNormParams<bf16, float>&, cudaStream_t);
template void rmsnorm_backward<float>(const RmsNormParams<float, float>&, cudaStream_t);
template void rmsnorm_backward<bf16>(const RmsNormParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
