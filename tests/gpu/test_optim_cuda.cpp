// CUDA optimizer ops (cuda/optim.h) against the CPU reference: AdamW (param, moments and the bf16 weight copy),
// sum of squares and non-finite count accumulated into device scalars, in-place scaling, fp32 <-> bf16 conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "cuda/optim.h"
#include "gpu_testing.h"
#include "ops/optim.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

TEST(OptimCuda, AdamWMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  const int64_t n = 100003;
  const auto param0 = random_vector(n, 1), m0 = random_vector(n, 2, -0.01f, 0.01f);
  const auto v0 = random_vector(n, 3, 0.f, 1e-4f), grad = random_vector(n, 4, -0.1f, 0.1f);
  for (const bool with_copy : {true, false}) {
    std::vector<float> param = param0, m = m0, v = v0;
    AdamWParams ref;
    ref.param = param.data(), ref.m = m.data(), ref.v = v.data(), ref.grad = grad.data(), ref.n = n;
    ref.step = 3, ref.lr = 1e-2f, ref.weight_decay = 0.1f;
    cpu::adamw_update(ref);

    cuda::DeviceBuffer<float> d_param(param0), d_m(m0), d_v(v0), d_grad(grad);
    auto d_copy = poisoned<bf16>(n);
    AdamWParams p = ref;
    p.param = d_param.data(), p.m = d_m.data(), p.v = d_v.data(), p.grad = d_grad.data();
    cuda::adamw_update(p, with_copy ? d_copy.data() : nullptr);
    EXPECT_LT(normalized_error(download(d_param), param), 1e-5) << "param";
    EXPECT_LT(normalized_error(download(d_m), m), 1e-5) << "m";
    EXPECT_LT(normalized_error(download(d_v), v), 1e-5) << "v";
    if (with_copy) {
      EXPECT_LT(normalized_error(download(d_copy), representable<bf16>(param)), tolerance<bf16>()) << "bf16 copy";
    }
  }
}

TEST(OptimCuda, SumSquaresAccumulates) {
  STEPWISE_REQUIRE_GPU();
  const int64_t n = 1000003;   // more elements than the reduction grid has threads
  const auto x = random_vector(n, 10);
  const float start = 2.5f;
  cuda::DeviceBuffer<float> d_x(x), d_out(std::vector<float>{start});
  cuda::sum_squares(d_x.data(), n, d_out.data());
  cuda::sum_squares(d_x.data(), 1000, d_out.data());   // a second call adds a prefix
  const double want = start + cpu::sum_squares(x.data(), n) + cpu::sum_squares(x.data(), 1000);
  EXPECT_LT(normalized_error(download(d_out), {static_cast<float>(want)}), 1e-5);
}

TEST(OptimCuda, CountNonfiniteAccumulates) {
  STEPWISE_REQUIRE_GPU();
  const int64_t n = 300007;
  auto x = random_vector(n, 20);
  std::mt19937_64 rng(21);
  std::uniform_int_distribution<int64_t> where(0, n - 1);
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 40; ++i) x[where(rng)] = bad[i % 3];
  int32_t want = 3;   // the starting value of the device counter
  for (float value : x) want += std::isfinite(value) ? 0 : 1;
  cuda::DeviceBuffer<float> d_x(x);
  cuda::DeviceBuffer<int32_t> d_count(std::vector<int32_t>{3});
  cuda::count_nonfinite(d_x.data(), n, d_count.data());
  EXPECT_EQ(d_count.download()[0], want);
}

TEST(OptimCuda, ScaleInplaceMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  const int64_t n = 70001;
  auto x = random_vector(n, 30);
  cuda::DeviceBuffer<float> d_x(x);
  cuda::scale_inplace(d_x.data(), n, 0.37f);
  cpu::scale_inplace(x.data(), n, 0.37f);
  EXPECT_LT(normalized_error(download(d_x), x), 1e-6);
}

TEST(OptimCuda, ConvertRoundsToNearestAndBack) {
  STEPWISE_REQUIRE_GPU();
  const int64_t n = 12345;
  const auto x = random_vector(n, 40, -100.f, 100.f);
  cuda::DeviceBuffer<float> d_x(x), d_back = poisoned<float>(n);
  auto d_half = poisoned<bf16>(n);
  cuda::convert(d_x.data(), d_half.data(), n);
  cuda::convert(d_half.data(), d_back.data(), n);
  const auto want = representable<bf16>(x);   // host round-to-nearest-even
  EXPECT_EQ(download(d_half), want);
  EXPECT_EQ(download(d_back), want);
}

TEST(OptimCudaArguments, BadArgumentsThrowAndEmptyIsNoOp) {
  AdamWParams p;
  p.n = 10, p.step = 0;
  EXPECT_THROW(cuda::adamw_update(p, nullptr), std::invalid_argument);
  p.step = 1, p.beta2 = 1.f;
  EXPECT_THROW(cuda::adamw_update(p, nullptr), std::invalid_argument);
  p.beta2 = 0.95f;   // pointers are null
  EXPECT_THROW(cuda::adamw_update(p, nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::sum_squares(nullptr, -1, nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::count_nonfinite(nullptr, 5, nullptr), std::invalid_argument);
  p.n = 0;
  EXPECT_NO_THROW(cuda::adamw_update(p, nullptr));
  EXPECT_NO_THROW(cuda::sum_squares(nullptr, 0, nullptr));
  EXPECT_NO_THROW(cuda::scale_inplace(nullptr, 0, 2.f));
  EXPECT_NO_THROW(cuda::convert(static_cast<const float*>(nullptr), static_cast<bf16*>(nullptr), 0));
}

}  // namespace
}  // namespace stepwise
