// Tensor-core (mma.sync m16n8k16, bf16 in, fp32 accumulate) kernels of the MFA attention backward for bf16 and head
// dims D in {64, 128, 256} (FlashAttention-2 style, deterministic, no atomics): a dQ kernel (a CTA owns 64 query rows
// and walks the key tiles) and a dK/dV kernel (a CTA owns 64 keys and walks a chunk of the query rows that see them,
// with an ordered reduction of the chunks' fp32 partials when the causal work is split). Device code only: the host
// launcher is in attention_backward.cu; tests/emu runs this source on the CPU.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/mma_tile.cuh"
#include "cuda/ptx.cuh"
#include "ops/attention.h"

namespace stepwise::cuda::attention_backward_mma {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 64;                  // query rows (row = query * H + head) per row tile; keys per key tile
constexpr int kPad = 8;                    // bf16 padding per shared row (16 bytes): ldmatrix rows hit distinct banks
constexpr int kTileStride = kTile + kPad;  // row stride of the 64 x 64 bf16 P^T, dS^T and dS tiles
constexpr float kLog2e = 1.4426950408889634f;

inline bool supports_head_dim(int64_t D) { return D == 64 || D == 128 || D == 256; }

// CTAs per SM the kernels are compiled for (__launch_bounds__): two where the shared memory of two fits in an SM's
// 228 KiB (registers then capped at 128 per thread); one at larger D.
template <int D> constexpr int dq_min_blocks() { return D <= 128 ? 2 : 1; }
template <int D> constexpr int dkdv_min_blocks() { return D <= 64 ? 2 : 1; }

// Per-row facts of a row tile, in shared memory: lse2 = lse * log2(e) (+inf for a missing row or a fully masked row,
// so that its probabilities are exp2(x - inf) = 0), delta = rowsum(dO * O), the query's position (-1 for a missing
// row: it sees no key) and its segment id.
struct RowMeta {
  float lse2, delta;
  int32_t pos, seg;
};

// Row tiles of the dK/dV kernel are absolute: tile i holds flattened rows (query * H + head) [64 i, 64 i + 64).
// The first tile with a row that can see key j0 or a later key (queries at positions >= j0); rows of that tile before
// it are masked by causality.
__host__ __device__ inline int64_t dkdv_first_tile(int64_t j0, int64_t q_offset, int64_t H, int64_t Tq) {
  const int64_t first_query = j0 > q_offset ? j0 - q_offset : 0;
  return (first_query < Tq ? first_query : Tq) * H / kTile;
}
__host__ __device__ inline int64_t row_tiles(int64_t R) { return ceil_div(R, kTile); }

// Split of the dK/dV work: the row tiles are cut into `chunks` absolute chunks of `tiles_per_chunk` tiles, and CTA
// (key tile, chunk) walks the chunk's tiles that its keys' rows reach (the causal triangle gives key tile 0 all rows
// and the last ones few, so one CTA per key tile would leave the GPU idle; absolute chunks make the CTAs of one chunk
// stream the same Q / dO tiles at about the same time, so L2 serves most of them). With chunks > 1 each CTA writes
// fp32 partials that attention_dkdv_reduce_kernel sums in chunk order.
struct DkdvPlan {
  int64_t tiles_per_chunk = 1;
  int chunks = 1;
};

// About four CTAs' worth of row tiles per SM over the whole grid, at least 16 row tiles per chunk.
inline DkdvPlan plan_dkdv(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t q_offset, int sms) {
  const int64_t most = row_tiles(Tq * H), key_tiles = ceil_div(Tk, kTile);
  int64_t total = 0;
  for (int64_t kt = 0; kt < key_tiles; ++kt) total += most - dkdv_first_tile(kt * kTile, q_offset, H, Tq);
  DkdvPlan plan;
  if (most == 0) return plan;
  int64_t per_chunk = ceil_div(B * total, 4 * int64_t{sms > 0 ? sms : 1});
  per_chunk = per_chunk < 16 ? 16 : per_chunk;
  per_chunk = per_chunk < ceil_div(most, 65535) ? ceil_div(most, 65535) : per_chunk;  // grid.y limit
  plan.tiles_per_chunk = per_chunk < most ? per_chunk : most;
  plan.chunks = static_cast<int>(ceil_div(most, plan.tiles_per_chunk));
  return plan;
}

// Dynamic shared memory of the two kernels (bytes).
template <int D>
constexpr size_t dq_shared_bytes() {
  return sizeof(bf16) * (6 * size_t{kTile} * (D + kPad) + size_t{kTile} * kTileStride) + sizeof(RowMeta) * kTile +
         sizeof(int32_t) * 2 * kTile;
}
template <int D>
constexpr size_t dkdv_shared_bytes() {
  return sizeof(bf16) * (6 * size_t{kTile} * (D + kPad) + 2 * size_t{kTile} * kTileStride) +
         sizeof(RowMeta) * 2 * kTile + sizeof(int32_t) * kTile;
}

// dst (64, D + kPad) bf16 in shared memory <- rows row0 .. row0 + 63 of src (rows of D elements); rows >= row_end are
// zero-filled. cp.async, 16 bytes per copy; the caller commits. Called by the whole CTA.
template <int D>
__device__ void load_tile_async(bf16* dst, const bf16* src, int64_t row0, int64_t row_end) {
  constexpr int kPieces = D / 8;  // 16-byte pieces per row
  for (int i = threadIdx.x; i < kTile * kPieces; i += kThreads) {
    const int r = i / kPieces, c = i - r * kPieces;
    const int64_t row = row0 + r;
    const bool ok = row < row_end;
    ptx::cp_async_16(dst + r * (D + kPad) + c * 8, ok ? src + row * D + c * 8 : src, ok);
  }
}

// Phase 1 of both kernels, one warp: x = A B^T over the head dim for 32 rows of A (a_rows, the block's first row) and
// 32 rows of B (b_rows), both (rows, D + kPad) bf16 in shared memory. x[m][n] is the C fragment of A rows 16 m ..
// 16 m + 15 x B rows 8 n .. 8 n + 7 (lane: rows g, g + 8 of the m-tile, B rows 2 t, 2 t + 1 of the n-tile).
template <int D>
__device__ __forceinline__ void warp_abt_32x32(float (&x)[2][4][4], const bf16* a_rows, const bf16* b_rows, int lane) {
  constexpr int S = D + kPad;
  mma_tile::zero(x);
  const bf16* a_lane = a_rows + mma_tile::a_lane_offset(lane, S);
  const bf16* b_lane = b_rows + mma_tile::bt_lane_offset(lane, S);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[2][4];
    mma_tile::load_a(a, a_lane + 16 * kk, S);
    mma_tile::mma_abt_step<2>(x, a, b_lane + 16 * kk, S);
  }
}

