// MoE permute (tokens into expert-grouped rows) and combine (weighted sum of expert rows back per token) on the
// device, with their backwards (semantics in kernels/ops/moe.h, oracle kernels/cpu/route_plan.cpp). Every kernel
// is one block per output row with threads over the C features; the backwards loop over tokens, so they need no
// atomics. Sums are in fp32. Rows of the plan that are -1 (an out-of-range expert id) are skipped.
#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/moe.h"

namespace stepwise::cuda {
namespace {

using cpu::kernel_fail;
using cpu::require_pointer;

constexpr int kThreads = 256;

// Checks the plan and the dims (R = N*K rows; the row arrays are needed only when R > 0).
void check_plan(const RoutePlan* plan, int64_t C, const char* op) {
  require_pointer(plan, op, "plan");
  if (plan->N < 0 || plan->K < 0 || C < 0)
    kernel_fail(op, "plan.N, plan.K, C = ", plan->N, ", ", plan->K, ", ", C, " must be >= 0");
  if (plan->N * plan->K > 0) {
    require_pointer(plan->row_token, op, "plan.row_token");
    require_pointer(plan->row_of_slot, op, "plan.row_of_slot");
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// xp[r] = x[row_token[r]]: block r copies one row, as 16-byte chunks (C_chunks of them) when `Chunk` is uint4 and
// rows are 16-byte aligned, else element by element (Chunk = T, C_chunks = C).
template <class Chunk>
__global__ void permute_forward_kernel(Chunk* xp, const Chunk* x, const int32_t* row_token, int64_t C_chunks) {
  const int64_t r = blockIdx.x;
  const int32_t n = row_token[r];
  if (n < 0) return;
  const Chunk* src = x + static_cast<int64_t>(n) * C_chunks;   // (C_chunks)
  Chunk* dst = xp + r * C_chunks;                              // (C_chunks)
  for (int64_t c = threadIdx.x; c < C_chunks; c += blockDim.x) dst[c] = src[c];
}

// dx[n] (+)= sum_k dxp[row_of_slot[n*K+k]]: block n.
template <class T>
__global__ void permute_backward_kernel(T* dx, const T* dxp, const int32_t* row_of_slot, int K, int64_t C,
                                        bool accumulate) {
  const int64_t n = blockIdx.x;
  const int32_t* rows = row_of_slot + n * K;   // (K)
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = accumulate ? to_float(dx[n * C + c]) : 0.f;
    for (int k = 0; k < K; ++k)
      if (rows[k] >= 0) acc += to_float(dxp[static_cast<int64_t>(rows[k]) * C + c]);
    dx[n * C + c] = from_float<T>(acc);
  }
}

// y[n] (+)= sum_k weights[n,k] * yp[row_of_slot[n*K+k]]: block n, slots added in order k = 0..K-1.
template <class T>
__global__ void combine_forward_kernel(T* y, const T* yp, const float* weights, const int32_t* row_of_slot, int K,
                                       int64_t C, bool accumulate) {
  const int64_t n = blockIdx.x;
  const int32_t* rows = row_of_slot + n * K;   // (K)
  const float* w = weights + n * K;            // (K)
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = accumulate ? to_float(y[n * C + c]) : 0.f;
    for (int k = 0; k < K; ++k)
      if (rows[k] >= 0) acc += w[k] * to_float(yp[static_cast<int64_t>(rows[k]) * C + c]);
    y[n * C + c] = from_float<T>(acc);
  }
}

// Block n: for each slot k with row r, dyp[r] = weights[n,k] * dy[n] and dweights[n,k] = dot(dy[n], yp[r]) (a block
// reduction; blockDim.x a multiple of 32). Either output may be null; the branches are uniform over the block.
template <class T>
__global__ void combine_backward_kernel(T* dyp, float* dweights, const T* dy, const T* yp, const float* weights,
                                        const int32_t* row_of_slot, int K, int64_t C) {
  const int64_t n = blockIdx.x;
  const T* grad = dy + n * C;   // (C)
  for (int k = 0; k < K; ++k) {
    const int32_t r = row_of_slot[n * K + k];
    if (r < 0) continue;
    const float w = dyp ? weights[n * K + k] : 0.f;
    float partial = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float d = to_float(grad[c]);
      if (dyp) dyp[static_cast<int64_t>(r) * C + c] = from_float<T>(w * d);
      if (dweights) partial += d * to_float(yp[static_cast<int64_t>(r) * C + c]);
    }
    if (dweights) {
      const float dot = block_sum(partial);
      if (threadIdx.x == 0) dweights[n * K + k] = dot;
    }
  }
}

}  // namespace

