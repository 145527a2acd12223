// cuda::paged_attention_forward against the CPU reference (stepwise::cpu, float): scattered block tables, decode
// rows (one query row, split across the context), short multi-row chunks (split), prefill chunks (spread by row
// tiles), empty sequences, odd block sizes, one head and many (more than a CTA's 64 vectors), fp32 and bf16 (the
// tensor-core kernel at D = 64, 128, 256, including Step-3's 64 x 256 decode at 4K context).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "cuda/paged_attention.h"
#include "gpu_testing.h"
#include "paged_layout.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

struct PagedCase {
  int64_t H, D, block_size;
  std::vector<PagedSequence> seqs;
  double scale;
};

std::vector<PagedCase> cases() {
  std::vector<PagedCase> out = {
      {1, 64, 16, {{0, 1}, {37, 1}, {1000, 1}, {5, 0}, {300, 3}, {2000, 1}}, 0},
      {8, 128, 5, {{123, 1}, {0, 13}, {64, 8}, {777, 2}}, 0},
      {64, 256, 16, {{4000, 1}, {10, 1}, {200, 3}}, 0},
      {80, 40, 7, {{500, 1}, {30, 2}}, 0.2},
      // bf16 at D = 64, 128, 256 runs the tensor-core kernel: Step-3 decode at 4K context over many splits, blocks of
      // 32, chunks of several rows (causal inside a 64-vector pass), a long prefill chunk spread by vector tiles.
      {64, 256, 16, {{4095, 1}, {4095, 1}, {2500, 1}, {4000, 1}, {1, 1}, {4095, 1}}, 0},
      {64, 256, 32, {{2047, 1}, {100, 1}, {33, 4}}, 0},
      {64, 128, 16, {{1000, 1}, {3, 5}, {500, 2}}, 0},
      {16, 64, 16, {{100, 40}, {70, 1}, {0, 3}}, 0},
      {4, 64, 16, {}, 0},
  };
  std::mt19937_64 rng(7);  // many decode sequences of step3-tiny's shape
  for (int i = 0; i < 40; ++i) out.back().seqs.push_back({static_cast<int64_t>(rng() % 600), 1});
  return out;
}

template <class T>
void check_case(const PagedCase& c, uint64_t seed) {
  const int64_t H = c.H, D = c.D, bs = c.block_size;
  PagedLayout layout = scattered_paged_layout(c.seqs, bs, seed);
  const int64_t S = layout.S, N = layout.N, max_blocks = layout.max_blocks, num_blocks = layout.num_blocks;
  const std::vector<int64_t>& q_start = layout.q_start;
  const std::vector<int64_t>& pos0 = layout.pos0;
  std::vector<int32_t>& table = layout.table;
  const auto q = representable<T>(random_vector(std::max<int64_t>(N, 1) * H * D, seed + 1, -2.f, 2.f));
  const auto k_pool = representable<T>(random_vector(num_blocks * bs * D, seed + 2, -2.f, 2.f));
  const auto v_pool = representable<T>(random_vector(num_blocks * bs * D, seed + 3));

  std::vector<float> want(static_cast<size_t>(N * H * D));
  PagedAttentionParams<float> cp;
  cp.out = want.data(), cp.q = q.data(), cp.k_pool = k_pool.data(), cp.v_pool = v_pool.data();
  cp.block_table = table.data(), cp.q_start = q_start.data(), cp.pos0 = pos0.data();
  cp.S = S, cp.max_blocks = max_blocks, cp.block_size = bs, cp.num_blocks = num_blocks, cp.H = H, cp.D = D;
  cp.scale = c.scale;
  cpu::paged_attention_forward(cp);

  auto dq = upload<T>(q), dk = upload<T>(k_pool), dv = upload<T>(v_pool);
  cuda::DeviceBuffer<int32_t> dtable(table);
  cuda::DeviceBuffer<int64_t> dq_start(q_start), dpos0(pos0.empty() ? std::vector<int64_t>(1, 0) : pos0);
  auto dout = poisoned<T>(std::max<int64_t>(N, 1) * H * D);
  PagedAttentionParams<T> p;
  p.out = dout.data(), p.q = dq.data(), p.k_pool = dk.data(), p.v_pool = dv.data();
  p.block_table = dtable.data(), p.q_start = dq_start.data(), p.pos0 = dpos0.data();
  p.S = S, p.max_blocks = max_blocks, p.block_size = bs, p.num_blocks = num_blocks, p.H = H, p.D = D;
  p.scale = c.scale;
  cuda::paged_attention_forward<T>(p);
  cuda::device_synchronize();
  auto got = download(dout);
  got.resize(want.size());
  EXPECT_LT(normalized_error(got, want), tolerance<T>())
      << "H=" << H << " D=" << D << " block_size=" << bs << " S=" << S;

  cuda::paged_attention_forward<T>(p);  // a second step on the same buffers gives the same result
  cuda::device_synchronize();
  auto again = download(dout);
  again.resize(want.size());
  EXPECT_EQ(again, got);
}

TEST(PagedAttentionCuda, Fp32MatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 50;
  for (const PagedCase& c : cases()) check_case<float>(c, seed += 7);
}

TEST(PagedAttentionCuda, Bf16MatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 90;
  for (const PagedCase& c : cases()) check_case<bf16>(c, seed += 7);
}

TEST(PagedAttentionCuda, RejectsBadDims) {  // host-side checks: no GPU needed
  PagedAttentionParams<float> p;
  float dummy = 0;
  p.S = 1, p.H = 2, p.D = 64, p.block_size = 0, p.max_blocks = 1, p.num_blocks = 1;
  p.out = &dummy, p.q = p.k_pool = p.v_pool = &dummy;
  EXPECT_THROW(cuda::paged_attention_forward<float>(p), std::invalid_argument);  // block_size 0
  p.block_size = 16, p.D = 512;
  EXPECT_THROW(cuda::paged_attention_forward<float>(p), std::invalid_argument);  // D beyond 256
  p.D = 64;
  EXPECT_THROW(cuda::paged_attention_forward<float>(p), std::invalid_argument);  // null block table
  p.S = 0;
  EXPECT_NO_THROW(cuda::paged_attention_forward<float>(p));  // no sequences: a no-op
}

}  // namespace
}  // namespace stepwise
