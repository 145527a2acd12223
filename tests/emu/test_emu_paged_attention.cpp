// The tensor-core paged attention kernel (cuda/paged_attention_mma.cuh) and its split combine, run from their own
// source by the CPU SIMT emulator, against the CPU reference (float, same bf16-rounded inputs): decode rows split
// across the context, multi-row chunks (split and spread by vector tiles, causal), one split (direct output), H above
// the 64-vector tile, block sizes that do not divide the 32-key tile, and a bad block id (its rows come out NaN).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/paged_attention_mma.cuh"
#include "emu_testing.h"
#include "emulator.h"
#include "../gpu/paged_layout.h"

namespace stepwise {
namespace {

using bf16 = __nv_bfloat16;
using emu_testing::random_bf16_values;
using emu_testing::to_bf16;

struct EmuCase {
  int64_t H, D, block_size;
  std::vector<PagedSequence> seqs;
  double scale;              // 0: 1/sqrt(D)
  int64_t blocks_per_split;  // >= max_blocks: one split, the kernel writes `out` itself
  int64_t bad_seq = -1;      // this sequence's second block id is set outside the pool for the kernel
};

template <int D>
void launch(const PagedAttentionParams<bf16>& p, float scale, int64_t blocks_per_split, int64_t splits,
            float2* part_ml, float* part_acc) {
  auto* kernel = cuda::paged_mma::paged_attention_mma_kernel<D>;
  constexpr size_t bytes = cuda::paged_mma::shared_bytes<D>();
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  emu::launch(kernel, dim3(static_cast<unsigned>(p.S), static_cast<unsigned>(splits)), dim3(cuda::paged_mma::kThreads),
              bytes, p, scale * cuda::paged_mma::kLog2e, blocks_per_split, part_ml, part_acc);
  if (splits > 1)
    emu::launch(cuda::paged_attention_combine_kernel<bf16>, dim3(static_cast<unsigned>(p.S)), dim3(256), 0, p,
                blocks_per_split, splits, static_cast<const float2*>(part_ml), static_cast<const float*>(part_acc));
}

void check_case(const EmuCase& c, uint64_t seed) {
  const int64_t H = c.H, D = c.D, bs = c.block_size;
  PagedLayout layout = scattered_paged_layout(c.seqs, bs, seed);
  const int64_t S = layout.S, N = layout.N, max_blocks = layout.max_blocks, num_blocks = layout.num_blocks;
  const std::vector<int64_t>& q_start = layout.q_start;
  const std::vector<int64_t>& pos0 = layout.pos0;
  std::vector<int32_t>& table = layout.table;
  const auto q = random_bf16_values(std::max<int64_t>(N, 1) * H * D, seed + 1, -2.f, 2.f);
  const auto k_pool = random_bf16_values(num_blocks * bs * D, seed + 2, -2.f, 2.f);
  const auto v_pool = random_bf16_values(num_blocks * bs * D, seed + 3, -1.f, 1.f);

  std::vector<float> want(static_cast<size_t>(N * H * D));
  PagedAttentionParams<float> cp;
  cp.out = want.data(), cp.q = q.data(), cp.k_pool = k_pool.data(), cp.v_pool = v_pool.data();
  cp.block_table = table.data(), cp.q_start = q_start.data(), cp.pos0 = pos0.data();
  cp.S = S, cp.max_blocks = max_blocks, cp.block_size = bs, cp.num_blocks = num_blocks, cp.H = H, cp.D = D;
  cp.scale = c.scale;
  cpu::paged_attention_forward(cp);

  if (c.bad_seq >= 0) table[static_cast<size_t>(c.bad_seq * max_blocks + 1)] = static_cast<int32_t>(num_blocks);
  const auto q16 = to_bf16(q), k16 = to_bf16(k_pool), v16 = to_bf16(v_pool);
  std::vector<bf16> out(std::max<size_t>(want.size(), 1), bf16(NAN));  // poisoned
  const int64_t splits = std::max<int64_t>(1, (max_blocks + c.blocks_per_split - 1) / c.blocks_per_split);
  const size_t slots = static_cast<size_t>(S * splits * cuda::paged_slots_per_split(H));
  std::vector<float2> part_ml(slots, make_float2(NAN, NAN));
  std::vector<float> part_acc(slots * static_cast<size_t>(D), NAN);
  PagedAttentionParams<bf16> p;
  p.out = out.data(), p.q = q16.data(), p.k_pool = k16.data(), p.v_pool = v16.data();
  p.block_table = table.data(), p.q_start = q_start.data(), p.pos0 = pos0.data();
  p.S = S, p.max_blocks = max_blocks, p.block_size = bs, p.num_blocks = num_blocks, p.H = H, p.D = D;
  p.scale = c.scale;
  const float scale = static_cast<float>(c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(D)));
  switch (D) {
    case 64: launch<64>(p, scale, c.blocks_per_split, splits, part_ml.data(), part_acc.data()); break;
    case 128: launch<128>(p, scale, c.blocks_per_split, splits, part_ml.data(), part_acc.data()); break;
    default: launch<256>(p, scale, c.blocks_per_split, splits, part_ml.data(), part_acc.data()); break;
  }

