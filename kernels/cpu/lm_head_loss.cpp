// CPU reference of the fused LM head + cross-entropy. Rows are taken in blocks and the vocabulary in chunks, so only a
// (rows, chunk) logits buffer ever exists; the forward keeps an online logsumexp (running max, rescaled sum in double),
// the backward recomputes each chunk's logits and turns them into dloss * (softmax - onehot) before two GEMMs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "cpu/gemm.h"
#include "ops/loss.h"

namespace stepwise::cpu {

namespace {

constexpr int64_t kLogitsBudget = int64_t(1) << 22;  // elements of the (rows, chunk) buffer: 16 MiB in fp32

template <class T>
void check_lm_head(const LmHeadLossParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  if (p.C <= 0) kernel_fail(op, "C = ", p.C, " must be positive");
  if (p.V <= 0) kernel_fail(op, "V = ", p.V, " must be positive");
  if (p.chunk <= 0) kernel_fail(op, "chunk = ", p.chunk, " must be positive");
  if (p.N == 0) return;
  require_pointer(p.h, op, "h");
  require_pointer(p.weight, op, "weight");
  require_pointer(p.targets, op, "targets");
  require_pointer(p.lse, op, "lse");
  for (int64_t n = 0; n < p.N; ++n) {
    const int32_t t = p.targets[n];
    if (t != p.ignore_index && (t < 0 || t >= p.V))
      kernel_fail(op, "targets[", n, "] = ", t, " is outside [0, V = ", p.V, ") and is not ignore_index (",
                  p.ignore_index, ")");
  }
}

// Rows per block so that (rows, chunk) stays within the buffer budget.
template <class T>
int64_t rows_per_block(const LmHeadLossParams<T>& p, int64_t chunk) {
  return std::clamp<int64_t>(kLogitsBudget / chunk, 1, p.N);
}

// logits (rows, cw) = h[r0 : r0 + rows] (rows, C) * weight[v0 : v0 + cw]^T (C, cw)
template <class T>
void chunk_logits(const LmHeadLossParams<T>& p, int64_t r0, int64_t rows, int64_t v0, int64_t cw, T* logits) {
  gemm<T>(false, true, rows, cw, p.C, T(1), p.h + r0 * p.C, p.C, p.weight + v0 * p.C, p.C, T(0), logits, cw);
}

}  // namespace

template <class T>
void lm_head_loss_forward(const LmHeadLossParams<T>& p) {
  check_lm_head(p, "lm_head_loss_forward");
  if (p.N == 0) return;
  require_pointer(p.loss, "lm_head_loss_forward", "loss");
  const int64_t chunk = std::min(p.chunk, p.V);
  const int64_t block = rows_per_block(p, chunk);
  std::vector<T> logits(static_cast<size_t>(block * chunk));  // (block, chunk)
  std::vector<T> run_max(block);                                // (block) running max of the row's logits
  std::vector<double> run_sum(block);                           // (block) sum of exp(logit - run_max)
  std::vector<T> target_logit(block);                           // (block)
  for (int64_t r0 = 0; r0 < p.N; r0 += block) {
    const int64_t rows = std::min(block, p.N - r0);
    std::fill(run_max.begin(), run_max.end(), -std::numeric_limits<T>::infinity());
    std::fill(run_sum.begin(), run_sum.end(), 0.0);
    std::fill(target_logit.begin(), target_logit.end(), T(0));
    for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
      const int64_t cw = std::min(chunk, p.V - v0);
      chunk_logits(p, r0, rows, v0, cw, logits.data());
#pragma omp parallel for if (parallel_worth(rows * cw)) schedule(static)
      for (int64_t i = 0; i < rows; ++i) {
        const T* row = logits.data() + i * cw;  // (cw)
        const T chunk_max = *std::max_element(row, row + cw);
        const T new_max = std::max(run_max[i], chunk_max);
        double sum = 0;
        for (int64_t j = 0; j < cw; ++j) sum += static_cast<double>(std::exp(row[j] - new_max));
        run_sum[i] = run_sum[i] * std::exp(static_cast<double>(run_max[i]) - static_cast<double>(new_max)) + sum;
        run_max[i] = new_max;
        const int64_t t = p.targets[r0 + i];
        if (t >= v0 && t < v0 + cw) target_logit[i] = row[t - v0];
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t n = r0 + i;
      p.lse[n] = static_cast<T>(static_cast<double>(run_max[i]) + std::log(run_sum[i]));
      p.loss[n] = p.targets[n] == p.ignore_index ? T(0) : p.lse[n] - target_logit[i];
    }
  }
}

template <class T>
void lm_head_loss_backward(const LmHeadLossParams<T>& p) {
  check_lm_head(p, "lm_head_loss_backward");
  if (p.N == 0) return;
  require_pointer(p.dloss, "lm_head_loss_backward", "dloss");
  require_pointer(p.dh, "lm_head_loss_backward", "dh");
  const int64_t chunk = std::min(p.chunk, p.V);
  const int64_t block = rows_per_block(p, chunk);
  std::vector<T> dlogits(static_cast<size_t>(block * chunk));  // (block, chunk) logits, then their gradient
  for (int64_t r0 = 0; r0 < p.N; r0 += block) {
    const int64_t rows = std::min(block, p.N - r0);
    for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
      const int64_t cw = std::min(chunk, p.V - v0);
      chunk_logits(p, r0, rows, v0, cw, dlogits.data());
#pragma omp parallel for if (parallel_worth(rows * cw)) schedule(static)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t n = r0 + i;
        T* row = dlogits.data() + i * cw;  // (cw)
        if (p.targets[n] == p.ignore_index) {
          std::fill(row, row + cw, T(0));
          continue;
        }
        const T scale = p.dloss[n], lse = p.lse[n];
        for (int64_t j = 0; j < cw; ++j) row[j] = scale * std::exp(row[j] - lse);  // dloss * softmax
        const int64_t t = p.targets[n];
        if (t >= v0 && t < v0 + cw) row[t - v0] -= scale;  // - dloss * onehot
      }
      // dh[r0 : r0 + rows] (rows, C) (=, then +=) dlogits (rows, cw) * weight[v0 : v0 + cw] (cw, C)
      gemm<T>(false, false, rows, p.C, cw, T(1), dlogits.data(), cw, p.weight + v0 * p.C, p.C,
              v0 == 0 ? T(0) : T(1), p.dh + r0 * p.C, p.C);
      // dweight[v0 : v0 + cw] (cw, C) += dlogits^T (cw, rows) * h[r0 : r0 + rows] (rows, C)
      if (p.dweight != nullptr)
        gemm<T>(true, false, cw, p.C, rows, T(1), dlogits.data(), cw, p.h + r0 * p.C, p.C, T(1),
                p.dweight + v0 * p.C, p.C);
    }
  }
}

template void lm_head_loss_forward<float>(const LmHeadLossParams<float>&);
template void lm_head_loss_forward<double>(const LmHeadLossParams<double>&);
template void lm_head_loss_backward<float>(const LmHeadLossParams<float>&);
template void lm_head_loss_backward<double>(const LmHeadLossParams<double>&);

}  // namespace stepwise::cpu