template <class T>
void permute_forward(const PermuteParams<T>& p, cudaStream_t stream) {
  const char* op = "cuda::permute_forward";
  check_plan(p.plan, p.C, op);
  const int64_t R = p.plan->N * p.plan->K, C = p.C;
  if (R == 0 || C == 0) return;
  require_pointer(p.xp, op, "xp");
  require_pointer(p.x, op, "x");
  constexpr int64_t per_chunk = 16 / sizeof(T);
  if (C % per_chunk == 0 && aligned16(p.x) && aligned16(p.xp)) {
    permute_forward_kernel<uint4><<<static_cast<unsigned>(R), 128, 0, stream>>>(
        reinterpret_cast<uint4*>(p.xp), reinterpret_cast<const uint4*>(p.x), p.plan->row_token, C / per_chunk);
  } else {
    permute_forward_kernel<T><<<static_cast<unsigned>(R), 128, 0, stream>>>(p.xp, p.x, p.plan->row_token, C);
  }
  STEPWISE_CUDA_LAUNCH_CHECK("permute_forward_kernel");
}

template <class T>
void permute_backward(const PermuteParams<T>& p, cudaStream_t stream) {
  const char* op = "cuda::permute_backward";
  check_plan(p.plan, p.C, op);
  const int64_t N = p.plan->N, C = p.C;
  if (N == 0 || C == 0) return;
  require_pointer(p.dx, op, "dx");
  if (p.plan->K > 0) require_pointer(p.dxp, op, "dxp");
  permute_backward_kernel<T><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
      p.dx, p.dxp, p.plan->row_of_slot, static_cast<int>(p.plan->K), C, p.accumulate_dx);
  STEPWISE_CUDA_LAUNCH_CHECK("permute_backward_kernel");
}

template <class T>
void combine_forward(const CombineParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::combine_forward";
  check_plan(p.plan, p.C, op);
  const int64_t N = p.plan->N, C = p.C;
  if (N == 0 || C == 0) return;
  require_pointer(p.y, op, "y");
  if (p.plan->K > 0) {
    require_pointer(p.yp, op, "yp");
    require_pointer(p.weights, op, "weights");
  }
  combine_forward_kernel<T><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
      p.y, p.yp, p.weights, p.plan->row_of_slot, static_cast<int>(p.plan->K), C, p.accumulate_y);
  STEPWISE_CUDA_LAUNCH_CHECK("combine_forward_kernel");
}

// dyp and dweights may each be null when the caller does not need that gradient.
template <class T>
void combine_backward(const CombineParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::combine_backward";
  check_plan(p.plan, p.C, op);
  const int64_t N = p.plan->N, K = p.plan->K, C = p.C;
  if (N * K == 0 || (!p.dyp && !p.dweights)) return;
  if (C == 0) {   // empty rows: every dot product is 0
    if (p.dweights) STEPWISE_CUDA_CHECK(cudaMemsetAsync(p.dweights, 0, sizeof(float) * N * K, stream));
    return;
  }
  require_pointer(p.dy, op, "dy");
  if (p.dyp) require_pointer(p.weights, op, "weights");
  if (p.dweights) require_pointer(p.yp, op, "yp");
  combine_backward_kernel<T><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
      p.dyp, p.dweights, p.dy, p.yp, p.weights, p.plan->row_of_slot, static_cast<int>(K), C);
  STEPWISE_CUDA_LAUNCH_CHECK("combine_backward_kernel");
}

#define STEPWISE_INSTANTIATE_ROUTE_OPS(T)                                                  \
  template void permute_forward<T>(const PermuteParams<T>&, cudaStream_t);                 \
  template void permute_backward<T>(const PermuteParams<T>&, cudaStream_t);                \
  template void combine_forward<T>(const CombineParams<T, float>&, cudaStream_t);          \
  template void combine_backward<T>(const CombineParams<T, float>&, cudaStream_t);
STEPWISE_INSTANTIATE_ROUTE_OPS(float)
STEPWISE_INSTANTIATE_ROUTE_OPS(bf16)
#undef STEPWISE_INSTANTIATE_ROUTE_OPS

}  // namespace stepwise::cuda
