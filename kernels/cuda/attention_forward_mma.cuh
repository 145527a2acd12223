// Tensor-core forward of MFA attention for bf16 (FlashAttention-2 style, mma.sync m16n8k16 through cuda/ptx.cuh):
// device code only, launched by attention_forward.cu and run on the CPU by tests/emu/test_emu_attention_forward.cpp.
// Same semantics as cpu::attention_forward (fully masked rows: out 0, lse -inf); D in {64, 128, 256}.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/mma_tile.cuh"
#include "cuda/ptx.cuh"
#include "ops/attention.h"

namespace stepwise::cuda::attention_forward_mma {

using bf16_t = __nv_bfloat16;

constexpr int kKeyTile = 64;      // keys per K/V tile
constexpr int kRowPad = 8;        // bf16 of padding per shared row: rows 16 bytes apart mod 128, so ldmatrix is
                                  // conflict-free
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Row stride (bf16 elements) of every shared tile.
__host__ __device__ constexpr int shared_stride(int D) { return D + kRowPad; }

// Query rows per CTA: 16 per warp.
__host__ __device__ constexpr int rows_per_cta(int warps) { return 16 * warps; }

// Dynamic shared memory of one CTA: Q (rows, stride) + 2 stages x (K, V) (kKeyTile, stride), bf16.
__host__ __device__ constexpr size_t shared_bytes(int D, int warps) {
  return sizeof(bf16_t) * static_cast<size_t>(shared_stride(D)) *
         static_cast<size_t>(rows_per_cta(warps) + 4 * kKeyTile);
}

// Issues the cp.async copies of `Rows` rows of D bf16 into dst (row stride shared_stride(D)): tile row r is source
// row first_row + r (src rows are D apart); rows >= row_limit are zero-filled. Called by all Threads threads.
template <int D, int Rows, int Threads>
__device__ __forceinline__ void load_rows_async(bf16_t* dst, const bf16_t* src, int64_t first_row, int64_t row_limit) {
  constexpr int kChunksPerRow = D / 8;  // 16-byte chunks
  constexpr int kChunks = Rows * kChunksPerRow;
  static_assert(kChunks % Threads == 0, "every thread issues the same number of copies");
#pragma unroll
  for (int i = 0; i < kChunks / Threads; ++i) {
    const int c = static_cast<int>(threadIdx.x) + i * Threads;
    const int r = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    const int64_t row = first_row + r;
    const bool valid = row < row_limit;
    ptx::cp_async_16(dst + r * shared_stride(D) + col, valid ? src + row * D + col : src, valid);
  }
}

// Grid (row tiles x B), Warps * 32 threads, shared_bytes(D, Warps) of dynamic shared memory.
// A CTA owns R = 16 * Warps consecutive rows of batch b in q's own layout (row = query * H + head), so with H = 64 a
// CTA is one or two positions x 64 heads and each K/V tile it loads serves all of them. blockIdx.x = rank * B + b, and
// rank 0 takes the last row tile (the most causal keys), so the heaviest tiles of every batch start first.
// Warp w owns tile rows [16 w, 16 w + 16): lane (g = lane / 4, t = lane % 4) holds rows 16 w + g and 16 w + g + 8 of
// the score, probability and output fragments (mma C layout, ptx.cuh).
// Per key tile (visited last-first, so the masked diagonal tiles come first), K and V of the next tile are in flight
// (cp.async, two stages) while S = Q K^T (fp32) is computed, masked (only on tiles that cross the diagonal, or all
// tiles with segments), turned into exp2 probabilities with the online max, packed to bf16 as the A operand of
// O += P V. A warp whose rows see no key of the tile skips its maths. Scores are kept in log2 units: scale_log2 =
// scale * log2(e). Cp.async groups per thread: Q, then K and V of each tile in visiting order.
// Shared memory: q_s (R, stride), k_s and v_s (2 stages, kKeyTile, stride), stride = D + 8, all bf16.
template <int D, int Warps>
__global__ void __launch_bounds__(Warps * 32, 1)
    attention_forward_mma_kernel(AttentionParams<bf16_t, float> p, float scale_log2) {
  static_assert(D % 16 == 0 && D >= 16, "head dim must be a multiple of 16");
  constexpr int kThreads = Warps * 32;
  constexpr int kRows = rows_per_cta(Warps);
  constexpr int kStride = shared_stride(D);
  constexpr int kStage = kKeyTile * kStride;  // elements of one K (or V) stage
  constexpr int kOutTiles = D / 8;            // n-tiles of O (8 columns each)
  constexpr int kScoreTiles = kKeyTile / 8;   // n-tiles of S (8 keys each)

  bf16_t* q_s = reinterpret_cast<bf16_t*>(ptx::dynamic_shared_base());  // (kRows, kStride)
  bf16_t* k_s = q_s + kRows * kStride;                                  // (2, kKeyTile, kStride)
  bf16_t* v_s = k_s + 2 * kStage;                                       // (2, kKeyTile, kStride)

  const int64_t B = p.B, H = p.H, Tq = p.Tq, Tk = p.Tk;
  const int64_t rows_total = Tq * H;  // rows of one batch
  const int64_t row_tiles = (rows_total + kRows - 1) / kRows;
  const int64_t b = blockIdx.x % B;
  const int64_t row0 = (row_tiles - 1 - blockIdx.x / B) * kRows;
  const int64_t row_end = row0 + kRows < rows_total ? row0 + kRows : rows_total;
  const int first_pos = static_cast<int>(p.q_offset + row0 / H);     // smallest position of the CTA's rows (the
                                                                      // launcher keeps positions below 2^31)
  const int64_t last_pos = p.q_offset + (row_end - 1) / H;            // largest
  const int64_t key_end = last_pos + 1 < Tk ? last_pos + 1 : Tk;      // one past the last key any row sees
  const int tiles = static_cast<int>((key_end + kKeyTile - 1) / kKeyTile);
  const bf16_t* q_batch = p.q + b * rows_total * D;  // (Tq * H, D)
  const bf16_t* k_batch = p.k + b * Tk * D;          // (Tk, D)
  const bf16_t* v_batch = p.v + b * Tk * D;          // (Tk, D)
  const int32_t* seg = p.seg ? p.seg + b * Tk : nullptr;

  // Prologue: Q (one group), the first visited key tile (one group), then its values (a third group).
  load_rows_async<D, kRows, kThreads>(q_s, q_batch, row0, rows_total);
  ptx::cp_async_commit();
  load_rows_async<D, kKeyTile, kThreads>(k_s, k_batch, int64_t{tiles - 1} * kKeyTile, Tk);
  ptx::cp_async_commit();
  load_rows_async<D, kKeyTile, kThreads>(v_s, v_batch, int64_t{tiles - 1} * kKeyTile, Tk);
  ptx::cp_async_commit();

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;

  // Position of the lane's row g + 8 h (h = 0, 1) of the warp's 16, or -1 for a row past the end (it sees nothing).
  // Recomputed on masked tiles rather than kept live through the products (registers are tight at D = 256).
  const auto row_position = [&](int h) {
    const int64_t row = row0 + warp * 16 + g + 8 * h;
    return row < rows_total ? static_cast<int>(p.q_offset + row / H) : -1;
  };

  float m[2] = {-INFINITY, -INFINITY};  // running max of the scaled scores (log2 units), same in the 4 lanes of a row
  float l[2] = {0.f, 0.f};              // this lane's part of the running sum of probabilities
  float o[kOutTiles][4];                // unnormalised output, C layout
  mma_tile::zero(o);

  // ldmatrix addresses of this lane (ptx.cuh recipes), as element offsets inside a tile.
  const int q_frag = warp * 16 * kStride + mma_tile::a_lane_offset(lane, kStride);  // A of Q, 16 x 16
  const int k_frag = mma_tile::bt_lane_offset(lane, kStride);                         // B of K^T, 16 keys x 16 d
  const int v_frag = mma_tile::b_lane_offset(lane, kStride);                          // B of V (trans), 16 x 16

  // Up to D = 128 the warp's Q fragments (A of Q K^T, D / 16 of them) stay in registers for the whole loop, saving
  // their shared-memory reads on every key tile; at D = 256 the output accumulators leave no room and they are read
  // from q_s each time.
  constexpr bool kQInRegisters = D <= 128;
  uint32_t q_regs[kQInRegisters ? D / 16 : 1][4];
  if constexpr (kQInRegisters) {
    ptx::cp_async_wait<2>();  // Q landed (the first key tile may still be in flight)
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ptx::ldmatrix_x4(q_regs[kk], q_s + q_frag + kk * 16);
  }

  for (int i = 0; i < tiles; ++i) {
    const int tile = tiles - 1 - i;
    const int j0 = tile * kKeyTile;
    const bf16_t* k_tile = k_s + (i & 1) * kStage;
    const bf16_t* v_tile = v_s + (i & 1) * kStage;
    const bool prefetch = tile > 0;
    if (prefetch) {  // the other stage was released by the barrier that ended the previous iteration
      load_rows_async<D, kKeyTile, kThreads>(k_s + ((i + 1) & 1) * kStage, k_batch, j0 - kKeyTile, Tk);
      ptx::cp_async_commit();
      load_rows_async<D, kKeyTile, kThreads>(v_s + ((i + 1) & 1) * kStage, v_batch, j0 - kKeyTile, Tk);
      ptx::cp_async_commit();
      ptx::cp_async_wait<3>();  // Q and this tile's K landed; its V and the next tile may still be in flight
    } else {
      ptx::cp_async_wait<1>();
    }
    __syncthreads();

    // Key j is visible to a row at position pos iff j <= pos and (no segments or equal segments). Only tiles that
    // cross the CTA's diagonal, or all tiles with segments, need the test. Keys past key_end (zero-filled) are past
    // every row's position, so the causal test covers them.
    const bool masked = seg != nullptr || j0 + kKeyTile - 1 > first_pos;
    int pos[2] = {0, 0};
    int32_t row_seg[2] = {0, 0};
    const auto find_rows = [&] {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        pos[h] = row_position(h);
        row_seg[h] = seg != nullptr && pos[h] >= 0 ? seg[pos[h]] : 0;
      }
    };
    const auto visible = [&](int key, int h) {
      return key <= pos[h] && (seg == nullptr || seg[key] == row_seg[h]);  // seg read only for key <= pos < Tk
    };
    // A warp none of whose rows sees a key of this tile (an earlier document, or rows before the diagonal) skips
    // the tile's maths; it still takes part in the loads and barriers. Warp-uniform.
    bool lane_sees = !masked;
    if (masked) {
      find_rows();
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) lane_sees = lane_sees || visible(j0 + 8 * n + 2 * t + e, 0) ||
                                                visible(j0 + 8 * n + 2 * t + e, 1);
      }
    }
    const bool active = __any_sync(0xffffffffu, lane_sees);

    float s[kScoreTiles][4];  // scores, then probabilities: s[n] is keys 8 n .. 8 n + 7 (C layout)
    if (active) {
      // S = Q K^T for the warp's 16 rows x 64 keys.
      mma_tile::zero(s);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[4];
        if constexpr (kQInRegisters) {
          a[0] = q_regs[kk][0], a[1] = q_regs[kk][1], a[2] = q_regs[kk][2], a[3] = q_regs[kk][3];
        } else {
          ptx::ldmatrix_x4(a, q_s + q_frag + kk * 16);
        }
        mma_tile::mma_abt_step<kScoreTiles / 2>(s, a, k_tile + k_frag + kk * 16, kStride);
      }
      if (masked) {  // the test again (cheaper than keeping 32 visibility bits live across the products)
        find_rows();
#pragma unroll
        for (int n = 0; n < kScoreTiles; ++n) {
#pragma unroll
          for (int c = 0; c < 4; ++c)  // c = 2 h + e
            if (!visible(j0 + 8 * n + 2 * t + c % 2, c / 2)) s[n][c] = -INFINITY;
        }
      }

      // Online softmax of the lane's two rows; a row's 64 scores sit in its 4 lanes (t = 0..3).
      mma_tile::online_softmax(s, scale_log2, m, l, o);
    }

    if (prefetch) {
      ptx::cp_async_wait<2>();  // this tile's V landed
    } else {
      ptx::cp_async_wait<0>();
    }
    __syncthreads();

    if (active) {
      // O += P V: P (16 rows x 64 keys) as four 16 x 16 A fragments straight from the C fragments (ptx.cuh).
      mma_tile::mma_pv(o, s, v_tile + v_frag, kStride);
    }
    __syncthreads();  // this stage is consumed: the next iteration may refill it
  }

  // Normalise and store: row g + 8 h of the warp, columns 8 n + 2 t, 8 n + 2 t + 1 (one bf16 pair per n-tile).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float sum = mma_tile::quad_sum(l[h]);
    const int64_t row = row0 + warp * 16 + g + 8 * h;
    if (row >= rows_total) continue;
    const bool any = sum > 0.f;  // false only for a fully masked row: output 0, lse = -inf (as on the CPU)
    const float inv = any ? 1.f / sum : 0.f;
    bf16_t* out_row = p.out + (b * rows_total + row) * D;
#pragma unroll
    for (int n = 0; n < kOutTiles; ++n)
      *reinterpret_cast<uint32_t*>(out_row + 8 * n + 2 * t) = ptx::pack_bf16(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
    if (t == 0) {
      const int64_t query = row / H, head = row - query * H;
      p.lse[(b * H + head) * Tq + query] = any ? (m[h] + log2f(sum)) * kLn2 : -INFINITY;
    }
  }
}

}  // namespace stepwise::cuda::attention_forward_mma
