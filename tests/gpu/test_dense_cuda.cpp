// CUDA dense ops (cuda/dense.h) against the CPU reference (stepwise::cpu, fp32) on fresh random inputs, for T = float
// and T = bf16 (the CPU sees the bf16-rounded inputs). Outputs start poisoned (NaN); accumulated gradients start from
// non-zero values. Odd sizes on purpose. Argument checks and zero shapes run without a device.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "cuda/dense.h"
#include "gpu_testing.h"
#include "ops/dense.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

template <class T>
class DenseCuda : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, bf16>;
TYPED_TEST_SUITE(DenseCuda, ElementTypes);

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  EXPECT_LT(normalized_error(got, want), tol) << what;
}

std::vector<int32_t> random_ids(int64_t n, int32_t lo, int32_t hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = dist(rng);
  return ids;
}

TYPED_TEST(DenseCuda, EmbeddingForwardAndBackward) {
  STEPWISE_REQUIRE_GPU();
  using T = TypeParam;
  const int64_t N = 45, C = 203, V = 17;   // V < N: ids repeat, so the backward must add rows
  const auto table = representable<T>(random_vector(V * C, 1));
  const auto dout = representable<T>(random_vector(N * C, 2));
  const auto dtable0 = random_vector(V * C, 3);
  const auto ids = random_ids(N, 0, static_cast<int32_t>(V), 4);
  auto d_table = upload<T>(table);
  auto d_dout = upload<T>(dout);
  cuda::DeviceBuffer<float> d_dtable(dtable0);
  cuda::DeviceBuffer<int32_t> d_ids(ids);
  auto d_out = poisoned<T>(N * C);

  EmbeddingParams<T, float> p;
  p.out = d_out.data(), p.dtable = d_dtable.data(), p.table = d_table.data(), p.dout = d_dout.data();
  p.ids = d_ids.data(), p.N = N, p.C = C, p.V = V;
  cuda::embedding_forward(p);
  cuda::embedding_backward(p);

  std::vector<float> out(N * C), dtable = dtable0;
  EmbeddingParams<float> ref;
  ref.out = out.data(), ref.dtable = dtable.data(), ref.table = table.data(), ref.dout = dout.data();
  ref.ids = ids.data(), ref.N = N, ref.C = C, ref.V = V;
  cpu::embedding_forward(ref);
  cpu::embedding_backward(ref);
  expect_close(download(d_out), out, tolerance<T>(), "embedding out");
  expect_close(download(d_dtable), dtable, tolerance<T>(), "embedding dtable (+=)");
}

// Runs the forward and the backward (with and without accumulate_dinp) for one width C.
template <class T>
void check_rmsnorm(int64_t N, int64_t C, uint64_t seed) {
  const std::string tag = " (N=" + std::to_string(N) + ", C=" + std::to_string(C) + ")";
  const auto inp = representable<T>(random_vector(N * C, seed, -2.f, 2.f));
  const auto weight = representable<T>(random_vector(C, seed + 1, 0.5f, 1.5f));
  const auto dout = representable<T>(random_vector(N * C, seed + 2));
  const auto dinp0 = representable<T>(random_vector(N * C, seed + 3));
  const auto dweight0 = random_vector(C, seed + 4);

  // CPU reference: forward, then backward into fresh dinp and into dinp0 (accumulate), dweight from dweight0 twice.
  std::vector<float> out(N * C), rstd(N), dinp(N * C), dinp_acc = dinp0, dweight = dweight0;
  RmsNormParams<float> ref;
  ref.out = out.data(), ref.rstd = rstd.data(), ref.inp = inp.data(), ref.weight = weight.data();
  ref.dout = dout.data(), ref.dweight = dweight.data(), ref.N = N, ref.C = C;
  cpu::rmsnorm_forward(ref);
  ref.dinp = dinp.data();
  cpu::rmsnorm_backward(ref);
  ref.dinp = dinp_acc.data(), ref.accumulate_dinp = true;
  cpu::rmsnorm_backward(ref);

  auto d_inp = upload<T>(inp), d_weight = upload<T>(weight), d_dout = upload<T>(dout), d_dinp_acc = upload<T>(dinp0);
  auto d_out = poisoned<T>(N * C), d_dinp = poisoned<T>(N * C);
  auto d_rstd = poisoned<float>(N);
  cuda::DeviceBuffer<float> d_dweight(dweight0);
  RmsNormParams<T, float> p;
  p.out = d_out.data(), p.rstd = d_rstd.data(), p.inp = d_inp.data(), p.weight = d_weight.data();
  p.dout = d_dout.data(), p.dweight = d_dweight.data(), p.N = N, p.C = C;
  cuda::rmsnorm_forward(p);
  expect_close(download(d_out), out, tolerance<T>(), "rmsnorm out" + tag);
  expect_close(download(d_rstd), rstd, tolerance<T>(), "rmsnorm rstd" + tag);
  // The backward reads the CPU's rstd so that it is checked on its own.
  d_rstd.upload(rstd);
  p.dinp = d_dinp.data();
  cuda::rmsnorm_backward(p);
  p.dinp = d_dinp_acc.data(), p.accumulate_dinp = true;
  cuda::rmsnorm_backward(p);
  expect_close(download(d_dinp), dinp, tolerance<T>(), "rmsnorm dinp" + tag);
  expect_close(download(d_dinp_acc), dinp_acc, tolerance<T>(), "rmsnorm dinp (+=)" + tag);
  expect_close(download(d_dweight), dweight, tolerance<T>(), "rmsnorm dweight (+= twice)" + tag);
}