// delta[row] = sum_d dout[row, d] * out[row, d] (fp32) for the rows < `rows` of (rows, D) bf16 tensors, 16-byte
// loads. Grid ceil(rows * D / 8 / 256), 256 threads: D / 8 consecutive threads share a row, each reading 8 elements of
// both tensors, and sum over their group with shuffles (the group is a power of two dividing the warp).
template <int D>
__global__ void __launch_bounds__(256)
    attention_delta_mma_kernel(const bf16* dout, const bf16* out, float* delta, int64_t rows) {
  constexpr int kGroup = D / 8;
  const int64_t row = (int64_t{blockIdx.x} * 256 + threadIdx.x) / kGroup;
  const int piece = threadIdx.x % kGroup;
  float acc = 0.f;
  if (row < rows) {
    const uint4 a = *reinterpret_cast<const uint4*>(dout + row * D + piece * 8);
    const uint4 c = *reinterpret_cast<const uint4*>(out + row * D + piece * 8);
    const uint32_t aw[4] = {a.x, a.y, a.z, a.w}, cw[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)  // a bf16 is the upper half of the float with the same bits
      acc += __uint_as_float(aw[i] << 16) * __uint_as_float(cw[i] << 16) +
             __uint_as_float(aw[i] & 0xffff0000u) * __uint_as_float(cw[i] & 0xffff0000u);
  }
#pragma unroll
  for (int o = kGroup / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (row < rows && piece == 0) delta[row] = acc;
}

// meta[r] for rows row0 + r, r < 64, of batch b. Threads 0..63 each write one entry (plain loads and stores).
__device__ inline void fill_row_meta(RowMeta* meta, const AttentionParams<bf16, float>& p, const float* delta,
                                     int64_t b, int64_t row0) {
  if (threadIdx.x >= kTile) return;
  const int64_t H = p.H, Tq = p.Tq, R = Tq * H, row = row0 + threadIdx.x;
  RowMeta m{INFINITY, 0.f, -1, 0};
  if (row < R) {
    const int64_t query = row / H, head = row - query * H;
    const float lse = p.lse[(b * H + head) * Tq + query];
    m.lse2 = lse == -INFINITY ? INFINITY : lse * kLog2e;
    m.delta = delta[b * R + row];
    m.pos = static_cast<int32_t>(p.q_offset + query);
    m.seg = p.seg ? p.seg[b * p.Tk + m.pos] : 0;
  }
  meta[threadIdx.x] = m;
}

// dQ. Grid (ceil(R / 64), B) with R = Tq * H, kThreads threads; CTA x owns rows [row0, row0 + 64) of batch b (the
// heaviest, latest rows first) and walks the key tiles [j0, j0 + 64) up to its last visible key, K / V tiles
// double-buffered with cp.async (the next tile loads while this one is computed). Per key tile:
//   phase 1, warps 0-3 compute S = Q K^T, warps 4-7 dP = dO V^T (by mma), warp w owning rows 32 (w % 2) .. +32 and
//            keys 32 ((w % 4) / 2) .. +32 of it; the S warps write P = exp2(S scale log2e - lse2) (0 where the pair is
//            masked) to ds_s as bf16;
//   phase 2, the dP warps turn their P entries of ds_s into dS = P (dP - delta) in place;
//   phase 3, warp w owns rows 32 (w % 2) .. +32 and columns (D / 4) (w / 2) .. +D/4: dQ += dS K by mma.
// dq = scale * dQ. Shared memory: q_s, do_s (64, D + 8); k_s, v_s (2 stages, 64, D + 8); ds_s (64, 72) bf16;
// meta (64); key_seg_s (2 stages, 64).
template <int D>
__global__ void __launch_bounds__(kThreads, dq_min_blocks<D>())
    attention_dq_mma_kernel(AttentionParams<bf16, float> p, const float* delta, float scale) {
  constexpr int S = D + kPad;
  unsigned char* base = ptx::dynamic_shared_base();
  bf16* q_s = reinterpret_cast<bf16*>(base);  // (64, S)
  bf16* do_s = q_s + kTile * S;               // (64, S)
  bf16* k_s = do_s + kTile * S;               // (2, 64, S)
  bf16* v_s = k_s + 2 * kTile * S;            // (2, 64, S)
  bf16* ds_s = v_s + 2 * kTile * S;           // (64 rows, kTileStride): P, then dS
  RowMeta* meta = reinterpret_cast<RowMeta*>(ds_s + kTile * kTileStride);  // (64)
  int32_t* key_seg_s = reinterpret_cast<int32_t*>(meta + kTile);            // (2, 64)

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t H = p.H, Tk = p.Tk, R = p.Tq * H, b = blockIdx.y;
  const int64_t row0 = (int64_t{gridDim.x} - 1 - blockIdx.x) * kTile;
  const int64_t row_last = (row0 + kTile < R ? row0 + kTile : R) - 1;
  const int64_t min_pos = p.q_offset + row0 / H;
  const int64_t key_end_causal = p.q_offset + row_last / H + 1;
  const int64_t key_end = key_end_causal < Tk ? key_end_causal : Tk;
  const int64_t key_tiles = ceil_div(key_end, kTile);
  const bf16* k_b = p.k + b * Tk * D;  // (Tk, D)
  const bf16* v_b = p.v + b * Tk * D;  // (Tk, D)
  const int32_t* seg_b = p.seg ? p.seg + b * Tk : nullptr;
  const float scale_log2 = scale * kLog2e;

  load_tile_async<D>(q_s, p.q + b * R * D, row0, R);
  load_tile_async<D>(do_s, p.dout + b * R * D, row0, R);
  fill_row_meta(meta, p, delta, b, row0);
  auto issue = [&](int64_t kt, int stage) {
    const int64_t j0 = kt * kTile;
    load_tile_async<D>(k_s + stage * kTile * S, k_b, j0, Tk);
    load_tile_async<D>(v_s + stage * kTile * S, v_b, j0, Tk);
    if (seg_b != nullptr && threadIdx.x < kTile)
      key_seg_s[stage * kTile + threadIdx.x] = j0 + threadIdx.x < Tk ? seg_b[j0 + threadIdx.x] : -1;
  };
  if (key_tiles > 0) issue(0, 0);
  ptx::cp_async_commit();

  constexpr int kAccTiles = D / 32;  // n-tiles of 8 columns in the warp's D / 4 columns
  float dq[2][kAccTiles][4];
  mma_tile::zero(dq);
  const bool dp_warp = warp >= 4;                    // phase 1: S (warps 0-3) or dP (warps 4-7)
  const int rm = warp % 2, kn = (warp % 4) / 2;      // phase 1: rows 32 rm.., keys 32 kn..
  const int dn = warp / 2;                           // phase 3: rows 32 rm.., cols dn D/4..
  const bf16* a_src = dp_warp ? do_s : q_s;          // phase 1 A operand (rows x D)

  for (int64_t kt = 0; kt < key_tiles; ++kt) {
    const int stage = static_cast<int>(kt & 1);
    ptx::cp_async_wait<0>();  // key tile kt (and, on the first pass, Q / dO) has landed
    __syncthreads();          // ... for every thread; the previous tile's phase 3 is done with ds_s and stage ^ 1
    if (kt + 1 < key_tiles) issue(kt + 1, stage ^ 1);
    ptx::cp_async_commit();
    const bf16* kt_s = k_s + stage * kTile * S;
    const bf16* b_src = (dp_warp ? v_s : k_s) + stage * kTile * S;  // phase 1 B operand (keys x D)
    const int64_t j0 = kt * kTile;

    // phase 1
    float x[2][4][4];  // S or dP: (m-tile, n-tile, fragment)
    warp_abt_32x32<D>(x, a_src + 32 * rm * S, b_src + 32 * kn * S, lane);
    const bool masked = seg_b != nullptr || j0 + kTile - 1 > min_pos;  // some pair of the tile is not visible
    if (!dp_warp) {
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row_l = 32 * rm + 16 * m + g + 8 * half;
          const RowMeta rmeta = meta[row_l];
#pragma unroll
          for (int n = 0; n < 4; ++n) {
            const int key_l = 32 * kn + 8 * n + 2 * t;
            float prob[2];
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const bool vis = !masked || (j0 + key_l + e <= rmeta.pos &&
                                           (seg_b == nullptr || key_seg_s[stage * kTile + key_l + e] == rmeta.seg));
              prob[e] = vis ? exp2f(x[m][n][2 * half + e] * scale_log2 - rmeta.lse2) : 0.f;
            }
            *reinterpret_cast<uint32_t*>(ds_s + row_l * kTileStride + key_l) = ptx::pack_bf16(prob[0], prob[1]);
          }
        }
    }
    __syncthreads();

    // phase 2
    if (dp_warp) {
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row_l = 32 * rm + 16 * m + g + 8 * half;
          const float row_delta = meta[row_l].delta;
#pragma unroll
          for (int n = 0; n < 4; ++n) {
            bf16* at = ds_s + row_l * kTileStride + 32 * kn + 8 * n + 2 * t;
            const float ds0 = to_float(at[0]) * (x[m][n][2 * half] - row_delta);
            const float ds1 = to_float(at[1]) * (x[m][n][2 * half + 1] - row_delta);
            *reinterpret_cast<uint32_t*>(at) = ptx::pack_bf16(ds0, ds1);
          }
        }
    }
    __syncthreads();

    // phase 3
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      uint32_t a[2][4];
      mma_tile::load_a(a, ds_s + 32 * rm * kTileStride + mma_tile::a_lane_offset(lane, kTileStride) + 16 * kk,
                       kTileStride);
      mma_tile::mma_ab_step<kAccTiles / 2>(dq, a, kt_s + 16 * kk * S + mma_tile::b_lane_offset(lane, S) + dn * (D / 4));
    }
  }
  ptx::cp_async_wait<0>();

