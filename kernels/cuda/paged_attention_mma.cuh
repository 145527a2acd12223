// Tensor-core (mma.sync bf16 -> fp32) paged MFA attention for decoding and chunked prefill, D in {64, 128, 256}:
// the device code only (the launcher is in paged_attention.cu), so that the CPU SIMT emulator (tests/emu) can run
// this same source. Writes the same split-K partials as the CUDA-core kernel, for the combine kernel kept here too.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/mma_tile.cuh"
#include "cuda/ptx.cuh"
#include "ops/paged_attention.h"

namespace stepwise::cuda {

// Query vectors (row x head, q's own layout) per CTA pass; scratch slots per (sequence, split) of the combine format.
constexpr int kPagedVectorTile = 64;

// A sequence is split across the context (partials + combine) when its query vectors fit one pass (decode: one row),
// or when it has a single row (H > 64). Longer chunks (prefill) are spread over the grid's y CTAs by vector tiles,
// each reading the whole context and writing `out` directly.
__host__ __device__ inline bool paged_split_mode(int64_t rows, int64_t H) {
  return rows == 1 || rows * H <= kPagedVectorTile;
}
// Scratch slots per (sequence, split): one per query vector of a split-mode sequence.
__host__ __device__ inline int64_t paged_slots_per_split(int64_t H) {
  return H > kPagedVectorTile ? H : kPagedVectorTile;
}

// Grid S, 256 threads (W = 8 warps): for each split-mode sequence s, warp w combines vectors w, w + W, ... over the
// splits that covered part of its context: out = sum_y acc_y exp(m_y - M) / sum_y l_y exp(m_y - M), M = max_y m_y.
template <class T>
__global__ void __launch_bounds__(256)
    paged_attention_combine_kernel(PagedAttentionParams<T> p, int64_t blocks_per_split, int64_t splits,
                                   const float2* part_ml, const float* part_acc) {
  const int64_t s = blockIdx.x, H = p.H, D = p.D, slots = paged_slots_per_split(H);
  const int64_t first_row = p.q_start[s], rows = p.q_start[s + 1] - first_row, pos0 = p.pos0[s];
  if (rows <= 0 || pos0 < 0 || !paged_split_mode(rows, H)) return;
  const int64_t used = ceil_div(pos0 + rows, blocks_per_split * p.block_size);  // splits that wrote partials
  const bool covered = used <= splits;  // false only when the context outgrows the block table (caller error)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t vec = warp; vec < rows * H; vec += warps) {
    if (!covered) {  // make the fault visible instead of reading past the scratch
      for (int64_t d = lane; d < D; d += 32) p.out[(first_row * H + vec) * D + d] = from_float<T>(NAN);
      continue;
    }
    const int64_t slot0 = s * splits * slots + vec;  // slot of split y: slot0 + y * slots
    float M = -INFINITY;
    for (int64_t y = 0; y < used; ++y) M = fmaxf(M, part_ml[slot0 + y * slots].x);
    float L = 0.f;
    for (int64_t y = 0; y < used; ++y) {
      const float2 ml = part_ml[slot0 + y * slots];
      L += ml.y != 0.f ? ml.y * expf(ml.x - M) : 0.f;  // l = 0: nothing visible; NaN (bad block) propagates
    }
    const float inv = L > 0.f ? 1.f / L : 0.f;
    T* out_row = p.out + (first_row * H + vec) * D;
    for (int64_t d = lane; d < D; d += 32) {
      float acc = 0.f;
      for (int64_t y = 0; y < used; ++y) {
        const int64_t slot = slot0 + y * slots;
        const float2 ml = part_ml[slot];
        if (ml.y != 0.f) acc += part_acc[slot * D + d] * expf(ml.x - M);
      }
      out_row[d] = from_float<T>(acc * inv);
    }
  }
}