  // Normalised error per sequence (a causal slip in one chunk must not hide among the decode rows).
  const std::string what = "H=" + std::to_string(H) + " D=" + std::to_string(D) + " block_size=" + std::to_string(bs) +
                           " splits=" + std::to_string(splits) + " sequence ";
  for (int64_t s = 0; s < S; ++s) {
    const size_t begin = static_cast<size_t>(q_start[static_cast<size_t>(s)] * H * D);
    const size_t end = static_cast<size_t>(q_start[static_cast<size_t>(s + 1)] * H * D);
    double err = 0, ref = 0;
    int64_t nan_values = 0;
    for (size_t i = begin; i < end; ++i) {
      const float got = static_cast<float>(out[i]);
      nan_values += std::isnan(got) ? 1 : 0;
      err += (got - want[i]) * static_cast<double>(got - want[i]);
      ref += static_cast<double>(want[i]) * want[i];
    }
    if (s == c.bad_seq) {
      EXPECT_EQ(nan_values, static_cast<int64_t>(end - begin)) << what << s << ": a bad block must make its rows NaN";
    } else if (end > begin) {
      EXPECT_LT(std::sqrt(err / std::max(ref, 1e-30)), 1e-2) << what << s;  // NaN fails too
    }
  }
}

TEST(EmuPagedAttention, Step3DecodeSplitAndChunkAtD256) {
  // Decode rows over 5 splits of 64 keys (the last partial, one sequence inside the first split), and a 3-row chunk
  // (192 vectors: one 64-vector pass per row, spread over the splits, causal).
  check_case({64, 256, 16, {{300, 1}, {0, 1}, {70, 1}, {40, 3}}, 0, 4}, 11);
  // One split: 13 and 5 key tiles go round the 5-stage ring.
  check_case({64, 256, 16, {{400, 1}, {130, 2}}, 0, 1000}, 13);
}

TEST(EmuPagedAttention, OddBlocksMixedChunksAtD128) {
  // Block size 5 (tiles straddle blocks); 13-row chunk at H = 8 (104 vectors: spread, causal inside a pass), an
  // 8-row chunk (64 vectors: split, causal), an empty sequence.
  check_case({8, 128, 5, {{123, 1}, {0, 13}, {64, 8}, {30, 2}, {7, 0}}, 0, 7}, 23);
  // Splits of 6 key tiles and a 12-row chunk of 7 tiles around the 4-stage ring.
  check_case({8, 128, 16, {{500, 1}, {200, 12}}, 0, 12}, 29);
}

TEST(EmuPagedAttention, ManyHeadsAndOneSplitAtD64) {
  // H = 80: a decode row's vectors take two passes of one split-mode CTA; a 2-row chunk (160 vectors) is spread.
  check_case({80, 64, 16, {{200, 1}, {20, 2}}, 0.2, 3}, 37);
  // One split: the kernel writes `out` directly (no combine); H = 4 leaves three warps without vectors.
  check_case({4, 64, 16, {{100, 1}, {37, 3}, {0, 1}}, 0, 1000}, 41);
}

TEST(EmuPagedAttention, BadBlockGivesNaNRows) {
  check_case({16, 64, 8, {{50, 1}, {60, 1}, {9, 2}}, 0, 2, 1}, 53);     // split: the combine propagates it
  check_case({16, 64, 8, {{50, 1}, {60, 1}, {9, 2}}, 0, 1000, 1}, 59);  // one split
}

}  // namespace
}  // namespace stepwise
