// MoE router on the CPU: softmax over all experts (in double, i.e. at least fp32), top-k on probs + selection bias,
// optional renormalisation, Switch/GShard auxiliary load-balancing loss and per-expert load. Oracle for faster routers.
// N tokens, E experts, K experts per token. The aux loss enters the total loss with weight 1 (aux_coef is inside it).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/check.h"
#include "ops/moe.h"

namespace stepwise::cpu {

namespace {

constexpr int64_t kParallelMinWork = 1 << 16;  // logits below which threads cost more than they save

template <class T>
void check_router(const RouterParams<T>& p, const char* op) {
  require_positive(p.N, op, "N");
  require_positive(p.E, op, "E");
  require_positive(p.K, op, "K");
  if (p.K > p.E) kernel_fail(op, "K = ", p.K, " exceeds E = ", p.E);
  if (!(p.aux_coef >= 0)) kernel_fail(op, "aux_coef = ", p.aux_coef, " must be >= 0");
  require_pointer(p.probs, op, "probs");
  require_pointer(p.idx, op, "idx");
  require_pointer(p.weights, op, "weights");
}

// Counts of routed slots per expert (E) from idx (N, K); throws on an out-of-range id.
std::vector<int64_t> expert_counts(const int32_t* idx, int64_t N, int64_t E, int64_t K, const char* op) {
  std::vector<int64_t> counts(E, 0);
  for (int64_t a = 0; a < N * K; ++a) {
    if (idx[a] < 0 || idx[a] >= E) kernel_fail(op, "idx[", a, "] = ", idx[a], " is outside [0, ", E, ")");
    ++counts[idx[a]];
  }
  return counts;
}

}  // namespace

template <class T>
void router_forward(const RouterParams<T>& p) {
  const char* op = "router_forward";
  check_router(p, op);
  require_pointer(p.logits, op, "logits");
  require_pointer(p.load, op, "load");
  const int64_t N = p.N, E = p.E, K = p.K;

#pragma omp parallel if (N * E >= kParallelMinWork)
  {
    std::vector<double> prob(E), score(E);
    std::vector<char> taken(E);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = p.logits + n * E;  // (E)
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t e = 0; e < E; ++e) top = std::max(top, static_cast<double>(row[e]));
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += prob[e] = std::exp(static_cast<double>(row[e]) - top);
      for (int64_t e = 0; e < E; ++e) {
        prob[e] /= sum;
        p.probs[n * E + e] = static_cast<T>(prob[e]);
        score[e] = prob[e] + (p.bias ? static_cast<double>(p.bias[e]) : 0.0);
        taken[e] = 0;
      }
      double chosen_sum = 0;
      for (int64_t k = 0; k < K; ++k) {  // strict '>' scanning upward: ties go to the lower expert id
        int64_t best = -1;
        for (int64_t e = 0; e < E; ++e)
          if (!taken[e] && (best < 0 || score[e] > score[best])) best = e;
        taken[best] = 1;
        p.idx[n * K + k] = static_cast<int32_t>(best);
        chosen_sum += prob[best];
      }
      for (int64_t k = 0; k < K; ++k) {
        const double w = prob[p.idx[n * K + k]];
        p.weights[n * K + k] = static_cast<T>(p.renormalize ? w / chosen_sum : w);
      }
    }
  }

  const std::vector<int64_t> counts = expert_counts(p.idx, N, E, K, op);
  double aux = 0;
  for (int64_t e = 0; e < E; ++e) {
    const double f = static_cast<double>(counts[e]) / static_cast<double>(N * K);
    p.load[e] = static_cast<T>(f);
    if (p.aux_coef == 0) continue;
    double mean_prob = 0;
    for (int64_t n = 0; n < N; ++n) mean_prob += static_cast<double>(p.probs[n * E + e]);
    aux += f * mean_prob / static_cast<double>(N);
  }
  if (p.aux_loss) *p.aux_loss = static_cast<T>(p.aux_coef * static_cast<double>(E) * aux);
}

// dlogits[n] = J_softmax^T g with g = dL/dprobs[n]; g collects the weights' path (through the renormalisation when on)
// and the aux loss's d/dprobs[n, e] = aux_coef * E * f_e / N (f_e treated as a constant). dweights may be null.
template <class T>
void router_backward(const RouterParams<T>& p) {
  const char* op = "router_backward";
  check_router(p, op);
  require_pointer(p.dlogits, op, "dlogits");
  const int64_t N = p.N, E = p.E, K = p.K;
  const std::vector<int64_t> counts = expert_counts(p.idx, N, E, K, op);
  std::vector<double> aux_grad(E, 0.0);  // (E) d aux / d probs[n, e], the same for every n
  if (p.aux_coef != 0)
    for (int64_t e = 0; e < E; ++e)
      aux_grad[e] = p.aux_coef * static_cast<double>(E) * static_cast<double>(counts[e]) /
                    static_cast<double>(N * K) / static_cast<double>(N);

#pragma omp parallel if (N * E >= kParallelMinWork)
  {
    std::vector<double> g(E);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* prob = p.probs + n * E;  // (E)
      for (int64_t e = 0; e < E; ++e) g[e] = aux_grad[e];
      if (p.dweights) {
        const int32_t* chosen = p.idx + n * K;  // (K)
        const T* dw = p.dweights + n * K;       // (K)
        if (p.renormalize) {  // w_k = p_k / S:  dL/dp_j = (dw_j - sum_k dw_k w_k) / S for chosen j
          double S = 0, dw_dot_w = 0;
          for (int64_t k = 0; k < K; ++k) {
            S += static_cast<double>(prob[chosen[k]]);
            dw_dot_w += static_cast<double>(dw[k]) * static_cast<double>(p.weights[n * K + k]);
          }
          for (int64_t k = 0; k < K; ++k) g[chosen[k]] += (static_cast<double>(dw[k]) - dw_dot_w) / S;
        } else {
          for (int64_t k = 0; k < K; ++k) g[chosen[k]] += static_cast<double>(dw[k]);
        }
      }
      double prob_dot_g = 0;
      for (int64_t e = 0; e < E; ++e) prob_dot_g += static_cast<double>(prob[e]) * g[e];
      for (int64_t e = 0; e < E; ++e)
        p.dlogits[n * E + e] = static_cast<T>(static_cast<double>(prob[e]) * (g[e] - prob_dot_g));
    }
  }
}

template void router_forward<float>(const RouterParams<float>&);
template void router_forward<double>(const RouterParams<double>&);
template void router_backward<float>(const RouterParams<float>&);
template void router_backward<double>(const RouterParams<double>&);

}  // namespace stepwise::cpu
