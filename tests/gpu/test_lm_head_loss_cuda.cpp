// CUDA fused LM head + cross-entropy (cuda/loss.h) against the CPU reference for T = float and T = bf16: loss and lse
// of the forward, dh and the accumulated dweight of the backward, with ignored rows and vocabulary chunks that do not
// divide V (and a single chunk wider than V). Outputs start poisoned; dweight starts from non-zero values.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "cuda/loss.h"
#include "gpu_testing.h"
#include "ops/loss.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

template <class T>
class LmHeadLossCuda : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, bf16>;
TYPED_TEST_SUITE(LmHeadLossCuda, ElementTypes);

constexpr int32_t kIgnore = -100;

// Random targets in [0, V), every fifth row ignored.
std::vector<int32_t> random_targets(int64_t N, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(V) - 1);
  std::vector<int32_t> t(static_cast<size_t>(N));
  for (size_t n = 0; n < t.size(); ++n) t[n] = n % 5 == 3 ? kIgnore : dist(rng);
  return t;
}

template <class T>
void check_lm_head(int64_t N, int64_t C, int64_t V, int64_t chunk, bool with_dweight, uint64_t seed) {
  const std::string tag = " (N=" + std::to_string(N) + ", C=" + std::to_string(C) + ", V=" + std::to_string(V) +
                          ", chunk=" + std::to_string(chunk) + ")";
  const auto h = representable<T>(random_vector(N * C, seed, -2.f, 2.f));
  const auto weight = representable<T>(random_vector(V * C, seed + 1));
  const auto targets = random_targets(N, V, seed + 2);
  const auto dloss = random_vector(N, seed + 3, 0.1f, 1.f);
  const auto dweight0 = random_vector(V * C, seed + 4, -0.01f, 0.01f);   // the scale of the increments

  std::vector<float> loss(N), lse(N), dh(N * C), dweight = dweight0;
  LmHeadLossParams<float> ref;
  ref.loss = loss.data(), ref.lse = lse.data(), ref.h = h.data(), ref.weight = weight.data();
  ref.targets = targets.data(), ref.dh = dh.data(), ref.dweight = with_dweight ? dweight.data() : nullptr;
  ref.dloss = dloss.data(), ref.N = N, ref.C = C, ref.V = V, ref.chunk = chunk, ref.ignore_index = kIgnore;
  cpu::lm_head_loss_forward(ref);
  cpu::lm_head_loss_backward(ref);

  auto d_h = upload<T>(h), d_weight = upload<T>(weight);
  cuda::DeviceBuffer<int32_t> d_targets(targets);
  cuda::DeviceBuffer<float> d_dloss(dloss), d_dweight(dweight0);
  auto d_loss = poisoned<float>(N), d_lse = poisoned<float>(N);
  auto d_dh = poisoned<T>(N * C);
  LmHeadLossParams<T, float> p;
  p.loss = d_loss.data(), p.lse = d_lse.data(), p.h = d_h.data(), p.weight = d_weight.data();
  p.targets = d_targets.data(), p.dh = d_dh.data(), p.dweight = with_dweight ? d_dweight.data() : nullptr;
  p.dloss = d_dloss.data(), p.N = N, p.C = C, p.V = V, p.chunk = chunk, p.ignore_index = kIgnore;
  cuda::lm_head_loss_forward(p);
  const auto got_loss = download(d_loss);
  EXPECT_LT(normalized_error(got_loss, loss), tolerance<T>()) << "loss" << tag;
  EXPECT_LT(normalized_error(download(d_lse), lse), tolerance<T>()) << "lse" << tag;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == kIgnore) {
      EXPECT_EQ(got_loss[n], 0.f) << "ignored row " << n << tag;
    }
  }
  // The backward reads the CPU's lse so that it is checked on its own.
  d_lse.upload(lse);
  cuda::lm_head_loss_backward(p);
  EXPECT_LT(normalized_error(download(d_dh), dh), tolerance<T>()) << "dh" << tag;
  EXPECT_LT(normalized_error(download(d_dweight), dweight), tolerance<T>())
      << (with_dweight ? "dweight (+=)" : "dweight untouched when null") << tag;
}

TYPED_TEST(LmHeadLossCuda, MatchesCpuAcrossChunks) {
  STEPWISE_REQUIRE_GPU();
  check_lm_head<TypeParam>(37, 48, 1000, 256, true, 10);    // 4 chunks, the last one 232 wide
  check_lm_head<TypeParam>(20, 33, 301, 301, true, 20);     // exactly one chunk
  check_lm_head<TypeParam>(9, 64, 150, 4096, true, 30);     // chunk wider than V
  check_lm_head<TypeParam>(64, 40, 777, 100, false, 40);    // frozen head: dh only
}

TEST(LmHeadLossCudaArguments, BadDimensionsThrowAndEmptyIsNoOp) {
  LmHeadLossParams<bf16, float> p;
  p.N = 3, p.C = 8, p.V = 10, p.chunk = 0;
  EXPECT_THROW(cuda::lm_head_loss_forward(p), std::invalid_argument);
  p.chunk = 4, p.V = 0;
  EXPECT_THROW(cuda::lm_head_loss_backward(p), std::invalid_argument);
  p.V = 10;   // pointers are null
  EXPECT_THROW(cuda::lm_head_loss_forward(p), std::invalid_argument);
  p.N = 0;
  EXPECT_NO_THROW(cuda::lm_head_loss_forward(p));
  EXPECT_NO_THROW(cuda::lm_head_loss_backward(p));
}

}  // namespace
}  // namespace stepwise
