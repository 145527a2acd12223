// CPU reference of paged attention: per (query row, head) a two-pass softmax over the keys the row may see, read
// block by block through the sequence's block table. Accumulates in double; parallel over query rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/paged_attention.h"

namespace stepwise::cpu {

template <class T>
void paged_attention_forward(const PagedAttentionParams<T>& p) {
  const char* op = "paged_attention_forward";
  require_pointer(p.out, op, "out");
  require_pointer(p.q, op, "q");
  require_pointer(p.k_pool, op, "k_pool");
  require_pointer(p.v_pool, op, "v_pool");
  require_pointer(p.block_table, op, "block_table");
  require_pointer(p.q_start, op, "q_start");
  require_pointer(p.pos0, op, "pos0");
  require_nonnegative(p.S, op, "S");
  require_positive(p.block_size, op, "block_size");
  require_positive(p.H, op, "H");
  require_positive(p.D, op, "D");
  const int64_t N = p.q_start[p.S], H = p.H, D = p.D, bs = p.block_size;
  const double scale = p.scale > 0 ? p.scale : 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t s = 0; s < p.S; ++s) {
    const int64_t rows = p.q_start[s + 1] - p.q_start[s];
    const int64_t keys = p.pos0[s] + rows;
    if (rows < 0 || p.pos0[s] < 0) kernel_fail(op, "sequence ", s, " has a negative row count or position");
    if ((keys + bs - 1) / bs > p.max_blocks)
      kernel_fail(op, "sequence ", s, " needs ", keys, " keys but its block table holds ", p.max_blocks, " blocks of ",
                  bs);
    for (int64_t b = 0; b < (keys + bs - 1) / bs; ++b) {
      const int32_t blk = p.block_table[s * p.max_blocks + b];
      if (blk < 0 || blk >= p.num_blocks)
        kernel_fail(op, "block id ", blk, " of sequence ", s, " outside the pool of ", p.num_blocks);
    }
  }
#pragma omp parallel if (parallel_worth(N * H * D * 64))
  {
    std::vector<double> score, acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic)
    for (int64_t s = 0; s < p.S; ++s) {
      for (int64_t r = p.q_start[s]; r < p.q_start[s + 1]; ++r) {
        const int64_t keys = p.pos0[s] + (r - p.q_start[s]) + 1;
        score.resize(static_cast<size_t>(keys));
        for (int64_t h = 0; h < H; ++h) {
          const T* qv = p.q + (r * H + h) * D;
          double mx = -INFINITY;
          for (int64_t j = 0; j < keys; ++j) {
            const int64_t blk = p.block_table[s * p.max_blocks + j / bs];
            const T* kv = p.k_pool + (blk * bs + j % bs) * D;
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qv[d]) * static_cast<double>(kv[d]);
            score[static_cast<size_t>(j)] = dot * scale;
            mx = std::max(mx, dot * scale);
          }
          double sum = 0;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t j = 0; j < keys; ++j) {
            const double w = std::exp(score[static_cast<size_t>(j)] - mx);
            sum += w;
            const int64_t blk = p.block_table[s * p.max_blocks + j / bs];
            const T* vv = p.v_pool + (blk * bs + j % bs) * D;
            for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += w * static_cast<double>(vv[d]);
          }
          T* o = p.out + (r * H + h) * D;
          for (int64_t d = 0; d < D; ++d) o[d] = static_cast<T>(acc[static_cast<size_t>(d)] / sum);
        }
      }
    }
  }
}

template void paged_attention_forward<float>(const PagedAttentionParams<float>&);
template void paged_attention_forward<double>(const PagedAttentionParams<double>&);

}  // namespace stepwise::cpu
