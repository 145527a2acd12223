// Tests of the CPU flash MFA attention: forward against a naive full softmax(QK^T)V in double, finite-difference
// backward checks (plain causal, packed segments, q_offset), float-vs-double agreement, KV-cache inference
// equivalence, argument errors, and a printed timing at B=1, T=1024, H=8, D=64 beside the measured SGEMM rate.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "core/blas.h"
#include "kernels/gradcheck.h"
#include "ops/attention.h"

namespace stepwise {
namespace {

using testing::random_vector;

struct AttnCase {
  int64_t B, Tq, Tk, H, D, q_offset;
  bool segments;
};

// Packed documents: boundaries differ per sequence so masks differ across the batch.
std::vector<int32_t> make_segments(int64_t B, int64_t Tk) {
  std::vector<int32_t> seg(B * Tk);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t doc_len = 17 + 23 * b;
    for (int64_t j = 0; j < Tk; ++j) seg[b * Tk + j] = static_cast<int32_t>(j / doc_len);
  }
  return seg;
}

// Naive reference: full score rows, softmax over the visible keys, in double. out (B,Tq,H,D), lse (B,H,Tq).
void naive_attention(const AttnCase& c, const std::vector<double>& q, const std::vector<double>& k,
                     const std::vector<double>& v, const int32_t* seg, std::vector<double>& out,
                     std::vector<double>& lse) {
  out.assign(c.B * c.Tq * c.H * c.D, 0.0);
  lse.assign(c.B * c.H * c.Tq, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
  std::vector<double> s(c.Tk);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t i = 0; i < c.Tq; ++i)
      for (int64_t h = 0; h < c.H; ++h) {
        const int64_t pos = c.q_offset + i;
        const double* qr = &q[((b * c.Tq + i) * c.H + h) * c.D];
        double mx = -INFINITY;
        for (int64_t j = 0; j < c.Tk; ++j) {
          const bool visible = j <= pos && (!seg || seg[b * c.Tk + j] == seg[b * c.Tk + pos]);
          double dotp = 0;
          for (int64_t d = 0; d < c.D; ++d) dotp += qr[d] * k[(b * c.Tk + j) * c.D + d];
          s[j] = visible ? dotp * scale : -INFINITY;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < c.Tk; ++j) sum += s[j] = std::exp(s[j] - mx);
        double* o = &out[((b * c.Tq + i) * c.H + h) * c.D];
        for (int64_t j = 0; j < c.Tk; ++j)
          for (int64_t d = 0; d < c.D; ++d) o[d] += s[j] / sum * v[(b * c.Tk + j) * c.D + d];
        lse[(b * c.H + h) * c.Tq + i] = mx + std::log(sum);
      }
}

// Inputs and buffers of one case, in precision T.
template <class T>
struct AttnRun {
  AttnCase c;
  std::vector<T> q, k, v, out, lse, dq, dk, dv, dout;
  std::vector<int32_t> seg;

  AttnRun(const AttnCase& cs, uint64_t seed) : c(cs) {
    q = random_vector<T>(c.B * c.Tq * c.H * c.D, seed);
    k = random_vector<T>(c.B * c.Tk * c.D, seed + 1);
    v = random_vector<T>(c.B * c.Tk * c.D, seed + 2);
    dout = random_vector<T>(q.size(), seed + 3);
    out.resize(q.size());
    dq.resize(q.size());
    lse.resize(c.B * c.H * c.Tq);
    dk.resize(k.size());
    dv.resize(v.size());
    if (c.segments) seg = make_segments(c.B, c.Tk);
  }
  AttentionParams<T> params() {
    AttentionParams<T> p;
    p.out = out.data(), p.lse = lse.data(), p.q = q.data(), p.k = k.data(), p.v = v.data();
    p.seg = seg.empty() ? nullptr : seg.data();
    p.dq = dq.data(), p.dk = dk.data(), p.dv = dv.data(), p.dout = dout.data();
    p.B = c.B, p.Tq = c.Tq, p.Tk = c.Tk, p.H = c.H, p.D = c.D, p.q_offset = c.q_offset;
    return p;
  }
  void forward() { cpu::attention_forward(params()); }
  void backward() { cpu::attention_backward(params()); }
};

template <class A, class B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return worst;
}

