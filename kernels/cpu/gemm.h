// Row-major GEMM for the CPU kernels: C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C, through OpenBLAS
// (cblas_sgemm for float, cblas_dgemm for double). Private to kernels/cpu; it owns nothing and allocates nothing.
// op(A) = A^T when transA (A then stored (K, M) with leading dimension lda), likewise for B.
#pragma once
#include <cblas.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace stepwise::cpu {

namespace gemm_detail {
inline blasint to_blasint(int64_t v, const char* name) {
  if (v < 0 || v > static_cast<int64_t>(INT_MAX))
    throw std::invalid_argument(std::string("gemm: ") + name + " = " + std::to_string(v) + " is out of BLAS range");
  return static_cast<blasint>(v);
}
}  // namespace gemm_detail

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
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

}  // namespace stepwise::cpu
