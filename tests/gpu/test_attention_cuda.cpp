// cuda::attention_forward / attention_backward against the CPU reference (stepwise::cpu, float) on random inputs:
// fp32 and bf16, poisoned outputs, odd lengths, packed-segment masks, q_offset > 0, one and many heads, head dims
// from 8 to 256 (multiples of 8 and not), a custom scale; backward is checked for run-to-run determinism too. The bf16
// forward's tensor-core path (D 64 / 128 / 256) gets longer sequences, and unaligned tensors its CUDA-core fallback.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "cuda/attention.h"
#include "gpu_testing.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

struct AttnCase {
  int64_t B, Tq, Tk, H, D, q_offset;
  bool segments;
  double scale;
};

const AttnCase kCases[] = {
    {1, 1, 1, 1, 8, 0, false, 0},     {2, 37, 37, 3, 64, 0, true, 0},    {1, 19, 50, 4, 40, 31, false, 0},
    {2, 45, 45, 1, 256, 0, false, 0}, {1, 17, 17, 64, 256, 0, true, 0},  {1, 70, 83, 16, 128, 13, true, 0},
    {1, 33, 33, 5, 20, 0, false, 0},  {1, 29, 29, 2, 96, 0, false, 0.3}, {3, 66, 66, 4, 64, 0, true, 0},
    {1, 70, 70, 64, 256, 0, false, 0},  // the benchmark's path (Step-3 heads, no segments) over several key tiles
};

std::string describe(const AttnCase& c) {
  return "B=" + std::to_string(c.B) + " Tq=" + std::to_string(c.Tq) + " Tk=" + std::to_string(c.Tk) +
         " H=" + std::to_string(c.H) + " D=" + std::to_string(c.D) + " q_offset=" + std::to_string(c.q_offset) +
         (c.segments ? " seg" : "");
}

// Packed documents: per batch, segment ids that grow by one at random boundaries (lengths 1 .. Tk / 3 + 1).
std::vector<int32_t> random_segments(int64_t B, int64_t Tk, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> len(1, Tk / 3 + 1);
  std::vector<int32_t> seg(static_cast<size_t>(B * Tk));
  for (int64_t b = 0; b < B; ++b) {
    int32_t id = 0;
    for (int64_t j = 0, left = len(rng); j < Tk; ++j, --left) {
      if (left == 0) ++id, left = len(rng);
      seg[static_cast<size_t>(b * Tk + j)] = id;
    }
  }
  return seg;
}

// Host inputs of one case, already rounded to what T holds.
template <class T>
struct Inputs {
  std::vector<float> q, k, v, dout;
  std::vector<int32_t> seg;
  Inputs(const AttnCase& c, uint64_t seed)
      : q(representable<T>(random_vector(c.B * c.Tq * c.H * c.D, seed, -2.f, 2.f))),
        k(representable<T>(random_vector(c.B * c.Tk * c.D, seed + 1, -2.f, 2.f))),
        v(representable<T>(random_vector(c.B * c.Tk * c.D, seed + 2))),
        dout(representable<T>(random_vector(c.B * c.Tq * c.H * c.D, seed + 3))) {
    if (c.segments) seg = random_segments(c.B, c.Tk, seed + 4);
  }
};

template <class P>
void set_dims(P& p, const AttnCase& c) {
  p.B = c.B, p.Tq = c.Tq, p.Tk = c.Tk, p.H = c.H, p.D = c.D, p.q_offset = c.q_offset, p.scale = c.scale;
}

// Largest |x| (infinite when x has a non-finite value, e.g. an unwritten poisoned element).
double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) {
    if (!std::isfinite(v)) return std::numeric_limits<double>::infinity();
    m = std::max(m, static_cast<double>(std::fabs(v)));
  }
  return m;
}

// CPU forward: out (B, Tq, H, D) and lse (B, H, Tq).
template <class T>
void cpu_forward(const AttnCase& c, Inputs<T>& in, std::vector<float>& out, std::vector<float>& lse) {
  out.assign(in.q.size(), 0.f);
  lse.assign(static_cast<size_t>(c.B * c.H * c.Tq), 0.f);
  AttentionParams<float> p;
  set_dims(p, c);
  p.q = in.q.data(), p.k = in.k.data(), p.v = in.v.data(), p.seg = c.segments ? in.seg.data() : nullptr;
  p.out = out.data(), p.lse = lse.data();
  cpu::attention_forward(p);
}

