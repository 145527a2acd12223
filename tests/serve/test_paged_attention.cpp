// Paged attention against the contiguous attention op: the same keys and values scattered over shuffled blocks of a
// pool give the same outputs, for several sequences with different cached lengths and chunk sizes in one call.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "ops.h"
#include "ops/paged_attention.h"

namespace stepwise {
namespace {

TEST(PagedAttention, MatchesContiguousAttention) {
  const int64_t H = 3, D = 8, bs = 4, num_blocks = 40;
  const std::vector<int64_t> cached = {0, 5, 11, 3}, rows = {6, 1, 1, 9};
  const int64_t S = static_cast<int64_t>(cached.size());
  std::mt19937_64 rng(3);
  std::normal_distribution<double> nd(0, 1);
  std::vector<float> k_pool(num_blocks * bs * D, 0.0f), v_pool(num_blocks * bs * D, 0.0f);
  std::vector<int32_t> ids(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) ids[static_cast<size_t>(i)] = i;
  std::shuffle(ids.begin(), ids.end(), rng);

  const int64_t max_blocks = 6;
  std::vector<int32_t> table(S * max_blocks, -1);
  std::vector<int64_t> q_start = {0}, pos0;
  std::vector<std::vector<float>> ks(S), vs(S), qs(S);
  size_t next = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t keys = cached[s] + rows[s];
    for (int64_t b = 0; b < (keys + bs - 1) / bs; ++b) table[s * max_blocks + b] = ids[next++];
    for (int64_t b = (keys + bs - 1) / bs; b < max_blocks; ++b) table[s * max_blocks + b] = table[s * max_blocks];
    for (int64_t j = 0; j < keys * D; ++j) {
      ks[s].push_back(static_cast<float>(nd(rng)));
      vs[s].push_back(static_cast<float>(nd(rng)));
    }
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t blk = table[s * max_blocks + j / bs];
      std::copy_n(ks[s].begin() + j * D, D, k_pool.begin() + (blk * bs + j % bs) * D);
      std::copy_n(vs[s].begin() + j * D, D, v_pool.begin() + (blk * bs + j % bs) * D);
    }
    for (int64_t j = 0; j < rows[s] * H * D; ++j) qs[s].push_back(static_cast<float>(nd(rng)));
    q_start.push_back(q_start.back() + rows[s]);
    pos0.push_back(cached[s]);
  }
  std::vector<float> q;
  for (const auto& x : qs) q.insert(q.end(), x.begin(), x.end());
  std::vector<float> out(q.size(), 0.0f);
  PagedAttentionParams<float> p;
  p.out = out.data();
  p.q = q.data();
  p.k_pool = k_pool.data();
  p.v_pool = v_pool.data();
  p.block_table = table.data();
  p.q_start = q_start.data();
  p.pos0 = pos0.data();
  p.S = S;
  p.max_blocks = max_blocks;
  p.block_size = bs;
  p.num_blocks = num_blocks;
  p.H = H;
  p.D = D;
  cpu::paged_attention_forward(p);

  for (int64_t s = 0; s < S; ++s) {
    std::vector<float> ref(rows[s] * H * D), lse(rows[s] * H);
    AttentionParams<float> a;
    a.out = ref.data();
    a.lse = lse.data();
    a.q = qs[s].data();
    a.k = ks[s].data();
    a.v = vs[s].data();
    a.B = 1;
    a.Tq = rows[s];
    a.Tk = cached[s] + rows[s];
    a.H = H;
    a.D = D;
    a.q_offset = cached[s];
    cpu::attention_forward(a);
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_NEAR(out[static_cast<size_t>(q_start[s] * H * D) + i], ref[i], 1e-5) << "seq " << s << " at " << i;
  }

  // a block id outside the pool is an error, not a read out of bounds
  table[1] = num_blocks;
  EXPECT_THROW(cpu::paged_attention_forward(p), std::invalid_argument);
}

}  // namespace
}  // namespace stepwise
