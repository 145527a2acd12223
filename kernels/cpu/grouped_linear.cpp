// Grouped per-expert linear on the CPU: expert e's contiguous permuted rows [offsets[e], offsets[e+1]) times its own
// weight W_e (O, I); experts with no rows are skipped. R permuted rows, I input and O output features, E experts.
// Experts are shared out over the OpenMP threads (heaviest first, single-threaded BLAS each): at step3-tiny sizes an
// expert's product is too small to split well, and one parallel region replaces E of them. When one expert holds
// most rows, experts run one after another instead and each product is split over the threads by gemm(). Every
// expert's result is computed by one BLAS call whichever thread runs it, so results do not depend on the schedule.
#include <algorithm>
#include <vector>

#include "cpu/blas_threads.h"
#include "cpu/check.h"
#include "cpu/gemm.h"
#include "ops/moe.h"

namespace stepwise::cpu {

namespace {

template <class T>
void check_grouped(const GroupedLinearParams<T>& p, const char* op) {
  require_positive(p.E, op, "E");
  require_positive(p.I, op, "I");
  require_positive(p.O, op, "O");
  require_pointer(p.offsets, op, "offsets");
  require_pointer(p.weight, op, "weight");
  if (p.offsets[0] != 0) kernel_fail(op, "offsets[0] = ", p.offsets[0], " must be 0");
  for (int64_t e = 0; e < p.E; ++e)
    if (p.offsets[e + 1] < p.offsets[e])
      kernel_fail(op, "offsets[", e + 1, "] = ", p.offsets[e + 1], " < offsets[", e, "] = ", p.offsets[e]);
}

// Runs expert_work(e) for every expert with rows: in parallel over experts (heaviest first) when that balances,
// else one expert after another (gemm() then splits each product).
template <class T, class Work>
void for_each_expert(const GroupedLinearParams<T>& p, Work expert_work) {
  const int64_t R = p.offsets[p.E];
  std::vector<int64_t> order;  // experts with rows, most rows first
  int64_t most_rows = 0;
  for (int64_t e = 0; e < p.E; ++e)
    if (p.offsets[e + 1] > p.offsets[e]) {
      order.push_back(e);
      most_rows = std::max(most_rows, p.offsets[e + 1] - p.offsets[e]);
    }
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return p.offsets[a + 1] - p.offsets[a] > p.offsets[b + 1] - p.offsets[b];
  });
  const int64_t work = R * p.I * p.O;
  const bool threaded = !omp_in_parallel() && omp_get_max_threads() > 1 && order.size() > 1 &&
                        work >= kGemmParallelMinWork && 2 * most_rows <= R;
  if (!threaded) {
    for (int64_t e : order) expert_work(e);
    return;
  }
  BlasSingleThreadScope blas_scope(true);
  const int64_t items = static_cast<int64_t>(order.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < items; ++i) expert_work(order[static_cast<size_t>(i)]);
}

}  // namespace

template <class T>
void grouped_linear_forward(const GroupedLinearParams<T>& p) {
  const char* op = "grouped_linear_forward";
  check_grouped(p, op);
  require_pointer(p.inp, op, "inp");
  require_pointer(p.out, op, "out");
  const int64_t I = p.I, O = p.O;
  for_each_expert(p, [&](int64_t e) {
    const int64_t r0 = p.offsets[e], rows = p.offsets[e + 1] - r0;
    // out[r0 : r0+rows] (rows, O) = inp[r0 : r0+rows] (rows, I) @ W_e^T (I, O)
    gemm<T>(false, true, rows, O, I, T(1), p.inp + r0 * I, I, p.weight + e * O * I, I, T(0), p.out + r0 * O, O);
  });
}

// dinp = dout W_e (=) and dweight_e += dout^T inp; either may be null when not wanted.
template <class T>
void grouped_linear_backward(const GroupedLinearParams<T>& p) {
  const char* op = "grouped_linear_backward";
  check_grouped(p, op);
  require_pointer(p.dout, op, "dout");
  if (p.dweight) require_pointer(p.inp, op, "inp");
  const int64_t I = p.I, O = p.O;
  for_each_expert(p, [&](int64_t e) {
    const int64_t r0 = p.offsets[e], rows = p.offsets[e + 1] - r0;
    const T* dout_rows = p.dout + r0 * O;  // (rows, O)
    if (p.dinp)  // (rows, I) = (rows, O) @ W_e (O, I)
      gemm<T>(false, false, rows, I, O, T(1), dout_rows, O, p.weight + e * O * I, I, T(0), p.dinp + r0 * I, I);
    if (p.dweight)  // (O, I) += dout_rows^T (O, rows) @ inp_rows (rows, I)
      gemm<T>(true, false, O, I, rows, T(1), dout_rows, O, p.inp + r0 * I, I, T(1), p.dweight + e * O * I, I);
  });
}

template void grouped_linear_forward<float>(const GroupedLinearParams<float>&);
template void grouped_linear_forward<double>(const GroupedLinearParams<double>&);
template void grouped_linear_backward<float>(const GroupedLinearParams<float>&);
template void grouped_linear_backward<double>(const GroupedLinearParams<double>&);

}  // namespace stepwise::cpu
