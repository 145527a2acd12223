// The bf16 tensor-core attention backward kernels (cuda/attention_backward_mma.cuh: delta, dQ, chunked dK/dV and the
// ordered reduction of the chunks) run under the CPU SIMT emulator and are compared with
// stepwise::cpu::attention_backward on the same bf16-rounded inputs (out and lse from the CPU forward, out rounded to
// bf16): D = 64, 128, 256, lengths that are not multiples of the 64-row / 64-key tiles, segments, q_offset > 0, a
// custom scale, a fully masked row (lse = -inf), and the dK/dV work cut in chunks (with a forced plan), with
// NaN-poisoned outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda/attention_backward_mma.cuh"
#include "emu_testing.h"
#include "emulator.h"

namespace stepwise {
namespace {

namespace mma = cuda::attention_backward_mma;
using bf16 = cuda::bf16;
using emu_testing::normalized_error;
using emu_testing::random_bf16_values;
using emu_testing::random_segments;
using emu_testing::to_bf16;

struct Case {
  int64_t B, Tq, Tk, H, D, q_offset;
  bool segments;
  double scale;
  int64_t tiles_per_chunk;  // 0: the launcher's plan for an H200 (132 SMs)
  int64_t masked_row;       // a row (b = 0, query, head 0) whose lse is set to -inf, or -1
};

std::string describe(const Case& c) {
  return "B=" + std::to_string(c.B) + " Tq=" + std::to_string(c.Tq) + " Tk=" + std::to_string(c.Tk) +
         " H=" + std::to_string(c.H) + " D=" + std::to_string(c.D) + " q_offset=" + std::to_string(c.q_offset) +
         (c.segments ? " seg" : "") + " tiles_per_chunk=" + std::to_string(c.tiles_per_chunk);
}

template <int D>
void run_case(const Case& c, uint64_t seed) {
  const int64_t R = c.Tq * c.H, rows = c.B * R, kv = c.B * c.Tk * D;
  const std::vector<float> q = random_bf16_values(rows * D, seed, -2.f, 2.f);
  const std::vector<float> k = random_bf16_values(kv, seed + 1, -2.f, 2.f);
  const std::vector<float> v = random_bf16_values(kv, seed + 2, -1.f, 1.f);
  const std::vector<float> dout = random_bf16_values(rows * D, seed + 3, -1.f, 1.f);
  const std::vector<int32_t> seg = c.segments ? random_segments(c.B, c.Tk, seed + 4) : std::vector<int32_t>{};

  // CPU forward (float) for out and lse, out rounded to bf16 as the device stores it.
  std::vector<float> out(q.size()), lse(static_cast<size_t>(c.B * c.H * c.Tq));
  AttentionParams<float> fp;
  fp.B = c.B, fp.Tq = c.Tq, fp.Tk = c.Tk, fp.H = c.H, fp.D = D, fp.q_offset = c.q_offset, fp.scale = c.scale;
  fp.q = q.data(), fp.k = k.data(), fp.v = v.data(), fp.seg = c.segments ? seg.data() : nullptr;
  fp.out = out.data(), fp.lse = lse.data();
  cpu::attention_forward(fp);
  for (auto& x : out) x = static_cast<float>(bf16(x));
  if (c.masked_row >= 0) lse[static_cast<size_t>(c.masked_row)] = -std::numeric_limits<float>::infinity();

  std::vector<float> want_dq(q.size()), want_dk(k.size()), want_dv(v.size());
  AttentionParams<float> bp = fp;
  bp.out = out.data(), bp.dout = dout.data(), bp.dq = want_dq.data(), bp.dk = want_dk.data(),
  bp.dv = want_dv.data();
  cpu::attention_backward(bp);

  const std::vector<bf16> q_h = to_bf16(q), k_h = to_bf16(k), v_h = to_bf16(v), dout_h = to_bf16(dout);
  std::vector<bf16> out_h = to_bf16(out);

  // delta = rowsum(dO * O) per flattened row by the delta kernel, checked against a double-precision sum.
  std::vector<float> delta(static_cast<size_t>(rows), std::numeric_limits<float>::quiet_NaN());
  emu::launch(mma::attention_delta_mma_kernel<D>, dim3(static_cast<unsigned>(cuda::ceil_div(rows * (D / 8), 256))),
              dim3(256), 0, dout_h.data(), out_h.data(), delta.data(), rows);
  for (int64_t r = 0; r < rows; ++r) {
    double want = 0, magnitude = 0;
    for (int64_t d = 0; d < D; ++d) {
      want += double(dout[r * D + d]) * out[r * D + d];
      magnitude += std::fabs(double(dout[r * D + d]) * out[r * D + d]);
    }
    ASSERT_NEAR(delta[static_cast<size_t>(r)], want, 1e-5 * magnitude + 1e-30) << "delta row " << r << describe(c);
  }
  const bf16 nan = bf16(std::numeric_limits<float>::quiet_NaN());
  std::vector<bf16> dq(q.size(), nan), dk(k.size(), nan), dv(v.size(), nan);
  AttentionParams<bf16, float> p;
  p.B = c.B, p.Tq = c.Tq, p.Tk = c.Tk, p.H = c.H, p.D = D, p.q_offset = c.q_offset, p.scale = c.scale;
  p.q = q_h.data(), p.k = k_h.data(), p.v = v_h.data(), p.seg = c.segments ? seg.data() : nullptr;
  p.out = out_h.data(), p.lse = lse.data(), p.dout = dout_h.data();
  p.dq = dq.data(), p.dk = dk.data(), p.dv = dv.data();
  const float scale = static_cast<float>(c.scale > 0 ? c.scale : 1.0 / std::sqrt(double(D)));

  ASSERT_EQ(cudaFuncSetAttribute(mma::attention_dq_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(mma::dq_shared_bytes<D>())),
            cudaSuccess);
  ASSERT_EQ(cudaFuncSetAttribute(mma::attention_dkdv_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(mma::dkdv_shared_bytes<D>())),
            cudaSuccess);
  emu::launch(mma::attention_dq_mma_kernel<D>, dim3(static_cast<unsigned>(cuda::ceil_div(R, mma::kTile)), c.B),
              dim3(mma::kThreads), mma::dq_shared_bytes<D>(), p, delta.data(), scale);

  mma::DkdvPlan plan = mma::plan_dkdv(c.B, c.Tq, c.Tk, c.H, c.q_offset, 132);
  if (c.tiles_per_chunk > 0) {
    const int64_t most = mma::row_tiles(R);
    plan.tiles_per_chunk = c.tiles_per_chunk;
    plan.chunks = static_cast<int>(cuda::ceil_div(most, c.tiles_per_chunk));
  }
  mma::DkdvOutput dkdv_out;
  dkdv_out.tiles_per_chunk = plan.tiles_per_chunk, dkdv_out.chunks = plan.chunks;
  std::vector<float> part(plan.chunks > 1 ? static_cast<size_t>(2 * kv * plan.chunks) : 0,
                          std::numeric_limits<float>::quiet_NaN());
  if (plan.chunks > 1) dkdv_out.part_dk = part.data(), dkdv_out.part_dv = part.data() + kv * plan.chunks;
  emu::launch(mma::attention_dkdv_mma_kernel<D>,
              dim3(static_cast<unsigned>(cuda::ceil_div(c.Tk, mma::kTile)), plan.chunks, c.B), dim3(mma::kThreads),
              mma::dkdv_shared_bytes<D>(), p, delta.data(), scale, dkdv_out);
  if (plan.chunks > 1)
    emu::launch(mma::attention_dkdv_reduce_kernel, dim3(3), dim3(256), 0, dkdv_out.part_dk, dkdv_out.part_dv,
                dk.data(), dv.data(), kv, plan.chunks, scale);

  EXPECT_LT(normalized_error(dq, want_dq), 1e-2) << "dq " << describe(c);
  EXPECT_LT(normalized_error(dk, want_dk), 1e-2) << "dk " << describe(c);
  EXPECT_LT(normalized_error(dv, want_dv), 1e-2) << "dv " << describe(c);
}

void run(const Case& c, uint64_t seed) {
  switch (c.D) {
    case 64: run_case<64>(c, seed); break;
    case 128: run_case<128>(c, seed); break;
    default: run_case<256>(c, seed); break;
  }
}

TEST(EmuAttentionBackward, HeadDim64) {
  run({2, 70, 70, 3, 64, 0, true, 0, 0, -1}, 100);     // segments, odd lengths, two batches
  run({1, 45, 130, 3, 64, 85, false, 0, 1, 7}, 200);   // q_offset, chunks of one row tile, a fully masked row
}

TEST(EmuAttentionBackward, HeadDim128) {
  run({1, 66, 66, 2, 128, 0, false, 0.2, 2, -1}, 300);  // custom scale, chunks of two row tiles
  run({1, 20, 20, 7, 128, 0, true, 0, 0, -1}, 400);     // R = 140 rows over one key tile
}

TEST(EmuAttentionBackward, HeadDim256) {
  run({1, 77, 77, 1, 256, 0, false, 0, 0, -1}, 500);  // one head, two key tiles
  run({1, 24, 24, 8, 256, 0, true, 0, 1, 3}, 600);    // Step-3-like many heads, segments, chunked, masked row
}

// The dK/dV split (host arithmetic): chunks cover every row tile of key tile 0 (the most loaded), none is empty there,
// the causal work of Step-3's shape is spread over several chunks, and small or already wide problems get one chunk.
TEST(EmuAttentionBackward, DkdvPlan) {
  struct Shape {
    int64_t B, T, H, q_offset;
  };
  for (const Shape& s : {Shape{2, 4096, 64, 0}, Shape{8, 2048, 16, 0}, Shape{1, 70, 3, 0}, Shape{512, 128, 8, 0},
                         Shape{1, 100, 64, 3000}}) {
    const mma::DkdvPlan plan = mma::plan_dkdv(s.B, s.T, s.T + s.q_offset, s.H, s.q_offset, 132);
    const int64_t most = mma::row_tiles(s.T * s.H);
    EXPECT_GE(plan.tiles_per_chunk * plan.chunks, most) << s.B << " " << s.T << " " << s.H;
    EXPECT_LT(plan.tiles_per_chunk * (plan.chunks - 1), most) << s.B << " " << s.T << " " << s.H;
    EXPECT_LE(plan.chunks, 65535);
  }
  EXPECT_GT(mma::plan_dkdv(2, 4096, 4096, 64, 0, 132).chunks, 4);
  EXPECT_EQ(mma::plan_dkdv(1, 70, 70, 3, 0, 132).chunks, 1);
  EXPECT_EQ(mma::plan_dkdv(512, 128, 128, 8, 0, 132).chunks, 1);
}

}  // namespace
}  // namespace stepwise
