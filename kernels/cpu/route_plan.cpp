// The MoE routing plan on the CPU: a stable counting sort of the N*K assignments by expert, and the permute (tokens
// into expert-grouped rows) and combine (weighted sum of expert rows back per token) ops with their backwards.
// R = N*K permuted rows, C features. Both backwards loop over tokens, so they write without races and need no atomics.
#include <vector>

#include "cpu/check.h"
#include "ops/moe.h"

namespace stepwise::cpu {

namespace {

constexpr int64_t kParallelMinWork = 1 << 16;  // values copied below which threads cost more than they save

void check_plan(const RoutePlan* plan, const char* op) {
  require_pointer(plan, op, "plan");
  require_nonnegative(plan->N, op, "plan.N");
  require_positive(plan->E, op, "plan.E");
  require_positive(plan->K, op, "plan.K");
  require_pointer(plan->row_token, op, "plan.row_token");
  require_pointer(plan->row_of_slot, op, "plan.row_of_slot");
}

}  // namespace

void route_plan_build(const RoutePlan& plan) {
  const char* op = "route_plan_build";
  require_nonnegative(plan.N, op, "N");
  require_positive(plan.E, op, "E");
  require_positive(plan.K, op, "K");
  require_pointer(plan.offsets, op, "offsets");
  require_pointer(plan.row_token, op, "row_token");
  require_pointer(plan.row_of_slot, op, "row_of_slot");
  const int64_t N = plan.N, E = plan.E, K = plan.K, R = N * K;
  if (R > 0) require_pointer(plan.idx, op, "idx");

  std::vector<int64_t> next_row(E + 1, 0);  // counts, then the next free row of each expert
  for (int64_t a = 0; a < R; ++a) {
    const int32_t e = plan.idx[a];
    if (e < 0 || e >= E) kernel_fail(op, "idx[", a, "] = ", e, " is outside [0, ", E, ")");
    ++next_row[e + 1];
  }
  for (int64_t e = 0; e < E; ++e) next_row[e + 1] += next_row[e];
  for (int64_t e = 0; e <= E; ++e) plan.offsets[e] = next_row[e];
  for (int64_t a = 0; a < R; ++a) {  // ascending assignment order = ascending token: stable within each expert
    const int64_t r = next_row[plan.idx[a]]++;
    plan.row_token[r] = static_cast<int32_t>(a / K);
    plan.row_of_slot[a] = static_cast<int32_t>(r);
  }
}

template <class T>
void permute_forward(const PermuteParams<T>& p) {
  const char* op = "permute_forward";
  check_plan(p.plan, op);
  require_positive(p.C, op, "C");
  require_pointer(p.xp, op, "xp");
  require_pointer(p.x, op, "x");
  const int64_t R = p.plan->N * p.plan->K, C = p.C;
#pragma omp parallel for schedule(static) if (R * C >= kParallelMinWork)
  for (int64_t r = 0; r < R; ++r) {
    const T* src = p.x + static_cast<int64_t>(p.plan->row_token[r]) * C;  // (C)
    T* dst = p.xp + r * C;                                                  // (C)
    for (int64_t c = 0; c < C; ++c) dst[c] = src[c];
  }
}

template <class T>
void permute_backward(const PermuteParams<T>& p) {
  const char* op = "permute_backward";
  check_plan(p.plan, op);
  require_positive(p.C, op, "C");
  require_pointer(p.dx, op, "dx");
  require_pointer(p.dxp, op, "dxp");
  const int64_t N = p.plan->N, K = p.plan->K, C = p.C;
#pragma omp parallel for schedule(static) if (N * K * C >= kParallelMinWork)
  for (int64_t n = 0; n < N; ++n) {
    T* dst = p.dx + n * C;  // (C)
    if (!p.accumulate_dx)
      for (int64_t c = 0; c < C; ++c) dst[c] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T* src = p.dxp + static_cast<int64_t>(p.plan->row_of_slot[n * K + k]) * C;  // (C)
      for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
    }
  }
}

template <class T>
void combine_forward(const CombineParams<T>& p) {
  const char* op = "combine_forward";
  check_plan(p.plan, op);
  require_positive(p.C, op, "C");
  require_pointer(p.y, op, "y");
  require_pointer(p.yp, op, "yp");
  require_pointer(p.weights, op, "weights");
  const int64_t N = p.plan->N, K = p.plan->K, C = p.C;
#pragma omp parallel for schedule(static) if (N * K * C >= kParallelMinWork)
  for (int64_t n = 0; n < N; ++n) {
    T* dst = p.y + n * C;  // (C)
    if (!p.accumulate_y)
      for (int64_t c = 0; c < C; ++c) dst[c] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T w = p.weights[n * K + k];
      const T* src = p.yp + static_cast<int64_t>(p.plan->row_of_slot[n * K + k]) * C;  // (C)
      for (int64_t c = 0; c < C; ++c) dst[c] += w * src[c];
    }
  }
}

// dyp and dweights may each be null when the caller does not need that gradient.
template <class T>
void combine_backward(const CombineParams<T>& p) {
  const char* op = "combine_backward";
  check_plan(p.plan, op);
  require_positive(p.C, op, "C");
  require_pointer(p.dy, op, "dy");
  if (p.dyp) require_pointer(p.weights, op, "weights");
  if (p.dweights) require_pointer(p.yp, op, "yp");
  const int64_t N = p.plan->N, K = p.plan->K, C = p.C;
#pragma omp parallel for schedule(static) if (N * K * C >= kParallelMinWork)
  for (int64_t n = 0; n < N; ++n) {
    const T* grad = p.dy + n * C;  // (C)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t r = p.plan->row_of_slot[n * K + k];
      if (p.dyp) {
        const T w = p.weights[n * K + k];
        T* dst = p.dyp + r * C;  // (C)
        for (int64_t c = 0; c < C; ++c) dst[c] = w * grad[c];
      }
      if (p.dweights) {
        const T* src = p.yp + r * C;  // (C)
        double acc = 0;
        for (int64_t c = 0; c < C; ++c) acc += static_cast<double>(grad[c]) * static_cast<double>(src[c]);
        p.dweights[n * K + k] = static_cast<T>(acc);
      }
    }
  }
}

#define STEPWISE_INSTANTIATE_ROUTE_OPS(T)                       \
  template void permute_forward<T>(const PermuteParams<T>&);    \
  template void permute_backward<T>(const PermuteParams<T>&);   \
  template void combine_forward<T>(const CombineParams<T>&);    \
  template void combine_backward<T>(const CombineParams<T>&);
STEPWISE_INSTANTIATE_ROUTE_OPS(float)
STEPWISE_INSTANTIATE_ROUTE_OPS(double)
#undef STEPWISE_INSTANTIATE_ROUTE_OPS

}  // namespace stepwise::cpu