template <class A>
double max_abs(const std::vector<A>& a) {
  double m = 0;
  for (auto x : a) m = std::max(m, std::abs(static_cast<double>(x)));
  return m;
}

// Shapes cross the tile sizes (256 stacked rows, 128 keys): several query tiles and key tiles, ragged last tiles.
const AttnCase kCausal{2, 150, 150, 5, 8, 0, false};
const AttnCase kSegments{2, 150, 150, 5, 8, 0, true};
const AttnCase kOffset{2, 11, 150, 5, 8, 139, true};
const AttnCase kManyHeads{1, 100, 100, 32, 4, 0, false};

void expect_matches_naive(const AttnCase& c) {
  AttnRun<double> run(c, 11);
  run.forward();
  std::vector<double> out, lse;
  naive_attention(c, run.q, run.k, run.v, run.seg.empty() ? nullptr : run.seg.data(), out, lse);
  EXPECT_LT(max_abs_diff(run.out, out), 1e-12);
  EXPECT_LT(max_abs_diff(run.lse, lse), 1e-12);
}

TEST(Attention, ForwardMatchesNaiveCausal) { expect_matches_naive(kCausal); }
TEST(Attention, ForwardMatchesNaiveSegments) { expect_matches_naive(kSegments); }
TEST(Attention, ForwardMatchesNaiveWithOffset) { expect_matches_naive(kOffset); }
TEST(Attention, ForwardMatchesNaiveManyHeads) { expect_matches_naive(kManyHeads); }

TEST(Attention, SegmentsChangeTheResult) {  // guards against a mask that is silently ignored
  AttnRun<double> plain(kCausal, 11), packed(kSegments, 11);
  plain.forward();
  packed.forward();
  EXPECT_GT(max_abs_diff(plain.out, packed.out), 1e-3);
}

// Finite differences of L = sum(out * dout) with respect to q, k and v, about `samples` entries of each (an odd
// stride, so that samples fall on every head, feature and tile position) to stay fast.
void expect_gradients(const AttnCase& c, size_t samples) {
  AttnRun<double> run(c, 21);
  run.forward();
  run.backward();
  const std::vector<double> dq = run.dq, dk = run.dk, dv = run.dv;
  auto loss = [&] {
    run.forward();
    return testing::dot(run.out, run.dout);
  };
  auto stride = [&](size_t n) { return std::max<size_t>(1, n / samples) | 1; };
  testing::expect_gradient(loss, run.q, dq, "attention dq", 1e-7, 1e-5, stride(dq.size()));
  testing::expect_gradient(loss, run.k, dk, "attention dk", 1e-7, 1e-5, stride(dk.size()));
  testing::expect_gradient(loss, run.v, dv, "attention dv", 1e-7, 1e-5, stride(dv.size()));
}

TEST(Attention, GradientCausal) { expect_gradients(kCausal, 40); }
TEST(Attention, GradientSegments) { expect_gradients(kSegments, 40); }
TEST(Attention, GradientWithOffset) { expect_gradients(kOffset, 40); }
TEST(Attention, GradientManyHeads) { expect_gradients(kManyHeads, 40); }

// A shape large enough for the threaded path, with segments: the same result (to rounding) on one thread.
TEST(Attention, ThreadedMatchesSingleThread) {
  const AttnCase c{3, 300, 300, 8, 16, 0, true};
  AttnRun<double> threaded(c, 61), single(c, 61);
  threaded.forward();
  threaded.backward();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  single.forward();
  single.backward();
  omp_set_num_threads(threads);
  EXPECT_LT(max_abs_diff(threaded.out, single.out), 1e-13);
  EXPECT_LT(max_abs_diff(threaded.dq, single.dq), 1e-12);
  EXPECT_LT(max_abs_diff(threaded.dk, single.dk), 1e-12);
  EXPECT_LT(max_abs_diff(threaded.dv, single.dv), 1e-12);
}

TEST(Attention, FloatAgreesWithDouble) {
  for (const AttnCase& c : {kCausal, kSegments, kOffset}) {
    AttnRun<float> f(c, 31);
    AttnRun<double> d(c, 31);
    f.forward();
    f.backward();
    d.forward();
    d.backward();
    EXPECT_LT(max_abs_diff(f.out, d.out) / max_abs(d.out), 2e-6);
    EXPECT_LT(max_abs_diff(f.lse, d.lse) / max_abs(d.lse), 2e-6);
    EXPECT_LT(max_abs_diff(f.dq, d.dq) / max_abs(d.dq), 1e-5);
    EXPECT_LT(max_abs_diff(f.dk, d.dk) / max_abs(d.dk), 1e-5);
    EXPECT_LT(max_abs_diff(f.dv, d.dv) / max_abs(d.dv), 1e-5);
  }
}