TYPED_TEST(DenseCuda, RmsNormMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  check_rmsnorm<TypeParam>(37, 77, 10);     // narrower than a block
  check_rmsnorm<TypeParam>(5, 1000, 20);    // several columns per thread
  check_rmsnorm<TypeParam>(131, 64, 30);    // more rows than the dweight row groups
}

TYPED_TEST(DenseCuda, AddRmsNormMatchesAddThenNorm) {
  STEPWISE_REQUIRE_GPU();
  using T = TypeParam;
  const int64_t N = 23, C = 301;
  const auto x = representable<T>(random_vector(N * C, 40));
  const auto branch = representable<T>(random_vector(N * C, 41));
  const auto weight = representable<T>(random_vector(C, 42, 0.5f, 1.5f));
  // CPU: x += branch, rounded to T as the device stores it, then RMSNorm of the updated x.
  std::vector<float> x_new = x;
  cpu::add_inplace(x_new.data(), branch.data(), N * C);
  x_new = representable<T>(x_new);
  std::vector<float> out(N * C), rstd(N);
  RmsNormParams<float> ref;
  ref.out = out.data(), ref.rstd = rstd.data(), ref.inp = x_new.data(), ref.weight = weight.data();
  ref.N = N, ref.C = C;
  cpu::rmsnorm_forward(ref);

  auto d_x = upload<T>(x), d_branch = upload<T>(branch), d_weight = upload<T>(weight);
  auto d_out = poisoned<T>(N * C);
  auto d_rstd = poisoned<float>(N);
  RmsNormParams<T, float> p;
  p.out = d_out.data(), p.rstd = d_rstd.data(), p.weight = d_weight.data(), p.N = N, p.C = C;
  cuda::add_rmsnorm_forward(d_x.data(), d_branch.data(), p);
  expect_close(download(d_x), x_new, tolerance<T>(), "add_rmsnorm x");
  expect_close(download(d_out), out, tolerance<T>(), "add_rmsnorm out");
  expect_close(download(d_rstd), rstd, tolerance<T>(), "add_rmsnorm rstd");
}

template <class T>
void check_rope(int64_t N, int64_t H, int64_t D, uint64_t seed) {
  const std::string tag = " (N=" + std::to_string(N) + ", H=" + std::to_string(H) + ", D=" + std::to_string(D) + ")";
  const auto x = representable<T>(random_vector(N * H * D, seed));
  const auto pos = random_ids(N, 0, 200000, seed + 1);   // large positions: angles far beyond 2 pi
  std::vector<float> fwd = x, bwd = x;
  RopeParams<float> ref;
  ref.pos = pos.data(), ref.N = N, ref.H = H, ref.D = D, ref.theta = 10000.0;
  ref.x = fwd.data();
  cpu::rope_forward(ref);
  ref.x = bwd.data();
  cpu::rope_backward(ref);

  cuda::DeviceBuffer<int32_t> d_pos(pos);
  auto d_fwd = upload<T>(x), d_bwd = upload<T>(x);
  RopeParams<T> p;
  p.pos = d_pos.data(), p.N = N, p.H = H, p.D = D, p.theta = 10000.0;
  p.x = d_fwd.data();
  cuda::rope_forward(p);
  p.x = d_bwd.data();
  cuda::rope_backward(p);
  expect_close(download(d_fwd), fwd, tolerance<T>(), "rope forward" + tag);
  expect_close(download(d_bwd), bwd, tolerance<T>(), "rope backward" + tag);
}