#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = row0 + 32 * rm + 16 * m + g + 8 * half;
      if (row >= R) continue;
      bf16* dq_row = p.dq + (b * R + row) * D;
#pragma unroll
      for (int n = 0; n < kAccTiles; ++n) {
        const int col = dn * (D / 4) + 8 * n + 2 * t;
        *reinterpret_cast<uint32_t*>(dq_row + col) =
            ptx::pack_bf16(scale * dq[m][n][2 * half], scale * dq[m][n][2 * half + 1]);
      }
    }
}

// Where the dK/dV kernel writes: chunks == 1: dk / dv of p directly (bf16, dk scaled); chunks > 1: fp32 partials
// part_dk / part_dv (chunks, B, Tk, D), unscaled, for attention_dkdv_reduce_kernel.
struct DkdvOutput {
  float* part_dk = nullptr;
  float* part_dv = nullptr;
  int64_t tiles_per_chunk = 1;
  int chunks = 1;
};

// dK / dV. Grid (ceil(Tk / 64), chunks, B), kThreads threads; CTA (x, y) owns keys [j0, j0 + 64), j0 = 64 x, of batch
// b and walks the row tiles of chunk y, [y tiles_per_chunk, (y + 1) tiles_per_chunk), from dkdv_first_tile on (every
// head: all heads share the K/V head), last tile first, so the CTAs of a chunk start together and stay in step; Q / dO
// tiles double-buffered with cp.async (the next tile loads while this one is computed). Per row tile (transposed
// products, keys as the M dimension):
//   phase 1, warps 0-3 compute S^T = K Q^T, warps 4-7 dP^T = V dO^T (by mma), warp w owning keys 32 (w % 2) .. +32
//            and rows 32 ((w % 4) / 2) .. +32 of it; the S warps write P^T (0 where the pair is masked) to pt_s;
//   phase 2, the dP warps write dS^T = P^T (dP^T - delta) to dst_s (bf16);
//   phase 3, warp w owns keys 32 (w % 2) .. +32 and columns (D / 4) (w / 2) .. +D/4: dV += P^T dO, dK += dS^T Q.
// dk = scale * dK. Shared memory: k_s, v_s (64, D + 8); q_s, do_s (2 stages, 64, D + 8); pt_s, dst_s (64, 72) bf16;
// meta (2 stages, 64); key_seg_s (64).
template <int D>
__global__ void __launch_bounds__(kThreads, dkdv_min_blocks<D>())
    attention_dkdv_mma_kernel(AttentionParams<bf16, float> p, const float* delta, float scale, DkdvOutput out) {
  constexpr int S = D + kPad;
  unsigned char* base = ptx::dynamic_shared_base();
  bf16* k_s = reinterpret_cast<bf16*>(base);  // (64, S)
  bf16* v_s = k_s + kTile * S;                // (64, S)
  bf16* q_s = v_s + kTile * S;                // (2, 64, S)
  bf16* do_s = q_s + 2 * kTile * S;           // (2, 64, S)
  bf16* pt_s = do_s + 2 * kTile * S;          // (64 keys, kTileStride)
  bf16* dst_s = pt_s + kTile * kTileStride;   // (64 keys, kTileStride)
  RowMeta* meta = reinterpret_cast<RowMeta*>(dst_s + kTile * kTileStride);  // (2, 64)
  int32_t* key_seg_s = reinterpret_cast<int32_t*>(meta + 2 * kTile);        // (64)

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t H = p.H, Tk = p.Tk, R = p.Tq * H, b = blockIdx.z;
  const int64_t j0 = int64_t{blockIdx.x} * kTile;
  const int64_t first_tile = dkdv_first_tile(j0, p.q_offset, H, p.Tq), tiles = row_tiles(R);
  const int64_t chunk_begin = int64_t{blockIdx.y} * out.tiles_per_chunk;
  const int64_t tile_begin = chunk_begin > first_tile ? chunk_begin : first_tile;  // walked down to tile_begin
  const int64_t tile_end = chunk_begin + out.tiles_per_chunk < tiles ? chunk_begin + out.tiles_per_chunk : tiles;
  const bf16* q_b = p.q + b * R * D;      // (R, D)
  const bf16* do_b = p.dout + b * R * D;  // (R, D)
  const int32_t* seg_b = p.seg ? p.seg + b * Tk : nullptr;
  const float scale_log2 = scale * kLog2e;

  if (tile_begin < tile_end) {
    load_tile_async<D>(k_s, p.k + b * Tk * D, j0, Tk);
    load_tile_async<D>(v_s, p.v + b * Tk * D, j0, Tk);
    if (seg_b != nullptr && threadIdx.x < kTile)
      key_seg_s[threadIdx.x] = j0 + threadIdx.x < Tk ? seg_b[j0 + threadIdx.x] : -1;
  }
  auto issue = [&](int64_t tile, int stage) {
    const int64_t row0 = tile * kTile;
    load_tile_async<D>(q_s + stage * kTile * S, q_b, row0, R);
    load_tile_async<D>(do_s + stage * kTile * S, do_b, row0, R);
    fill_row_meta(meta + stage * kTile, p, delta, b, row0);
  };
  if (tile_begin < tile_end) issue(tile_end - 1, 0);
  ptx::cp_async_commit();

  constexpr int kAccTiles = D / 32;  // n-tiles of 8 columns in the warp's D / 4 columns
  float dk[2][kAccTiles][4], dv[2][kAccTiles][4];
  mma_tile::zero(dk);
  mma_tile::zero(dv);
  const bool dp_warp = warp >= 4;                // phase 1: S^T (warps 0-3) or dP^T (warps 4-7)
  const int km = warp % 2, rn = (warp % 4) / 2;  // phase 1: keys 32 km.., rows 32 rn..
  const int dn = warp / 2;                       // phase 3: keys 32 km.., cols dn D/4..
  const bf16* a_src = dp_warp ? v_s : k_s;       // phase 1 A operand (keys x D)

  for (int64_t tile = tile_end - 1; tile >= tile_begin; --tile) {
    const int stage = static_cast<int>((tile_end - 1 - tile) & 1);
    ptx::cp_async_wait<0>();  // row tile `tile` (and, on the first pass, K / V) has landed
    __syncthreads();          // ... for every thread; the previous tile's phase 3 is done with stage ^ 1, pt_s, dst_s
    if (tile > tile_begin) issue(tile - 1, stage ^ 1);
    ptx::cp_async_commit();
    const bf16* qt_s = q_s + stage * kTile * S;
    const bf16* dot_s = do_s + stage * kTile * S;
    const bf16* b_src = dp_warp ? dot_s : qt_s;  // phase 1 B operand (rows x D)
    const RowMeta* mt = meta + stage * kTile;
    const int64_t row0 = tile * kTile;

    // phase 1
    float x[2][4][4];  // S^T or dP^T: (m-tile, n-tile, fragment)
    warp_abt_32x32<D>(x, a_src + 32 * km * S, b_src + 32 * rn * S, lane);
    // Some pair of the tile is not visible: the tile's first query does not see the tile's last key, or segments.
    const bool masked = seg_b != nullptr || p.q_offset + row0 / H < j0 + kTile - 1;
    if (!dp_warp) {
      RowMeta row_meta[4][2];  // the thread's 8 rows: 32 rn + 8 n + 2 t + e
#pragma unroll
      for (int n = 0; n < 4; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) row_meta[n][e] = mt[32 * rn + 8 * n + 2 * t + e];
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key_l = 32 * km + 16 * m + g + 8 * half;
          const int64_t key = j0 + key_l;
          const int32_t key_seg = seg_b != nullptr ? key_seg_s[key_l] : 0;
#pragma unroll
          for (int n = 0; n < 4; ++n) {
            const int row_l = 32 * rn + 8 * n + 2 * t;
            float prob[2];
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const RowMeta& rmeta = row_meta[n][e];
              const bool vis = !masked || (key <= rmeta.pos && (seg_b == nullptr || key_seg == rmeta.seg));
              prob[e] = vis ? exp2f(x[m][n][2 * half + e] * scale_log2 - rmeta.lse2) : 0.f;
            }
            *reinterpret_cast<uint32_t*>(pt_s + key_l * kTileStride + row_l) = ptx::pack_bf16(prob[0], prob[1]);
          }
        }
    }
    __syncthreads();

    // phase 2
    if (dp_warp) {
      float row_delta[4][2];  // the thread's 8 rows: 32 rn + 8 n + 2 t + e
#pragma unroll
      for (int n = 0; n < 4; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) row_delta[n][e] = mt[32 * rn + 8 * n + 2 * t + e].delta;
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key_l = 32 * km + 16 * m + g + 8 * half;
#pragma unroll
          for (int n = 0; n < 4; ++n) {
            const int row_l = 32 * rn + 8 * n + 2 * t;
            const bf16* prob = pt_s + key_l * kTileStride + row_l;
            const float ds0 = to_float(prob[0]) * (x[m][n][2 * half] - row_delta[n][0]);
            const float ds1 = to_float(prob[1]) * (x[m][n][2 * half + 1] - row_delta[n][1]);
            *reinterpret_cast<uint32_t*>(dst_s + key_l * kTileStride + row_l) = ptx::pack_bf16(ds0, ds1);
          }
        }
    }
    __syncthreads();

    // phase 3
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      const int a_off = 32 * km * kTileStride + mma_tile::a_lane_offset(lane, kTileStride) + 16 * kk;
      const int b_off = 16 * kk * S + mma_tile::b_lane_offset(lane, S) + dn * (D / 4);
      uint32_t ap[2][4], as[2][4];
      mma_tile::load_a(ap, pt_s + a_off, kTileStride);
      mma_tile::load_a(as, dst_s + a_off, kTileStride);
      mma_tile::mma_ab_step<kAccTiles / 2>(dv, ap, dot_s + b_off);  // dV += P^T dO
      mma_tile::mma_ab_step<kAccTiles / 2>(dk, as, qt_s + b_off);   // dK += dS^T Q
    }
  }
  ptx::cp_async_wait<0>();

  const int64_t B = gridDim.z;