template <class T>
void check_forward(const AttnCase& c, uint64_t seed) {
  Inputs<T> in(c, seed);
  std::vector<float> want_out, want_lse;
  cpu_forward(c, in, want_out, want_lse);

  auto dq = upload<T>(in.q), dk = upload<T>(in.k), dv = upload<T>(in.v);
  cuda::DeviceBuffer<int32_t> dseg(c.segments ? in.seg : std::vector<int32_t>(1, 0));
  auto dout = poisoned<T>(static_cast<int64_t>(want_out.size()));
  auto dlse = poisoned<float>(static_cast<int64_t>(want_lse.size()));
  AttentionParams<T, float> p;
  set_dims(p, c);
  p.q = dq.data(), p.k = dk.data(), p.v = dv.data(), p.seg = c.segments ? dseg.data() : nullptr;
  p.out = dout.data(), p.lse = dlse.data();
  cuda::attention_forward<T>(p);
  cuda::device_synchronize();
  EXPECT_LT(normalized_error(download(dout), want_out), tolerance<T>()) << "out " << describe(c);
  EXPECT_LT(normalized_error(download(dlse), want_lse), tolerance<T>()) << "lse " << describe(c);
}

template <class T>
void check_backward(const AttnCase& c, uint64_t seed) {
  Inputs<T> in(c, seed);
  std::vector<float> out, lse;
  cpu_forward(c, in, out, lse);
  out = representable<T>(out);  // the device backward reads out stored as T; give the CPU the same values

  std::vector<float> want_dq(in.q.size()), want_dk(in.k.size()), want_dv(in.v.size());
  AttentionParams<float> cp;
  set_dims(cp, c);
  cp.q = in.q.data(), cp.k = in.k.data(), cp.v = in.v.data(), cp.seg = c.segments ? in.seg.data() : nullptr;
  cp.out = out.data(), cp.lse = lse.data(), cp.dout = in.dout.data();
  cp.dq = want_dq.data(), cp.dk = want_dk.data(), cp.dv = want_dv.data();
  cpu::attention_backward(cp);

  auto dq = upload<T>(in.q), dk = upload<T>(in.k), dv = upload<T>(in.v), ddout = upload<T>(in.dout);
  auto dout_fwd = upload<T>(out);
  auto dlse = upload<float>(lse);
  cuda::DeviceBuffer<int32_t> dseg(c.segments ? in.seg : std::vector<int32_t>(1, 0));
  auto g_dq = poisoned<T>(static_cast<int64_t>(want_dq.size()));
  auto g_dk = poisoned<T>(static_cast<int64_t>(want_dk.size()));
  auto g_dv = poisoned<T>(static_cast<int64_t>(want_dv.size()));
  AttentionParams<T, float> p;
  set_dims(p, c);
  p.q = dq.data(), p.k = dk.data(), p.v = dv.data(), p.seg = c.segments ? dseg.data() : nullptr;
  p.out = dout_fwd.data(), p.lse = dlse.data(), p.dout = ddout.data();
  p.dq = g_dq.data(), p.dk = g_dk.data(), p.dv = g_dv.data();
  cuda::attention_backward<T>(p);
  cuda::device_synchronize();
  const auto got_dk = download(g_dk), got_dv = download(g_dv);
  if (c.Tk == 1) {
    // One key per query: the softmax is constant, so dq and dk are exactly 0 and both sides hold only rounding noise
    // (~1e-7); a relative comparison of two noises is meaningless. Require them to be tiny instead.
    EXPECT_LT(max_abs(download(g_dq)), 1e-4) << "dq " << describe(c);
    EXPECT_LT(max_abs(got_dk), 1e-4) << "dk " << describe(c);
    EXPECT_LT(max_abs(want_dq), 1e-4) << "CPU dq " << describe(c);
  } else {
    EXPECT_LT(normalized_error(download(g_dq), want_dq), tolerance<T>()) << "dq " << describe(c);
    EXPECT_LT(normalized_error(got_dk, want_dk), tolerance<T>()) << "dk " << describe(c);
  }
  EXPECT_LT(normalized_error(got_dv, want_dv), tolerance<T>()) << "dv " << describe(c);

  cuda::attention_backward<T>(p);  // again: the gradients must be bit-identical (no atomics, fixed order)
  cuda::device_synchronize();
  EXPECT_EQ(download(g_dk), got_dk) << "dk not deterministic " << describe(c);
  EXPECT_EQ(download(g_dv), got_dv) << "dv not deterministic " << describe(c);
}

TEST(AttentionCuda, ForwardFp32) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (const AttnCase& c : kCases) check_forward<float>(c, seed += 10);
}

TEST(AttentionCuda, ForwardBf16) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (const AttnCase& c : kCases) check_forward<bf16>(c, seed += 10);
}

// The bf16 tensor-core forward (attention_forward_mma.cuh: D in {64, 128, 256}) at the model head dims, over many
// 64-key tiles: causal diagonal tiles, partial key and row tiles, segments, q_offset > 0, a custom scale.
const AttnCase kTensorCoreCases[] = {
    {2, 300, 300, 8, 64, 0, true, 0},     {1, 257, 257, 1, 64, 0, false, 0},   {1, 200, 333, 16, 128, 133, true, 0},
    {2, 190, 190, 8, 128, 0, false, 0},   {1, 512, 512, 64, 256, 0, false, 0}, {1, 130, 130, 64, 256, 0, true, 0},
    {1, 40, 1000, 64, 256, 960, false, 0.05},
};