namespace paged_mma {

constexpr int kWarps = 4;                   // warp w owns vectors [16 w, 16 w + 16) of the pass: one mma M tile
constexpr int kThreads = kWarps * 32;
constexpr int kKeys = 32;                   // keys per pipeline stage (gathered through the block table)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Pipeline depth: D = 256 keeps 5 stages (4 key tiles in flight, 198 KiB with Q, one CTA per SM); smaller heads 4.
template <int D> constexpr int stages() { return D == 256 ? 5 : 4; }
// Shared rows are padded by 16 bytes: a row stride of an odd number of 16-byte units keeps the 8 row addresses of an
// ldmatrix (and the cp.async chunks of a row) on distinct banks.
template <int D> constexpr int row_stride() { return D + 8; }  // in bf16 elements
// Dynamic shared memory: Q (64, D + 8), then per stage K (32, D + 8) and V (32, D + 8), bf16.
template <int D> constexpr size_t shared_bytes() {
  return sizeof(__nv_bfloat16) * row_stride<D>() * (kPagedVectorTile + 2 * kKeys * stages<D>());
}

// Grid (S, splits), kThreads threads; launched for bf16 and 16-byte aligned q, k_pool, v_pool only.
// CTA (s, y) of a split-mode sequence handles keys [y * keys_per_split, (y + 1) * keys_per_split) for every 64-vector
// pass of s (decode at H <= 64: one pass) and writes partials (m, l, acc) in the combine kernel's format when
// gridDim.y > 1, else `out`; CTA (s, y) of another sequence handles passes y, y + splits, ... over the whole context.
// Per pass: Q (64 vectors, D) is loaded once; key tiles of 32 stream through a `stages`-deep cp.async ring (rows
// gathered through the block table, zero-filled past the end, NaN for a block id outside the pool); warp w computes
// S = Q K^T for its 16 vectors (mma m16n8k16, fp32 in C fragments), the online softmax in base 2 on those registers,
// and O += P V with P re-packed as A fragments and V read by ldmatrix.trans. Vectors past the sequence's are zero
// rows whose results are not written; a warp whose 16 vectors are all past them skips the math.
// part_ml (S, splits, slots) = (max score, sum of exp(score - max)); part_acc (S, splits, slots, D).
template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    paged_attention_mma_kernel(PagedAttentionParams<__nv_bfloat16> p, float scale_log2, int64_t blocks_per_split,
                               float2* part_ml, float* part_acc) {
  using bf16_t = __nv_bfloat16;
  constexpr int kStages = stages<D>(), kStride = row_stride<D>(), kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kDTiles = D / 8;                                                    // n-tiles of O
  bf16_t* q_s = reinterpret_cast<bf16_t*>(ptx::dynamic_shared_base());              // (64, kStride)
  bf16_t* kv_s = q_s + kPagedVectorTile * kStride;  // stage i: K at kv_s + 2 i kKeys kStride, V after it

  const int64_t s = blockIdx.x, y = blockIdx.y, splits = gridDim.y, H = p.H, bs = p.block_size;
  const int64_t first_row = p.q_start[s], rows = p.q_start[s + 1] - first_row, pos0 = p.pos0[s];
  if (rows <= 0 || pos0 < 0) return;
  const int64_t keys = pos0 + rows, vectors = rows * H;
  const bool split = splits > 1 && paged_split_mode(rows, H);
  const int64_t keys_per_split = blocks_per_split * bs;
  int64_t key_begin = 0, key_end = keys, vec_first = y * kPagedVectorTile, vec_step = splits * kPagedVectorTile;
  if (paged_split_mode(rows, H)) {
    key_begin = y * keys_per_split;
    key_end = keys < key_begin + keys_per_split ? keys : key_begin + keys_per_split;
    vec_first = 0, vec_step = kPagedVectorTile;
    if (key_begin >= keys) return;  // the combine kernel knows this split is unused
  }
  const bf16_t* q_seq = p.q + first_row * H * D;  // (vectors, D)
  const int32_t* table = p.block_table + s * p.max_blocks;
  const int64_t table_keys = p.max_blocks * bs;  // keys the block table can hold
  const uint32_t bs32 = static_cast<uint32_t>(bs);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  // Loader mapping: thread tid copies chunk column tid % kChunks of rows tid / kChunks + i * (kThreads / kChunks).
  constexpr int kRowStep = kThreads / kChunks;
  const int chunk_col = tid % kChunks, chunk_row = tid / kChunks;
  // ldmatrix row addresses of this lane (ptx.cuh's recipes), as offsets into a tile: the A fragment of the warp's Q
  // rows, the B fragments of two key n-tiles from K (keys x D), and of two D n-tiles from V (keys x D, .trans).
  const int q_lane = warp * 16 * kStride + mma_tile::a_lane_offset(lane, kStride);
  const int k_lane = mma_tile::bt_lane_offset(lane, kStride);
  const int v_lane = mma_tile::b_lane_offset(lane, kStride);

  for (int64_t v0 = vec_first; v0 < vectors; v0 += vec_step) {
    __syncthreads();  // the previous pass is done with q_s and the ring
    const int64_t last_vec = (v0 + kPagedVectorTile < vectors ? v0 + kPagedVectorTile : vectors) - 1;
    const int64_t last_pos = pos0 + last_vec / H + 1;
    const int64_t tile_end = key_end < last_pos ? key_end : last_pos;  // no key past the last vector's position
    const int64_t first_pos = pos0 + v0 / H + 1;                         // keys below this are seen by every vector
    const int64_t full_end = tile_end < first_pos ? tile_end : first_pos;  // tiles ending by here need no mask
    const int tiles = tile_end > key_begin ? static_cast<int>((tile_end - key_begin + kKeys - 1) / kKeys) : 0;

    // Q pass: zero rows past the sequence's vectors. Committed with the first key tile's group.
    for (int r = chunk_row; r < kPagedVectorTile; r += kRowStep) {
      const bool ok = v0 + r < vectors;
      ptx::cp_async_16(q_s + r * kStride + chunk_col * 8, ok ? q_seq + (v0 + r) * D + chunk_col * 8 : p.q, ok);
    }
    // Key tile `tile` into stage `stage`: K and V rows through the block table.
    auto load_tile = [&](int tile, int stage) {
      bf16_t* k_dst = kv_s + stage * 2 * kKeys * kStride;
      bf16_t* v_dst = k_dst + kKeys * kStride;
      const int64_t j0 = key_begin + int64_t{tile} * kKeys;
      for (int r = chunk_row; r < kKeys; r += kRowStep) {
        const int64_t key = j0 + r;
        const int off = r * kStride + chunk_col * 8;
        if (key >= tile_end) {  // past the end: zeros, masked below
          ptx::cp_async_16(k_dst + off, p.k_pool, false);
          ptx::cp_async_16(v_dst + off, p.v_pool, false);
          continue;
        }
        // 32-bit division (the launcher checks max_blocks * block_size < 2^31); keys past the table are faults.
        const uint32_t b = key < table_keys ? static_cast<uint32_t>(key) / bs32 : 0;
        const int32_t blk = key < table_keys ? table[b] : -1;
        if (blk < 0 || blk >= p.num_blocks) {  // unreadable: NaN, so the fault shows in the rows that need it
          const uint4 nan4 = make_uint4(0x7fc07fc0u, 0x7fc07fc0u, 0x7fc07fc0u, 0x7fc07fc0u);
          *reinterpret_cast<uint4*>(k_dst + off) = nan4;
          *reinterpret_cast<uint4*>(v_dst + off) = nan4;
          continue;
        }
        const int64_t src = (int64_t{blk} * bs + (static_cast<uint32_t>(key) - b * bs32)) * D + chunk_col * 8;
        ptx::cp_async_16(k_dst + off, p.k_pool + src, true);
        ptx::cp_async_16(v_dst + off, p.v_pool + src, true);
      }
    };
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) {
      if (i < tiles) load_tile(i, i);
      ptx::cp_async_commit();  // empty groups keep the count uniform
    }

    // This lane's two vectors (C rows g and g + 8 of the warp's M tile) and their positions.
    const int64_t vec_lo = v0 + warp * 16 + g, vec_hi = vec_lo + 8;
    const int64_t pos_lo = pos0 + vec_lo / H, pos_hi = pos0 + vec_hi / H;
    const bool warp_active = v0 + warp * 16 < vectors;
    float o[kDTiles][4];
    mma_tile::zero(o);
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g, g + 8: max in base-2 units; l per lane (partial)

    for (int tile = 0; tile < tiles; ++tile) {
      ptx::cp_async_wait<kStages - 2>();  // this thread's copies of `tile` (and Q) have landed
      __syncthreads();                    // everyone's have; everyone is done with tile - 1's stage
      if (tile + kStages - 1 < tiles) load_tile(tile + kStages - 1, (tile + kStages - 1) % kStages);
      ptx::cp_async_commit();
      if (!warp_active) continue;

      const bf16_t* k_s = kv_s + (tile % kStages) * 2 * kKeys * kStride;
      const bf16_t* v_s = k_s + kKeys * kStride;
      // S (16 vectors x 32 keys) = Q K^T: n-tile n holds keys 8n .. 8n + 7.
      float sc[kKeys / 8][4];
      mma_tile::zero(sc);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[4];
        ptx::ldmatrix_x4(a, q_s + q_lane + kk * 16);
        mma_tile::mma_abt_step<kKeys / 16>(sc, a, k_s + k_lane + kk * 16, kStride);
      }
      // Scores in base 2; masked (past the end or after the vector's position) to -inf.
      const int64_t j0 = key_begin + int64_t{tile} * kKeys;
      const bool masked = j0 + kKeys > full_end;
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = sc[n][e] * scale_log2;
          if (masked) {
            const int64_t key = j0 + 8 * n + 2 * t + (e & 1);
            if (key >= tile_end || key > (e < 2 ? pos_lo : pos_hi)) x = -INFINITY;
          }
          sc[n][e] = x;
        }
      }
      // Online softmax on the already scaled scores (scale 1), then O += P V with P's C fragments of n-tiles 2kk,
      // 2kk + 1 as the A fragment of keys 16kk .. 16kk + 15.
      mma_tile::online_softmax(sc, 1.f, m, l, o);
      mma_tile::mma_pv(o, sc, v_s + v_lane, kStride);
    }
    ptx::cp_async_wait<0>();  // nothing of this pass may land in the next one's buffers

    // The quad's partial sums make the row's l; then write this lane's columns 8n + 2t, 8n + 2t + 1.
    l[0] = mma_tile::quad_sum(l[0]);
    l[1] = mma_tile::quad_sum(l[1]);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t vec = half == 0 ? vec_lo : vec_hi;
      if (vec >= vectors) continue;
      const float m_row = m[half], l_row = l[half];
      if (split) {
        const int64_t slot = (s * splits + y) * paged_slots_per_split(H) + vec;
        if (t == 0) part_ml[slot] = make_float2(m_row == -INFINITY ? m_row : m_row * kLn2, l_row);  // back to natural-log units
        float* acc = part_acc + slot * D;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n)
          *reinterpret_cast<float2*>(acc + 8 * n + 2 * t) = make_float2(o[n][2 * half], o[n][2 * half + 1]);
      } else {
        const float inv = l_row > 0.f ? 1.f / l_row : 0.f;
        bf16_t* out_row = p.out + (first_row * H + vec) * D;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n)
          *reinterpret_cast<__nv_bfloat162*>(out_row + 8 * n + 2 * t) =
              __floats2bfloat162_rn(o[n][2 * half] * inv, o[n][2 * half + 1] * inv);
      }
    }
  }
}

}  // namespace paged_mma
}  // namespace stepwise::cuda
