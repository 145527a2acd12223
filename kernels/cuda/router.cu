// MoE router on the device (semantics in kernels/ops/moe.h, oracle kernels/cpu/router.cpp): fp32 softmax over the E
// experts of each token, top-k on probs + bias with ties toward the lower expert id, optional renormalisation, the
// per-expert load f_e and the Switch-style auxiliary loss (both reduced over tokens on the device), and the backward.
#include <algorithm>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/moe.h"

namespace stepwise::cuda {
namespace {

using cpu::kernel_fail;
using cpu::require_pointer;

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kSharedBytes = 48 << 10;   // static limit without opting in
constexpr int kReduceThreads = 256;

// Warps per block such that `bytes_per_warp` of dynamic shared memory each fits in kSharedBytes.
int warps_for(int64_t bytes_per_warp) {
  return static_cast<int>(std::clamp<int64_t>(kSharedBytes / bytes_per_warp, 1, kWarpsPerBlock));
}

template <class T>
void check_router(const RouterParams<T, float>& p, const char* op) {
  if (p.N < 0 || p.E < 0 || p.K < 0) kernel_fail(op, "N, E, K = ", p.N, ", ", p.E, ", ", p.K, " must be >= 0");
  if (p.K > p.E) kernel_fail(op, "K = ", p.K, " exceeds E = ", p.E);
  if (p.E * 12 > kSharedBytes) kernel_fail(op, "E = ", p.E, " exceeds the ", kSharedBytes / 12, " experts supported");
  if (!(p.aux_coef >= 0)) kernel_fail(op, "aux_coef = ", p.aux_coef, " must be >= 0");
  require_pointer(p.probs, op, "probs");
  require_pointer(p.idx, op, "idx");
  require_pointer(p.weights, op, "weights");
}

// One warp per token n; lane l handles experts e = l, l+32, ... Dynamic shared memory per warp: prob (E floats),
// score = prob + bias (E floats) and rank (E ints: 0 = not chosen, k+1 = chosen in slot k). Top-k takes K rounds of
// a warp argmax over the unchosen experts under the order (score descending, id ascending), which is the CPU's
// upward scan with strict '>'. Counts of routed slots per expert are added as uint32 into `counts` (the bits of load).
template <class T>
__global__ void router_forward_kernel(const T* logits, const float* bias, float* probs, int32_t* idx, float* weights,
                                      unsigned* counts, int64_t N, int E, int K, bool renormalize) {
  extern __shared__ float router_smem[];
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * warps + warp;
  if (n >= N) return;   // the whole warp leaves together; the kernel has no block-wide barrier
  float* prob = router_smem + static_cast<int64_t>(warp) * E;               // (E)
  float* score = router_smem + static_cast<int64_t>(warps + warp) * E;      // (E)
  int* rank = reinterpret_cast<int*>(router_smem + static_cast<int64_t>(2 * warps) * E) + warp * E;   // (E)
  const T* row = logits + n * E;                                            // (E)

  float top = -INFINITY;
  for (int e = lane; e < E; e += 32) top = fmaxf(top, to_float(row[e]));
  top = warp_max(top);
  float sum = 0.f;
  for (int e = lane; e < E; e += 32) {
    const float x = expf(to_float(row[e]) - top);
    prob[e] = x;
    sum += x;
  }
  sum = warp_sum(sum);
  for (int e = lane; e < E; e += 32) {   // each lane rereads only its own entries: no barrier needed yet
    const float pe = prob[e] / sum;
    prob[e] = pe;
    probs[n * E + e] = pe;
    score[e] = pe + (bias ? bias[e] : 0.f);
    rank[e] = 0;
  }
  __syncwarp();

  float chosen_sum = 0.f;
  for (int k = 0; k < K; ++k) {
    float best_score = 0.f;
    int best = -1;
    for (int e = lane; e < E; e += 32)   // ascending e with strict '>': the lowest id wins ties within the lane
      if (rank[e] == 0 && (best < 0 || score[e] > best_score)) best_score = score[e], best = e;
    for (int o = 16; o > 0; o >>= 1) {   // butterfly: every lane ends with the same winner
      const float other_score = __shfl_xor_sync(0xffffffffu, best_score, o);
      const int other = __shfl_xor_sync(0xffffffffu, best, o);
      const bool take = other >= 0 && (best < 0 || other_score > best_score ||
                                       (other_score == best_score && other < best));
      if (take) best_score = other_score, best = other;
    }
    if (lane == 0) {
      rank[best] = k + 1;
      idx[n * K + k] = best;
      atomicAdd(counts + best, 1u);
    }
    chosen_sum += prob[best];   // in slot order, identically in every lane
    __syncwarp();               // rank[best] is visible before the next round
  }
  for (int e = lane; e < E; e += 32)
    if (rank[e] > 0) weights[n * K + rank[e] - 1] = renormalize ? prob[e] / chosen_sum : prob[e];
}

// aux_loss += scale * sum_{n,e} count_e * probs[n, e], scale = aux_coef * E / (N * N * K). Grid-stride over the
// N*E probabilities; each thread sums in double, each block reduces and adds its part atomically.
__global__ void router_aux_loss_kernel(const float* probs, const unsigned* counts, int64_t total, int E, double scale,
                                       float* aux_loss) {
  double acc = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    acc += static_cast<double>(counts[i % E]) * static_cast<double>(probs[i]);
  const float block_total = block_sum(static_cast<float>(acc * scale));
  if (threadIdx.x == 0) atomicAdd(aux_loss, block_total);
}

// load[e] = count_e / (N*K), in place over the uint32 counts held in load's bits. One thread per expert.
__global__ void router_load_finalize_kernel(float* load, int E, double slots) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= E) return;
  const unsigned count = reinterpret_cast<const unsigned*>(load)[e];
  load[e] = static_cast<float>(static_cast<double>(count) / slots);
}

