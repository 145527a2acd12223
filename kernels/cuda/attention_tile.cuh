// Warp-level pieces shared by the CUDA attention kernels (attention_forward.cu, attention_backward.cu,
// paged_attention.cu): tile constants, shared-memory tile loads, and the online-softmax step of one key tile for the
// query rows a warp owns. CUDA cores with fp32 accumulation (no tensor cores yet). Included only by .cu files.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cpu/check.h"
#include "cuda/common.cuh"

namespace stepwise::cuda::attention_tile {

constexpr int kWarps = 8;                 // warps per CTA
constexpr int kThreads = kWarps * 32;     // threads per CTA
constexpr int kKeyTile = 32;              // keys per shared-memory tile: lane j of a warp owns key j of the tile
constexpr int kMaxHeadDim = 256;          // D <= 32 * DC with DC in {1, 2, 4, 8}
constexpr unsigned kFullMask = 0xffffffffu;

// Row stride of a key/value tile in shared memory: odd, so lane j reading element (j, d) hits bank (j * stride + d)
// mod 32, distinct for the 32 lanes (no bank conflicts when lanes walk keys), while lanes walking d stay contiguous.
__host__ __device__ inline int kv_stride(int D) { return D | 1; }

// Number of 32-wide chunks of the head dimension a lane holds in registers (lane owns d = lane + 32 c, c < DC).
inline int head_chunks(int64_t D) { return D <= 32 ? 1 : D <= 64 ? 2 : D <= 128 ? 4 : 8; }

// Throws unless 1 <= D <= kMaxHeadDim.
inline void require_head_dim(int64_t D, const char* op) {
  if (D < 1 || D > kMaxHeadDim) cpu::kernel_fail(op, "D = ", D, " must be in [1, ", kMaxHeadDim, "] on CUDA");
}

// dst[r * D + d] = src row (first_row + r), element d, as float; rows >= row_end give 0. src rows have D elements.
// Called by the whole CTA.
template <class T>
__device__ void load_rows(float* dst, const T* src, int64_t first_row, int64_t row_end, int rows, int D) {
  for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
    const int r = idx / D, d = idx - r * D;
    const int64_t row = first_row + r;
    dst[idx] = row < row_end ? to_float(src[row * D + d]) : 0.f;
  }
}

// dst (kKeyTile, kv_stride(D)) = the tile's key (or value) rows as float: row j < count is row_of(j) (a const T* to
// D elements, or nullptr for a row that cannot be read, which loads as NaN so the fault shows in the output);
// rows j >= count load as 0. Called by the whole CTA.
template <class T, class RowOf>
__device__ void load_key_tile(float* dst, int count, int D, RowOf row_of) {
  const int stride = kv_stride(D);
  for (int idx = threadIdx.x; idx < kKeyTile * D; idx += blockDim.x) {
    const int j = idx / D, d = idx - j * D;
    float x = 0.f;
    if (j < count) {
      const T* row = row_of(j);
      x = row != nullptr ? to_float(row[d]) : __int_as_float(0x7fc00000);  // quiet NaN
    }
    dst[j * stride + d] = x;
  }
}

// State of one query row owned by a warp: running max m, running sum l (of exp(score - m)), and the unnormalised
// output sum acc (lane owns d = lane + 32 c). m and l are identical in every lane.
template <int RPW, int DC>
struct RowsState {
  float m[RPW], l[RPW], acc[RPW][DC];
  __device__ void init() {
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      m[r] = -INFINITY, l[r] = 0.f;
#pragma unroll
      for (int c = 0; c < DC; ++c) acc[r][c] = 0.f;
    }
  }
};

// One online-softmax step of a warp's RPW query rows over one key tile held in shared memory.
//   q_rows: (RPW, D) the warp's query rows (float, row stride D)
//   k_tile, v_tile: (kKeyTile, kv_stride(D)) keys and values of the tile (float)
//   visible(r): whether the warp's row r sees the key of this lane (key index = lane); must be false for keys past
//   the end of the tile's valid range.
// Lane j computes the scores of key j against the RPW rows, the warp reduces max and sum with shuffles, then every
// lane accumulates P V for its own d values, broadcasting p_j with __shfl_sync. No shared-memory writes.
template <int RPW, int DC, class Visible>
__device__ void online_softmax_tile(RowsState<RPW, DC>& st, const float* q_rows, const float* k_tile,
                                    const float* v_tile, int D, float scale, Visible visible) {
  const int lane = threadIdx.x % 32;
  const int stride = kv_stride(D);
  float s[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) s[r] = 0.f;
  const float* k_row = k_tile + lane * stride;
  for (int d = 0; d < D; ++d) {
    const float kv = k_row[d];
#pragma unroll
    for (int r = 0; r < RPW; ++r) s[r] += q_rows[r * D + d] * kv;  // q_rows read is a warp broadcast
  }

  float p[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    const bool vis = visible(r);
    const float x = vis ? s[r] * scale : -INFINITY;
    const float new_m = fmaxf(st.m[r], warp_max(x));  // identical in all lanes
    if (new_m == -INFINITY) {                          // nothing visible yet for this row (warp-uniform branch)
      p[r] = 0.f;
      continue;
    }
    const float rescale = expf(st.m[r] - new_m);  // 0 when m was -inf
    p[r] = vis ? expf(x - new_m) : 0.f;
    st.l[r] = st.l[r] * rescale + warp_sum(p[r]);
    st.m[r] = new_m;
#pragma unroll
    for (int c = 0; c < DC; ++c) st.acc[r][c] *= rescale;
  }

  for (int j = 0; j < kKeyTile; ++j) {
    float vj[DC];
#pragma unroll
    for (int c = 0; c < DC; ++c) {
      const int d = lane + 32 * c;
      vj[c] = d < D ? v_tile[j * stride + d] : 0.f;
    }
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      const float pj = __shfl_sync(kFullMask, p[r], j);
#pragma unroll
      for (int c = 0; c < DC; ++c) st.acc[r][c] += pj * vj[c];
    }
  }
}

}  // namespace stepwise::cuda::attention_tile
