// The paged KV layout of the paged-attention tests (GPU suite and emulator): the sequences' query chunks packed in
// order, their KV blocks scattered over the pool in a seeded random order, one spare block-table entry per sequence
// left at -1, and a few pool blocks nobody uses.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

struct PagedSequence {
  int64_t pos0, rows;   // position of the chunk's first query token, query tokens in the chunk
};

struct PagedLayout {
  std::vector<int64_t> q_start;   // (S + 1)
  std::vector<int64_t> pos0;      // (S)
  std::vector<int32_t> table;     // (S, max_blocks)
  int64_t S = 0, N = 0, max_blocks = 1, num_blocks = 0;
};

inline PagedLayout scattered_paged_layout(const std::vector<PagedSequence>& seqs, int64_t block_size, uint64_t seed) {
  PagedLayout l;
  l.S = static_cast<int64_t>(seqs.size());
  l.q_start.assign(static_cast<size_t>(l.S + 1), 0);
  l.pos0.resize(static_cast<size_t>(l.S));
  auto blocks_of = [&](const PagedSequence& q) { return (q.pos0 + q.rows + block_size - 1) / block_size; };
  int64_t used_blocks = 0;
  for (int64_t s = 0; s < l.S; ++s) {
    const PagedSequence& q = seqs[static_cast<size_t>(s)];
    l.q_start[static_cast<size_t>(s + 1)] = l.q_start[static_cast<size_t>(s)] + q.rows;
    l.pos0[static_cast<size_t>(s)] = q.pos0;
    l.max_blocks = std::max(l.max_blocks, blocks_of(q) + 1);  // one spare entry per table, left at -1
    used_blocks += blocks_of(q);
  }
  l.N = l.q_start.back();
  l.num_blocks = used_blocks + 3;  // a few pool blocks nobody uses
  std::vector<int32_t> pool_order(static_cast<size_t>(l.num_blocks));
  std::iota(pool_order.begin(), pool_order.end(), 0);
  std::shuffle(pool_order.begin(), pool_order.end(), std::mt19937_64(seed));
  l.table.assign(static_cast<size_t>(l.S * l.max_blocks), -1);
  for (int64_t s = 0, next = 0; s < l.S; ++s)
    for (int64_t b = 0; b < blocks_of(seqs[static_cast<size_t>(s)]); ++b)
      l.table[static_cast<size_t>(s * l.max_blocks + b)] = pool_order[static_cast<size_t>(next++)];
  return l;
}