TYPED_TEST(DenseCuda, RopeMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  check_rope<TypeParam>(19, 3, 64, 50);
  check_rope<TypeParam>(7, 5, 18, 60);   // odd half width
}

// weight_offset > 0 places the weight that many elements into its buffer (a parameter inside an arena), so the GEMMs
// see an operand that is not 256-byte aligned.
template <class T>
void check_linear(int64_t N, int64_t I, int64_t O, bool accumulate, bool with_dinp, bool with_dweight, uint64_t seed,
                  int64_t weight_offset = 0) {
  const std::string tag = " (N=" + std::to_string(N) + ", I=" + std::to_string(I) + ", O=" + std::to_string(O) +
                          ", accumulate=" + std::to_string(accumulate) + ")";
  const auto inp = representable<T>(random_vector(N * I, seed));
  const auto weight = representable<T>(random_vector(O * I, seed + 1));
  const auto dout = representable<T>(random_vector(N * O, seed + 2));
  const auto dinp0 = representable<T>(random_vector(N * I, seed + 3));
  const auto dweight0 = random_vector(O * I, seed + 4);
  std::vector<float> out(N * O), dinp = dinp0, dweight = dweight0;
  LinearParams<float> ref;
  ref.out = out.data(), ref.inp = inp.data(), ref.weight = weight.data(), ref.dout = dout.data();
  ref.dinp = with_dinp ? dinp.data() : nullptr, ref.dweight = with_dweight ? dweight.data() : nullptr;
  ref.N = N, ref.I = I, ref.O = O, ref.accumulate_dinp = accumulate;
  cpu::linear_forward(ref);
  cpu::linear_backward(ref);

  std::vector<float> weight_in_arena(static_cast<size_t>(weight_offset), 0.f);
  weight_in_arena.insert(weight_in_arena.end(), weight.begin(), weight.end());
  auto d_inp = upload<T>(inp), d_weight = upload<T>(weight_in_arena), d_dout = upload<T>(dout);
  auto d_out = poisoned<T>(N * O);
  auto d_dinp = accumulate ? upload<T>(dinp0) : poisoned<T>(N * I);
  cuda::DeviceBuffer<float> d_dweight(dweight0);
  LinearParams<T, float> p;
  p.out = d_out.data(), p.inp = d_inp.data(), p.weight = d_weight.data() + weight_offset, p.dout = d_dout.data();
  p.dinp = with_dinp ? d_dinp.data() : nullptr, p.dweight = with_dweight ? d_dweight.data() : nullptr;
  p.N = N, p.I = I, p.O = O, p.accumulate_dinp = accumulate;
  cuda::linear_forward(p);
  cuda::linear_backward(p);
  expect_close(download(d_out), out, tolerance<T>(), "linear out" + tag);
  if (with_dinp) expect_close(download(d_dinp), dinp, tolerance<T>(), "linear dinp" + tag);
  // Skipped gradients stay untouched: the dweight buffer still holds its initial values.
  expect_close(download(d_dweight), dweight, tolerance<T>(), "linear dweight" + tag);
}

TYPED_TEST(DenseCuda, LinearMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  check_linear<TypeParam>(37, 45, 29, false, true, true, 70);
  check_linear<TypeParam>(37, 45, 29, true, true, true, 80);
  check_linear<TypeParam>(130, 64, 96, false, false, true, 90);   // frozen input: dweight only
  check_linear<TypeParam>(11, 33, 70, false, true, false, 100);   // frozen weight: dinp only
  check_linear<TypeParam>(24, 40, 16, false, true, true, 110, 3);   // weight 3 elements into its buffer
}

