// The bf16 tensor-core attention forward (kernels/cuda/attention_forward_mma.cuh) run on the CPU SIMT emulator against
// cpu::attention_forward (float, fed the same bf16-rounded inputs): each head dim the CUDA launcher instantiates
// (64 with 4 warps, 128 and 256 with 8), odd lengths, partial row and key tiles, packed segments, q_offset > 0, a
// custom scale, outputs poisoned beforehand and guard elements past the end of out / lse that must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/attention_forward_mma.cuh"
#include "emu_testing.h"
#include "emulator.h"
#include "ops/attention.h"

namespace stepwise {
namespace {

namespace mma = cuda::attention_forward_mma;
using bf16_t = mma::bf16_t;
using emu_testing::normalized_error;
using emu_testing::random_bf16_values;
using emu_testing::random_segments;
using emu_testing::to_bf16;

struct Case {
  int64_t B, Tq, Tk, H, q_offset;
  bool segments;
  double scale;
};

std::string describe(const Case& c, int D) {
  return "B=" + std::to_string(c.B) + " Tq=" + std::to_string(c.Tq) + " Tk=" + std::to_string(c.Tk) +
         " H=" + std::to_string(c.H) + " D=" + std::to_string(D) + " q_offset=" + std::to_string(c.q_offset) +
         (c.segments ? " seg" : "");
}

constexpr int64_t kGuard = 64;  // poisoned elements past the end of out and lse

template <int D, int Warps>
void check_case(const Case& c, uint64_t seed) {
  // bf16-rounded inputs: as floats for the CPU, as bf16 for the kernel.
  const std::vector<float> q = random_bf16_values(c.B * c.Tq * c.H * D, seed, -2.f, 2.f),
                           k = random_bf16_values(c.B * c.Tk * D, seed + 1, -2.f, 2.f),
                           v = random_bf16_values(c.B * c.Tk * D, seed + 2, -1.f, 1.f);
  const std::vector<bf16_t> q_h = to_bf16(q), k_h = to_bf16(k), v_h = to_bf16(v);
  const std::vector<int32_t> seg = c.segments ? random_segments(c.B, c.Tk, seed + 3) : std::vector<int32_t>{};
  const int64_t out_n = c.B * c.Tq * c.H * D, lse_n = c.B * c.H * c.Tq;

  std::vector<float> want_out(out_n), want_lse(lse_n);
  AttentionParams<float> cp;
  cp.B = c.B, cp.Tq = c.Tq, cp.Tk = c.Tk, cp.H = c.H, cp.D = D, cp.q_offset = c.q_offset, cp.scale = c.scale;
  cp.q = q.data(), cp.k = k.data(), cp.v = v.data();
  cp.seg = c.segments ? seg.data() : nullptr;
  cp.out = want_out.data(), cp.lse = want_lse.data();
  cpu::attention_forward(cp);

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<bf16_t> out(out_n + kGuard, __float2bfloat16_rn(nan));
  std::vector<float> lse(lse_n + kGuard, nan);
  AttentionParams<bf16_t, float> p;
  p.B = c.B, p.Tq = c.Tq, p.Tk = c.Tk, p.H = c.H, p.D = D, p.q_offset = c.q_offset, p.scale = c.scale;
  p.q = q_h.data(), p.k = k_h.data(), p.v = v_h.data(), p.seg = c.segments ? seg.data() : nullptr;
  p.out = out.data(), p.lse = lse.data();
  const float scale = static_cast<float>(c.scale > 0 ? c.scale : 1.0 / std::sqrt(double{D}));

  // The launch of cuda::attention_forward's tensor-core path (attention_forward.cu).
  auto* kernel = &mma::attention_forward_mma_kernel<D, Warps>;
  const size_t bytes = mma::shared_bytes(D, Warps);
  ASSERT_EQ(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
            cudaSuccess);
  const int64_t blocks = (c.Tq * c.H + mma::rows_per_cta(Warps) - 1) / mma::rows_per_cta(Warps) * c.B;
  emu::launch(kernel, dim3(static_cast<unsigned>(blocks)), dim3(Warps * 32), bytes, p, scale * mma::kLog2e);

  std::vector<float> got_out(out_n), got_lse(lse.begin(), lse.begin() + lse_n);
  for (int64_t i = 0; i < out_n; ++i) got_out[i] = __bfloat162float(out[i]);
  EXPECT_LT(normalized_error(got_out, want_out), 1e-2) << "out " << describe(c, D);
  EXPECT_LT(normalized_error(got_lse, want_lse), 1e-2) << "lse " << describe(c, D);
  for (int64_t i = 0; i < kGuard; ++i) {
    EXPECT_TRUE(std::isnan(__bfloat162float(out[out_n + i]))) << "out guard " << i << " written " << describe(c, D);
    EXPECT_TRUE(std::isnan(lse[lse_n + i])) << "lse guard " << i << " written " << describe(c, D);
  }
}

TEST(EmuAttentionForward, HeadDim64) {
  check_case<64, 4>({2, 37, 37, 3, 0, true, 0}, 100);       // segments, partial row tile, one key tile
  check_case<64, 4>({1, 19, 150, 4, 131, false, 0}, 110);   // q_offset: three key tiles, the first partial
  check_case<64, 4>({1, 100, 100, 1, 0, false, 0.3}, 120);  // one head: rows are positions, causal inside a tile
  check_case<64, 4>({1, 1, 1, 1, 0, false, 0}, 130);        // a single key
  check_case<64, 4>({1, 40, 100, 2, 60, false, 0}, 140);    // first CTA starts 3 keys before its tile's end
}

TEST(EmuAttentionForward, HeadDim128) {
  check_case<128, 8>({1, 130, 130, 2, 0, true, 0}, 200);  // three key tiles, segments
  check_case<128, 8>({2, 5, 70, 16, 65, false, 0}, 210);  // decode-like chunk: 16 heads x 5 queries per batch
  check_case<128, 8>({1, 200, 200, 1, 0, false, 0}, 220); // one head: a CTA's 128 rows span two key tiles causally
}

TEST(EmuAttentionForward, HeadDim256) {
  check_case<256, 8>({1, 70, 70, 4, 0, false, 0}, 300);  // Step-3 head dim over two key tiles
  check_case<256, 8>({1, 3, 3, 64, 0, true, 0}, 310);    // Step-3 heads: a CTA is two positions x 64 heads
  check_case<256, 8>({2, 33, 160, 8, 127, true, 0.07}, 320);  // q_offset, segments, custom scale, three key tiles
}

// Other thread orders of the emulator's scheduler (a missing barrier shows up under some orders only).
TEST(EmuAttentionForward, SchedulerSeeds) {
  const uint64_t saved = emu::seed();
  for (uint64_t s = 11; s < 14; ++s) {
    emu::set_seed(s);
    check_case<128, 8>({1, 150, 150, 1, 0, true, 0}, 400 + s);
    check_case<64, 4>({2, 20, 90, 4, 70, false, 0}, 410 + s);
  }
  emu::set_seed(saved);
}

}  // namespace
}  // namespace stepwise