// One warp per token n; dynamic shared memory g (E floats) per warp: g = dL/dprobs[n] (aux part aux_scale * load_e,
// plus the weights' path at the chosen experts), then dlogits[n] = probs[n] * (g - <probs[n], g>).
template <class T>
__global__ void router_backward_kernel(const float* probs, const int32_t* idx, const float* weights,
                                       const float* dweights, const float* load, float aux_scale, T* dlogits,
                                       int64_t N, int E, int K, bool renormalize) {
  extern __shared__ float router_smem[];
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * warps + warp;
  if (n >= N) return;
  float* g = router_smem + static_cast<int64_t>(warp) * E;   // (E)
  const float* prob = probs + n * E;                          // (E)
  for (int e = lane; e < E; e += 32) g[e] = load ? aux_scale * load[e] : 0.f;
  __syncwarp();
  if (dweights) {
    const int32_t* chosen = idx + n * K;      // (K)
    const float* dw = dweights + n * K;       // (K)
    float S = 1.f, dw_dot_w = 0.f;
    if (renormalize) {   // w_k = p_k / S: dL/dp_j = (dw_j - sum_k dw_k w_k) / S for chosen j
      float s = 0.f, d = 0.f;
      for (int k = lane; k < K; k += 32) {
        const int e = chosen[k];
        if (e >= 0 && e < E) s += prob[e];
        d += dw[k] * weights[n * K + k];
      }
      S = warp_sum(s);
      dw_dot_w = warp_sum(d);
    }
    for (int k = lane; k < K; k += 32) {   // chosen experts are distinct: no two lanes update the same g[e]
      const int e = chosen[k];
      if (e >= 0 && e < E) g[e] += renormalize ? (dw[k] - dw_dot_w) / S : dw[k];
    }
    __syncwarp();
  }
  float dot = 0.f;
  for (int e = lane; e < E; e += 32) dot += prob[e] * g[e];
  dot = warp_sum(dot);
  for (int e = lane; e < E; e += 32) dlogits[n * E + e] = from_float<T>(prob[e] * (g[e] - dot));
}

