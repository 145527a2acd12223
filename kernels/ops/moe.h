// MoE ops: router (softmax over experts in fp32-or-wider math, top-k, optional renormalisation, auxiliary
// load-balancing loss, loss-free expert bias), the routing plan (tokens grouped by expert), permute / combine,
// and grouped per-expert linears. See kernels/ops.h for conventions.
#pragma once
#include <cstdint>

namespace stepwise {

// probs = softmax(logits); top-k is chosen on probs + bias (bias only steers selection: DeepSeek-V3's loss-free
// balancing) and weights = probs[idx] (divided by their sum when renormalize). Ties break toward the lower expert id.
// Auxiliary loss (Switch/GShard): aux = aux_coef * E * sum_e f_e * P_e with f_e = count_e / (N*K) (no gradient)
// and P_e = mean_n probs[n, e]. Backward: dlogits = d(weights)/d(logits)^T dweights + d(aux)/d(logits).
template <class T, class S = T>
struct RouterParams {
  S* probs = nullptr;              // (N, E)  saved
  int32_t* idx = nullptr;          // (N, K)  chosen experts, in descending order of probs + bias
  S* weights = nullptr;            // (N, K)
  S* load = nullptr;               // (E)     f_e, the fraction of routed slots per expert (for logging and bias updates)
  S* aux_loss = nullptr;           // (1)     forward output (0 when aux_coef == 0); may be null
  const T* logits = nullptr;       // (N, E)
  const float* bias = nullptr;     // (E)     selection bias or null
  T* dlogits = nullptr;            // (N, E)  backward: =
  const S* dweights = nullptr;     // (N, K)
  int64_t N = 0, E = 0, K = 0;
  bool renormalize = false;
  double aux_coef = 0;
};

// The routing plan groups the R = N*K assignments (token n, slot k) by expert, stably (by n within an expert).
struct RoutePlan {
  int64_t* offsets = nullptr;       // (E + 1)  rows of expert e are [offsets[e], offsets[e+1])
  int32_t* row_token = nullptr;     // (R)      token of each permuted row
  int32_t* row_of_slot = nullptr;   // (R)      permuted row of assignment n*K + k
  const int32_t* idx = nullptr;     // (N, K)
  int64_t N = 0, E = 0, K = 0;
};

// Permute: xp[r] = x[row_token[r]]. Backward: dx[n] = sum of dxp over n's rows (=).
template <class T>
struct PermuteParams {
  T* xp = nullptr;                 // (R, C)
  const T* x = nullptr;            // (N, C)
  T* dx = nullptr;                 // (N, C)  backward: = (or += when accumulate_dx)
  const T* dxp = nullptr;          // (R, C)
  const RoutePlan* plan = nullptr;
  int64_t C = 0;
  bool accumulate_dx = false;
};

// Combine: y[n] (+)= sum_k weights[n,k] * yp[row_of_slot[n*K+k]].
// Backward: dyp[r] = weights * dy[n] (=), dweights[n,k] = dot(dy[n], yp[r]) (=).
template <class T, class S = T>
struct CombineParams {
  T* y = nullptr;                  // (N, C)
  const T* yp = nullptr;           // (R, C)
  const S* weights = nullptr;      // (N, K)
  T* dyp = nullptr;                // (R, C)
  S* dweights = nullptr;           // (N, K)
  const T* dy = nullptr;           // (N, C)
  const RoutePlan* plan = nullptr;
  int64_t C = 0;
  bool accumulate_y = false;       // forward: y += instead of y =
};

// Per-expert linear over the permuted rows: out[r] = inp[r] W_e^T for r in expert e's rows; W stored (E, O, I).
template <class T, class S = T>
struct GroupedLinearParams {
  T* out = nullptr;                // (R, O)
  const T* inp = nullptr;          // (R, I)
  const T* weight = nullptr;       // (E, O, I)
  T* dinp = nullptr;               // (R, I)    backward: =; may be null
  S* dweight = nullptr;            // (E, O, I) backward: +=; may be null
  const T* dout = nullptr;         // (R, O)
  const int64_t* offsets = nullptr;// (E + 1)
  int64_t E = 0, I = 0, O = 0;
};

namespace cpu {
template <class T> void router_forward(const RouterParams<T>& p);
template <class T> void router_backward(const RouterParams<T>& p);   // needs probs, idx, weights, dweights
void route_plan_build(const RoutePlan& plan);                        // fills offsets, row_token, row_of_slot from idx
template <class T> void permute_forward(const PermuteParams<T>& p);
template <class T> void permute_backward(const PermuteParams<T>& p);
template <class T> void combine_forward(const CombineParams<T>& p);
template <class T> void combine_backward(const CombineParams<T>& p);
template <class T> void grouped_linear_forward(const GroupedLinearParams<T>& p);
template <class T> void grouped_linear_backward(const GroupedLinearParams<T>& p);
}  // namespace cpu

}  // namespace stepwise
