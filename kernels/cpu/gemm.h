// Row-major GEMM for the CPU kernels: C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C, through OpenBLAS
// (cblas_sgemm for float, cblas_dgemm for double). Private to kernels/cpu; it owns nothing and allocates nothing.
// op(A) = A^T when transA (A then stored (K, M) with leading dimension lda), likewise for B.
// Threads: OpenMP only. Outside a parallel region a large product is cut into one block of C rows (or columns) per
// OpenMP thread, each a single-threaded BLAS call; OpenBLAS's own threads are never woken, because once woken they
// spin in sched_yield for ~0.1 s and fought the OpenMP workers for the cores (docs/PERF.md, "CPU training step").
// Inside a parallel region the caller owns the threads (and has made BLAS single-threaded): one plain BLAS call.
#pragma once
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cpu/blas_threads.h"

namespace stepwise::cpu {

namespace gemm_detail {
inline blasint to_blasint(int64_t v, const char* name) {
  if (v < 0 || v > static_cast<int64_t>(INT_MAX))
    throw std::invalid_argument(std::string("gemm: ") + name + " = " + std::to_string(v) + " is out of BLAS range");
  return static_cast<blasint>(v);
}
}  // namespace gemm_detail

template <class T>
void gemm_one_call(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                   const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm<T>: T must be float or double");
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty inner product: C = beta * C (BLAS would reject lda = 0)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  using gemm_detail::to_blasint;
  const CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
  const blasint m = to_blasint(M, "M"), n = to_blasint(N, "N"), k = to_blasint(K, "K");
  const blasint la = to_blasint(lda, "lda"), lb = to_blasint(ldb, "ldb"), lc = to_blasint(ldc, "ldc");
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, la, B, lb, beta, C, lc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, la, B, lb, beta, C, lc);
}

// Multiply-adds below which a product runs on the calling thread (waking a sleeping OpenMP team costs ~10-50 us).
constexpr int64_t kGemmParallelMinWork = int64_t(1) << 20;

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (omp_in_parallel()) {
    gemm_one_call<T>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  for (int64_t v : {M, N, K, lda, ldb, ldc}) gemm_detail::to_blasint(v, "a dimension");  // throw here, not in a thread
  BlasSingleThreadScope blas_scope(true);
  const int64_t threads = M * N * K >= kGemmParallelMinWork ? omp_get_max_threads() : 1;
  if (threads <= 1 || K <= 0 || (M < 2 * 16 && N < 2 * 16)) {
    gemm_one_call<T>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Cut the longer side of C into blocks of a multiple of 16 (the kernels' register tile); block b -> thread b.
  const bool split_rows = M >= N;
  const int64_t extent = split_rows ? M : N;
  const int64_t block = ((extent + threads - 1) / threads + 15) / 16 * 16;
  const int64_t blocks = (extent + block - 1) / block;
#pragma omp parallel for num_threads(blocks) schedule(static, 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t start = b * block, count = std::min(block, extent - start);
    if (split_rows)  // rows [start, start+count) of C: rows of op(A)
      gemm_one_call<T>(transA, transB, count, N, K, alpha, transA ? A + start : A + start * lda, lda, B, ldb, beta,
                       C + start * ldc, ldc);
    else  // columns [start, start+count) of C: columns of op(B)
      gemm_one_call<T>(transA, transB, M, count, K, alpha, A, lda, transB ? B + start * ldb : B + start, ldb, beta,
                       C + start, ldc);
  }
}

}  // namespace stepwise::cpu