#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t key = j0 + 32 * km + 16 * m + g + 8 * half;
      if (key >= Tk) continue;
#pragma unroll
      for (int n = 0; n < kAccTiles; ++n) {
        const int col = dn * (D / 4) + 8 * n + 2 * t;
        const float k0 = dk[m][n][2 * half], k1 = dk[m][n][2 * half + 1];
        const float v0 = dv[m][n][2 * half], v1 = dv[m][n][2 * half + 1];
        if (out.chunks == 1) {
          const int64_t at = (b * Tk + key) * D + col;
          *reinterpret_cast<uint32_t*>(p.dk + at) = ptx::pack_bf16(scale * k0, scale * k1);
          *reinterpret_cast<uint32_t*>(p.dv + at) = ptx::pack_bf16(v0, v1);
        } else {
          const int64_t at = ((blockIdx.y * B + b) * Tk + key) * D + col;
          out.part_dk[at] = k0, out.part_dk[at + 1] = k1;
          out.part_dv[at] = v0, out.part_dv[at + 1] = v1;
        }
      }
    }
}

// dk[i] = scale * sum_c part_dk[c, i], dv[i] = sum_c part_dv[c, i] for i < n = B * Tk * D, chunks summed in order
// (deterministic). Grid-stride over i; any grid.
__global__ void __launch_bounds__(256) attention_dkdv_reduce_kernel(const float* part_dk, const float* part_dv,
                                                                    bf16* dk, bf16* dv, int64_t n, int chunks,
                                                                    float scale) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float sk = 0.f, sv = 0.f;
    for (int c = 0; c < chunks; ++c) sk += part_dk[c * n + i], sv += part_dv[c * n + i];
    dk[i] = from_float<bf16>(scale * sk);
    dv[i] = from_float<bf16>(sv);
  }
}

}  // namespace stepwise::cuda::attention_backward_mma