TEST(AttentionCuda, ForwardBf16TensorCore) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 2500;
  for (const AttnCase& c : kTensorCoreCases) check_forward<bf16>(c, seed += 10);
}

// q, k, v and out 2 bytes past a 16-byte boundary: the launcher must leave the tensor-core path (cp.async needs 16-byte
// aligned rows) for the CUDA-core kernel, with the same results.
TEST(AttentionCuda, ForwardBf16Unaligned) {
  STEPWISE_REQUIRE_GPU();
  const AttnCase c{1, 70, 70, 8, 128, 0, true, 0};
  Inputs<bf16> in(c, 2600);
  std::vector<float> want_out, want_lse;
  cpu_forward(c, in, want_out, want_lse);
  const auto shifted = [](std::vector<float> x) {
    x.insert(x.begin(), 0.f);
    return x;
  };
  auto dq = upload<bf16>(shifted(in.q)), dk = upload<bf16>(shifted(in.k)), dv = upload<bf16>(shifted(in.v));
  cuda::DeviceBuffer<int32_t> dseg(in.seg);
  auto dout = poisoned<bf16>(static_cast<int64_t>(want_out.size()) + 1);
  auto dlse = poisoned<float>(static_cast<int64_t>(want_lse.size()));
  AttentionParams<bf16, float> p;
  set_dims(p, c);
  p.q = dq.data() + 1, p.k = dk.data() + 1, p.v = dv.data() + 1, p.seg = dseg.data();
  p.out = dout.data() + 1, p.lse = dlse.data();
  cuda::attention_forward<bf16>(p);
  cuda::device_synchronize();
  std::vector<float> got_out = download(dout);
  got_out.erase(got_out.begin());
  EXPECT_LT(normalized_error(got_out, want_out), tolerance<bf16>()) << "out " << describe(c);
  EXPECT_LT(normalized_error(download(dlse), want_lse), tolerance<bf16>()) << "lse " << describe(c);
}

TEST(AttentionCuda, BackwardFp32) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (const AttnCase& c : kCases) check_backward<float>(c, seed += 10);
}

TEST(AttentionCuda, BackwardBf16) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 4000;
  for (const AttnCase& c : kCases) check_backward<bf16>(c, seed += 10);
}

// Argument checks run on the host before any device work, so they need no GPU.
TEST(AttentionCuda, RejectsBadDims) {
  float dummy = 0;
  AttentionParams<float, float> p;
  p.q = p.k = p.v = &dummy, p.out = &dummy, p.lse = &dummy;
  p.B = 1, p.Tq = 4, p.Tk = 4, p.H = 2, p.D = 300;
  EXPECT_THROW(cuda::attention_forward<float>(p), std::invalid_argument);  // D beyond 256
  p.D = 64, p.q_offset = 1;
  EXPECT_THROW(cuda::attention_forward<float>(p), std::invalid_argument);  // q_offset + Tq > Tk
  p.q_offset = 0, p.Tq = -1;
  EXPECT_THROW(cuda::attention_backward<float>(p), std::invalid_argument);
  p.Tq = 4, p.Tk = 0;
  EXPECT_THROW(cuda::attention_backward<float>(p), std::invalid_argument);  // queries but no keys
  p.Tq = 0, p.Tk = 4;
  EXPECT_NO_THROW(cuda::attention_forward<float>(p));  // empty: a no-op
}

// The bf16 tensor-core backward (attention_backward_mma.cuh: D in {64, 128, 256}) at the model head dims: lengths
// that are not multiples of its 64-row / 64-key tiles, segments, q_offset, one and 64 heads, a custom scale, and
// shapes large enough for the dK/dV work to be split in chunks with an ordered reduction (Tq * H rows over many row
// tiles). check_backward also asserts run-to-run bit-identity of dk / dv.
TEST(AttentionCuda, BackwardBf16TensorCore) {
  STEPWISE_REQUIRE_GPU();
  const AttnCase cases[] = {
      {1, 1, 1, 1, 64, 0, false, 0},       {2, 70, 70, 3, 64, 0, true, 0},     {1, 100, 165, 2, 128, 65, false, 0},
      {1, 129, 129, 1, 256, 0, false, 0},  {1, 97, 97, 64, 256, 0, true, 0},   {2, 130, 130, 5, 128, 0, false, 0.2},
      {1, 200, 200, 7, 64, 0, true, 0},    {1, 300, 300, 64, 128, 0, false, 0},
      {1, 1024, 1024, 64, 64, 0, false, 0},  // ~8.7K row tiles: the dK/dV work is split in chunks on an H200
      {1, 512, 512, 64, 256, 0, false, 0},   // Step-3's head shape, chunked dK/dV
  };
  uint64_t seed = 5000;
  for (const AttnCase& c : cases) check_backward<bf16>(c, seed += 10);
}

}  // namespace
}  // namespace stepwise
