// CPU reference of the fused LM head + cross-entropy. Rows are taken in blocks and the vocabulary in chunks, so only
// a (rows, chunk) logits buffer per thread ever exists, sized to stay in the core's cache; the forward keeps an online
// logsumexp (running max, rescaled sum in double), the backward recomputes each chunk's logits and turns them into
// dloss * (softmax - onehot) before two GEMMs. Threads (OpenMP, single-threaded BLAS each): the forward deals row
// blocks out; the backward has each thread make its rows' dlogits and dh, then after a barrier add its share of
// dweight's vocabulary rows from every thread's dlogits. Fixed partitions, so results do not vary run to run.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "cpu/blas_threads.h"
#include "cpu/check.h"
#include "cpu/fast_exp.h"
#include "cpu/gemm.h"
#include "ops/loss.h"

namespace stepwise::cpu {

namespace {

constexpr int64_t kBlockBudget = int64_t(1) << 18;  // elements of one thread's (rows, chunk) buffer: 1 MiB in fp32

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

// OpenMP threads worth using: 1 unless the products are big enough to pay for waking the team.
template <class T>
int threads_for(const LmHeadLossParams<T>& p) {
  if (omp_in_parallel() || p.N * p.V * p.C < kGemmParallelMinWork) return 1;
  return std::max(1, omp_get_max_threads());
}

// Rows per block: within the buffer budget, and no more than an even share of N per thread.
template <class T>
int64_t rows_per_block(const LmHeadLossParams<T>& p, int64_t chunk, int threads) {
  const int64_t share = (p.N + threads - 1) / threads;
  return std::clamp<int64_t>(kBlockBudget / chunk, 1, share);
}

// logits (rows, cw) = h[r0 : r0 + rows] (rows, C) * weight[v0 : v0 + cw]^T (C, cw)
template <class T>
void chunk_logits(const LmHeadLossParams<T>& p, int64_t r0, int64_t rows, int64_t v0, int64_t cw, T* logits) {
  gemm<T>(false, true, rows, cw, p.C, T(1), p.h + r0 * p.C, p.C, p.weight + v0 * p.C, p.C, T(0), logits, cw);
}

// Row passes; the float ones use the vectorised exp and come in per-ISA clones.
STEPWISE_VECTOR_CLONES
float row_max(const float* row, int64_t n) {
  float best = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : best)
  for (int64_t j = 0; j < n; ++j) best = best > row[j] ? best : row[j];
  return best;
}
double row_max(const double* row, int64_t n) { return *std::max_element(row, row + n); }

// sum_j exp(row[j] - shift), accumulated in double. Two passes (float exps in place, then the double sum in 8
// lanes) because GCC does not vectorise the one-pass form in every clone. Overwrites row.
STEPWISE_VECTOR_CLONES
double row_exp_sum(float* row, int64_t n, float shift) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] = exp_vectorisable(row[j] - shift);
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += static_cast<double>(row[j + l]);
  double sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; j < n; ++j) sum += static_cast<double>(row[j]);
  return sum;
}
double row_exp_sum(double* row, int64_t n, double shift) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(row[j] - shift);
  return sum;
}

// row[j] = scale * exp(row[j] - shift)
STEPWISE_VECTOR_CLONES
void scaled_exp_row(float* row, int64_t n, float scale, float shift) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] = scale * exp_vectorisable(row[j] - shift);
}
void scaled_exp_row(double* row, int64_t n, double scale, double shift) {
  for (int64_t j = 0; j < n; ++j) row[j] = scale * std::exp(row[j] - shift);
}

}  // namespace

