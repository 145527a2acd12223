// Paged MFA attention for decoding: the queries of several sequences attend to one shared K and V head whose cached
// tokens live in fixed-size blocks of a pool, found through each sequence's block table (no gather into a contiguous
// buffer). Forward only (serving). Same causal rule as AttentionParams with q_offset = tokens cached before the chunk.
#pragma once
#include <cstdint>

namespace stepwise {

// Sequence s owns query rows [q_start[s], q_start[s+1]); its row i sits at position pos0[s] + i and sees the keys at
// positions 0 .. pos0[s] + i. Key position j lives in block block_table[s * max_blocks + j / block_size], slot
// j % block_size, i.e. at k_pool[(block * block_size + slot) * D].
template <class T>
struct PagedAttentionParams {
  T* out = nullptr;                    // (N, H, D)  N = q_start[S]
  const T* q = nullptr;                // (N, H, D)
  const T* k_pool = nullptr;           // (num_blocks, block_size, D)
  const T* v_pool = nullptr;           // (num_blocks, block_size, D)
  const int32_t* block_table = nullptr;// (S, max_blocks)
  const int64_t* q_start = nullptr;    // (S + 1)
  const int64_t* pos0 = nullptr;       // (S)
  int64_t S = 0, max_blocks = 0, block_size = 0, num_blocks = 0, H = 0, D = 0;
  double scale = 0;                    // 0 means 1/sqrt(D)
};

namespace cpu {
template <class T> void paged_attention_forward(const PagedAttentionParams<T>& p);
}  // namespace cpu

}  // namespace stepwise