int reduce_blocks(int64_t total) {
  const int sms = multiprocessor_count();
  return static_cast<int>(std::clamp<int64_t>(ceil_div(total, kReduceThreads * 8), 1, 4 * sms));
}

}  // namespace

template <class T>
void router_forward(const RouterParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::router_forward";
  check_router(p, op);
  require_pointer(p.logits, op, "logits");
  require_pointer(p.load, op, "load");
  if (p.N == 0 || p.E == 0 || p.K == 0) return;
  const int E = static_cast<int>(p.E), K = static_cast<int>(p.K);
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(p.load, 0, sizeof(float) * p.E, stream));   // uint32 counts start at 0
  if (p.aux_loss) STEPWISE_CUDA_CHECK(cudaMemsetAsync(p.aux_loss, 0, sizeof(float), stream));
  unsigned* counts = reinterpret_cast<unsigned*>(p.load);
  static_assert(sizeof(unsigned) == sizeof(float));

  const int64_t bytes_per_warp = 12 * p.E;
  const int warps = warps_for(bytes_per_warp);
  router_forward_kernel<T><<<static_cast<unsigned>(ceil_div(p.N, warps)), 32 * warps, warps * bytes_per_warp,
                             stream>>>(p.logits, p.bias, p.probs, p.idx, p.weights, counts, p.N, E, K,
                                       p.renormalize);
  STEPWISE_CUDA_LAUNCH_CHECK("router_forward_kernel");
  if (p.aux_loss && p.aux_coef != 0) {
    const double n = static_cast<double>(p.N);
    const double scale = p.aux_coef * static_cast<double>(p.E) / (n * n * static_cast<double>(p.K));
    router_aux_loss_kernel<<<reduce_blocks(p.N * p.E), kReduceThreads, 0, stream>>>(p.probs, counts, p.N * p.E, E,
                                                                                    scale, p.aux_loss);
    STEPWISE_CUDA_LAUNCH_CHECK("router_aux_loss_kernel");
  }
  router_load_finalize_kernel<<<static_cast<unsigned>(ceil_div(p.E, 256)), 256, 0, stream>>>(
      p.load, E, static_cast<double>(p.N) * static_cast<double>(p.K));
  STEPWISE_CUDA_LAUNCH_CHECK("router_load_finalize_kernel");
}

// Unlike the CPU (which recounts idx), the aux term's f_e is read from load, the forward's output (needed when
// aux_coef > 0); the values agree up to fp32 rounding of count_e / (N*K).
template <class T>
void router_backward(const RouterParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::router_backward";
  check_router(p, op);
  require_pointer(p.dlogits, op, "dlogits");
  if (p.aux_coef != 0) require_pointer(p.load, op, "load (f_e of the forward, needed when aux_coef > 0)");
  if (p.N == 0 || p.E == 0 || p.K == 0) return;
  const int64_t bytes_per_warp = 4 * p.E;
  const int warps = warps_for(bytes_per_warp);
  const float aux_scale = static_cast<float>(p.aux_coef * static_cast<double>(p.E) / static_cast<double>(p.N));
  router_backward_kernel<T><<<static_cast<unsigned>(ceil_div(p.N, warps)), 32 * warps, warps * bytes_per_warp,
                              stream>>>(p.probs, p.idx, p.weights, p.dweights, p.aux_coef != 0 ? p.load : nullptr,
                                        aux_scale, p.dlogits, p.N, static_cast<int>(p.E), static_cast<int>(p.K),
                                        p.renormalize);
  STEPWISE_CUDA_LAUNCH_CHECK("router_backward_kernel");
}

template void router_forward<float>(const RouterParams<float, float>&, cudaStream_t);
template void router_forward<bf16>(const RouterParams<bf16, float>&, cudaStream_t);
template void router_backward<float>(const RouterParams<float, float>&, cudaStream_t);
template void router_backward<bf16>(const RouterParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