// Decoding Tq new tokens against Tk cached keys (q_offset = Tk - Tq) reproduces the last Tq rows of full attention.
template <class T>
void expect_inference_equivalence(bool segments, double tol) {
  const AttnCase full{2, 150, 150, 5, 8, 0, segments};
  AttnRun<T> whole(full, 41);
  whole.forward();
  for (int64_t tq : {1, 6}) {
    const AttnCase tail{2, tq, 150, 5, 8, 150 - tq, segments};
    AttnRun<T> last(tail, 41);
    last.k = whole.k, last.v = whole.v, last.seg = whole.seg;
    const int64_t row = full.H * full.D;
    for (int64_t b = 0; b < 2; ++b)
      std::copy_n(&whole.q[(b * full.Tq + full.Tq - tq) * row], tq * row, &last.q[b * tq * row]);
    last.forward();
    double worst = 0, worst_lse = 0;
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t x = 0; x < tq * row; ++x)
        worst = std::max(worst, std::abs(static_cast<double>(last.out[b * tq * row + x]) -
                                         whole.out[(b * full.Tq + full.Tq - tq) * row + x]));
      for (int64_t h = 0; h < full.H; ++h)
        for (int64_t i = 0; i < tq; ++i)
          worst_lse = std::max(worst_lse, std::abs(static_cast<double>(last.lse[(b * full.H + h) * tq + i]) -
                                                   whole.lse[(b * full.H + h) * full.Tq + full.Tq - tq + i]));
    }
    EXPECT_LT(worst, tol) << "Tq = " << tq;
    EXPECT_LT(worst_lse, tol) << "Tq = " << tq;
  }
}

TEST(Attention, InferenceEquivalenceDouble) {
  expect_inference_equivalence<double>(false, 1e-13);
  expect_inference_equivalence<double>(true, 1e-13);
}
TEST(Attention, InferenceEquivalenceFloat) { expect_inference_equivalence<float>(false, 2e-6); }

TEST(Attention, RejectsQueriesPastTheCache) {
  AttnRun<float> run({1, 4, 8, 2, 4, 6, false}, 1);  // q_offset + Tq = 10 > Tk = 8
  EXPECT_THROW(run.forward(), std::invalid_argument);
}

// Timing, printed only: useful causal FLOPs = 4*H*D*T(T+1)/2 forward, 2.5x that backward (five GEMM-shaped products
// against two, the QK^T recompute not counted). The float result is also checked against double on the same inputs.
TEST(Attention, TimingAgainstSgemm) {
  const AttnCase c{1, 1024, 1024, 8, 64, 0, false};
  AttnRun<float> f(c, 51);
  auto seconds = [](auto&& fn) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double fwd_s = seconds([&] { f.forward(); });
  const double bwd_s = seconds([&] { f.backward(); });
  const double fwd_flops = 4.0 * c.H * c.D * (c.Tq * (c.Tq + 1) / 2.0);
  const double sgemm = measure_sgemm_gflops(1024, 5);
  std::printf("attention B=1 T=1024 H=8 D=64 float (OpenBLAS core %s):\n", blas_core_name().c_str());
  std::printf("  forward  %7.2f ms  %6.1f GFLOP/s\n", fwd_s * 1e3, fwd_flops / fwd_s / 1e9);
  std::printf("  backward %7.2f ms  %6.1f GFLOP/s\n", bwd_s * 1e3, 2.5 * fwd_flops / bwd_s / 1e9);
  std::printf("  fwd+bwd  %7.2f ms  %6.1f GFLOP/s   (SGEMM 1024^3 in this run: %.1f GFLOP/s)\n",
              (fwd_s + bwd_s) * 1e3, 3.5 * fwd_flops / (fwd_s + bwd_s) / 1e9, sgemm);

  AttnRun<double> d(c, 51);
  d.forward();
  EXPECT_LT(max_abs_diff(f.out, d.out) / max_abs(d.out), 1e-5);
}

}  // namespace
}  // namespace stepwise