template <class T>
void lm_head_loss_forward(const LmHeadLossParams<T>& p) {
  check_lm_head(p, "lm_head_loss_forward");
  if (p.N == 0) return;
  require_pointer(p.loss, "lm_head_loss_forward", "loss");
  const int64_t chunk = std::min(p.chunk, p.V);
  const int threads = threads_for(p);
  const int64_t block = rows_per_block(p, chunk, threads);
  const int64_t blocks = (p.N + block - 1) / block;
  BlasSingleThreadScope blas_scope(threads > 1);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const auto logits = std::make_unique_for_overwrite<T[]>(static_cast<size_t>(block * chunk));  // (block, chunk)
    std::vector<T> run_max(block);                                // (block) running max of the row's logits
    std::vector<double> run_sum(block);                           // (block) sum of exp(logit - run_max)
    std::vector<T> target_logit(block);                           // (block)
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * block, rows = std::min(block, p.N - r0);
      std::fill(run_max.begin(), run_max.end(), -std::numeric_limits<T>::infinity());
      std::fill(run_sum.begin(), run_sum.end(), 0.0);
      std::fill(target_logit.begin(), target_logit.end(), T(0));
      for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
        const int64_t cw = std::min(chunk, p.V - v0);
        chunk_logits(p, r0, rows, v0, cw, logits.get());
        for (int64_t i = 0; i < rows; ++i) {
          T* row = logits.get() + i * cw;  // (cw) logits, then (row_exp_sum) their exps
          const int64_t t = p.targets[r0 + i];
          if (t >= v0 && t < v0 + cw) target_logit[i] = row[t - v0];
          const T new_max = std::max(run_max[i], row_max(row, cw));
          const double sum = row_exp_sum(row, cw, new_max);
          run_sum[i] = run_sum[i] * std::exp(static_cast<double>(run_max[i]) - static_cast<double>(new_max)) + sum;
          run_max[i] = new_max;
        }
      }
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t n = r0 + i;
        p.lse[n] = static_cast<T>(static_cast<double>(run_max[i]) + std::log(run_sum[i]));
        p.loss[n] = p.targets[n] == p.ignore_index ? T(0) : p.lse[n] - target_logit[i];
      }
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
  const int threads = threads_for(p);
  const int64_t block = rows_per_block(p, chunk, threads);  // rows per thread
  const int64_t super_rows = block * threads;                // rows per round: thread t takes the t-th block
  // (round rows, cw) logits, then their gradient
  const auto dlogits = std::make_unique_for_overwrite<T[]>(static_cast<size_t>(super_rows * chunk));
  BlasSingleThreadScope blas_scope(threads > 1);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = omp_get_thread_num();
    for (int64_t s0 = 0; s0 < p.N; s0 += super_rows) {
      const int64_t round_rows = std::min(super_rows, p.N - s0);
      const int64_t r0 = s0 + t * block;                                   // this thread's first row
      const int64_t rows = std::clamp<int64_t>(p.N - r0, 0, block);       // and row count (may be 0)
      for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
        const int64_t cw = std::min(chunk, p.V - v0);
        T* mine = dlogits.get() + (r0 - s0) * cw;  // (rows, cw), rows r0.. of the round's (round_rows, cw)
        if (rows > 0) {
          chunk_logits(p, r0, rows, v0, cw, mine);
          for (int64_t i = 0; i < rows; ++i) {
            const int64_t n = r0 + i;
            T* row = mine + i * cw;  // (cw)
            if (p.targets[n] == p.ignore_index) {
              std::fill(row, row + cw, T(0));
              continue;
            }
            const T scale = p.dloss[n];
            scaled_exp_row(row, cw, scale, p.lse[n]);  // dloss * softmax
            const int64_t target = p.targets[n];
            if (target >= v0 && target < v0 + cw) row[target - v0] -= scale;  // - dloss * onehot
          }
          // dh[r0 : r0 + rows] (rows, C) (=, then +=) dlogits (rows, cw) * weight[v0 : v0 + cw] (cw, C)
          gemm<T>(false, false, rows, p.C, cw, T(1), mine, cw, p.weight + v0 * p.C, p.C, v0 == 0 ? T(0) : T(1),
                  p.dh + r0 * p.C, p.C);
        }
        if (p.dweight != nullptr) {
#pragma omp barrier
          // this thread's vocabulary rows [c0, c1) of the chunk:
          // dweight[v0 + c0 : v0 + c1] (c1 - c0, C) += dlogits[:, c0 : c1]^T (c1 - c0, round rows) * h (round rows, C)
          const int64_t share = ((cw + threads - 1) / threads + 15) / 16 * 16;
          const int64_t c0 = std::min(cw, t * share), c1 = std::min(cw, c0 + share);
          if (c1 > c0)
            gemm<T>(true, false, c1 - c0, p.C, round_rows, T(1), dlogits.get() + c0, cw, p.h + s0 * p.C, p.C, T(1),
                    p.dweight + (v0 + c0) * p.C, p.C);
        }
        // Every thread leaves this chunk's slice of dlogits before any writes the next one's: a narrower last chunk
        // starts each thread's slice at a different offset, overlapping another thread's slice of this chunk.
#pragma omp barrier
      }
    }
  }
}

template void lm_head_loss_forward<float>(const LmHeadLossParams<float>&);
template void lm_head_loss_forward<double>(const LmHeadLossParams<double>&);
template void lm_head_loss_backward<float>(const LmHeadLossParams<float>&);
template void lm_head_loss_backward<double>(const LmHeadLossParams<double>&);

}  // namespace stepwise::cpu
