// cuda::gemm (cuBLASLt, row-major) against a naive double-precision reference: every transpose combination,
// fp32 and bf16 inputs, fp32 and bf16 outputs, beta accumulation, strided batches, padded row strides.
#include <gtest/gtest.h>

#include "cuda/gemm.h"
#include "gpu_testing.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

struct Case {
  bool trans_a, trans_b;
  int64_t M, N, K, batch;
  float alpha, beta;
};

// want[b] = alpha * op(A) op(B) + beta * C0, row-major, packed.
std::vector<float> reference(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                             const std::vector<float>& c0) {
  std::vector<float> out(c0.size());
  for (int64_t bi = 0; bi < c.batch; ++bi)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const float av = c.trans_a ? a[bi * c.M * c.K + k * c.M + m] : a[bi * c.M * c.K + m * c.K + k];
          const float bv = c.trans_b ? b[bi * c.K * c.N + n * c.K + k] : b[bi * c.K * c.N + k * c.N + n];
          acc += double(av) * bv;
        }
        const int64_t i = bi * c.M * c.N + m * c.N + n;
        out[i] = float(c.alpha * acc + c.beta * c0[i]);
      }
  return out;
}

template <class AB, class C>
void run_case(const Case& c, uint64_t seed) {
  const auto a = representable<AB>(random_vector(c.batch * c.M * c.K, seed));
  const auto b = representable<AB>(random_vector(c.batch * c.K * c.N, seed + 1));
  const auto c0 = representable<C>(random_vector(c.batch * c.M * c.N, seed + 2));
  auto da = upload<AB>(a);
  auto db = upload<AB>(b);
  auto dc = c.beta != 0 ? upload<C>(c0) : poisoned<C>(c.batch * c.M * c.N);
  cuda::GemmArgs g;
  g.a = da.data(), g.b = db.data(), g.c = dc.data();
  g.ab_type = std::is_same_v<AB, float> ? cuda::GemmType::f32 : cuda::GemmType::bf16;
  g.c_type = std::is_same_v<C, float> ? cuda::GemmType::f32 : cuda::GemmType::bf16;
  g.trans_a = c.trans_a, g.trans_b = c.trans_b, g.M = c.M, g.N = c.N, g.K = c.K;
  g.alpha = c.alpha, g.beta = c.beta, g.batch = c.batch;
  g.stride_a = c.M * c.K, g.stride_b = c.K * c.N, g.stride_c = c.M * c.N;
  cuda::gemm(g, nullptr);
  cuda::device_synchronize();
  const double err = normalized_error(download(dc), reference(c, a, b, c0));
  const bool low = !std::is_same_v<AB, float> || !std::is_same_v<C, float>;
  EXPECT_LT(err, low ? 1e-2 : 1e-5) << "ta=" << c.trans_a << " tb=" << c.trans_b << " M=" << c.M << " N=" << c.N
                                    << " K=" << c.K << " batch=" << c.batch << " beta=" << c.beta;
}

const Case kCases[] = {
    {false, false, 37, 45, 29, 1, 1.f, 0.f}, {false, true, 64, 48, 80, 1, 0.5f, 0.f},
    {true, false, 33, 70, 21, 1, 1.f, 1.f},  {true, true, 17, 19, 130, 1, 2.f, 0.5f},
    {false, true, 16, 24, 40, 3, 1.f, 1.f},
};

TEST(GemmCuda, Fp32MatchesReference) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 10;
  for (const Case& c : kCases) run_case<float, float>(c, seed += 3);
}

TEST(GemmCuda, Bf16InputsFp32Output) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const Case& c : kCases) run_case<bf16, float>(c, seed += 3);
}

TEST(GemmCuda, Bf16InputsBf16Output) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 200;
  for (const Case& c : kCases) run_case<bf16, bf16>(c, seed += 3);
}

TEST(GemmCuda, PaddedRowStrides) {
  STEPWISE_REQUIRE_GPU();
  // A (M, K) inside rows of 40, B (K, N) inside rows of 50, C (M, N) inside rows of 60.
  const int64_t M = 12, N = 30, K = 20, lda = 40, ldb = 50, ldc = 60;
  const auto a = random_vector(M * lda, 1), b = random_vector(K * ldb, 2);
  auto da = upload<float>(a), db = upload<float>(b);
  auto dc = upload<float>(std::vector<float>(M * ldc, 7.f));
  cuda::GemmArgs g;
  g.a = da.data(), g.b = db.data(), g.c = dc.data(), g.M = M, g.N = N, g.K = K, g.lda = lda, g.ldb = ldb, g.ldc = ldc;
  cuda::gemm(g, nullptr);
  const auto got = download(dc);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < ldc; ++n) {
      if (n >= N) {
        EXPECT_EQ(got[m * ldc + n], 7.f) << "padding column written";
        continue;
      }
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(a[m * lda + k]) * b[k * ldb + n];
      EXPECT_NEAR(got[m * ldc + n], acc, 1e-4);
    }
}

}  // namespace
}  // namespace stepwise