TYPED_TEST(DenseCuda, SwigluMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  using T = TypeParam;
  const int64_t N = 29, F = 171;
  const auto gate = representable<T>(random_vector(N * F, 110, -6.f, 6.f));
  const auto up = representable<T>(random_vector(N * F, 111));
  const auto dout = representable<T>(random_vector(N * F, 112));
  std::vector<float> out(N * F), dgate(N * F), dup(N * F);
  SwigluParams<float> ref;
  ref.out = out.data(), ref.gate = gate.data(), ref.up = up.data(), ref.dgate = dgate.data(), ref.dup = dup.data();
  ref.dout = dout.data(), ref.N = N, ref.F = F;
  cpu::swiglu_forward(ref);
  cpu::swiglu_backward(ref);

  auto d_gate = upload<T>(gate), d_up = upload<T>(up), d_dout = upload<T>(dout);
  auto d_out = poisoned<T>(N * F), d_dgate = poisoned<T>(N * F), d_dup = poisoned<T>(N * F);
  SwigluParams<T> p;
  p.out = d_out.data(), p.gate = d_gate.data(), p.up = d_up.data(), p.dgate = d_dgate.data(), p.dup = d_dup.data();
  p.dout = d_dout.data(), p.N = N, p.F = F;
  cuda::swiglu_forward(p);
  cuda::swiglu_backward(p);
  expect_close(download(d_out), out, tolerance<T>(), "swiglu out");
  expect_close(download(d_dgate), dgate, tolerance<T>(), "swiglu dgate");
  expect_close(download(d_dup), dup, tolerance<T>(), "swiglu dup");
}

TYPED_TEST(DenseCuda, AddInplaceMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  using T = TypeParam;
  const int64_t n = 100003;
  const auto y = representable<T>(random_vector(n, 120)), x = representable<T>(random_vector(n, 121));
  std::vector<float> want = y;
  cpu::add_inplace(want.data(), x.data(), n);
  auto d_y = upload<T>(y), d_x = upload<T>(x);
  cuda::add_inplace(d_y.data(), d_x.data(), n);
  expect_close(download(d_y), want, tolerance<T>(), "add_inplace");
}

// Host-side argument checks fire before any launch, so these run without a device.
TEST(DenseCudaArguments, BadDimensionsThrow) {
  RmsNormParams<float, float> norm;
  norm.N = 4, norm.C = 0;
  EXPECT_THROW(cuda::rmsnorm_forward(norm), std::invalid_argument);
  RopeParams<bf16> rope;
  rope.N = 2, rope.H = 1, rope.D = 7;
  EXPECT_THROW(cuda::rope_forward(rope), std::invalid_argument);
  LinearParams<float, float> linear;
  linear.N = -1;
  EXPECT_THROW(cuda::linear_forward(linear), std::invalid_argument);
  EmbeddingParams<bf16, float> emb;
  emb.N = 3, emb.C = 8, emb.V = 10;   // ids is null
  EXPECT_THROW(cuda::embedding_forward(emb), std::invalid_argument);
  SwigluParams<float> swiglu;
  swiglu.N = 2, swiglu.F = 3;         // gate and up are null
  EXPECT_THROW(cuda::swiglu_backward(swiglu), std::invalid_argument);
}

TEST(DenseCudaArguments, ZeroShapesAreNoOps) {
  EmbeddingParams<float, float> emb;
  EXPECT_NO_THROW(cuda::embedding_forward(emb));
  EXPECT_NO_THROW(cuda::embedding_backward(emb));
  RmsNormParams<bf16, float> norm;
  norm.C = 16;
  EXPECT_NO_THROW(cuda::rmsnorm_forward(norm));
  EXPECT_NO_THROW(cuda::rmsnorm_backward(norm));
  EXPECT_NO_THROW(cuda::add_rmsnorm_forward<bf16>(nullptr, nullptr, norm));
  RopeParams<float> rope;
  rope.D = 8;
  EXPECT_NO_THROW(cuda::rope_forward(rope));
  LinearParams<bf16, float> linear;
  EXPECT_NO_THROW(cuda::linear_forward(linear));
  EXPECT_NO_THROW(cuda::linear_backward(linear));
  SwigluParams<float> swiglu;
  EXPECT_NO_THROW(cuda::swiglu_forward(swiglu));
  EXPECT_NO_THROW(cuda::add_inplace<float>(nullptr, nullptr, 0));
}

}  // namespace
}  // namespace stepwise
