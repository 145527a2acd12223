// Warp-level tile pieces shared by the bf16 tensor-core kernels (attention forward / backward, paged attention): the
// ldmatrix lane addresses of ptx.cuh's recipes, mma over a k-step of 16 with A B^T or A B operands from shared memory,
// C -> A fragment packing, quad reductions and the online-softmax update. Device code only; sizes are template
// arguments so every register array stays compile-time sized.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/ptx.cuh"

namespace stepwise::cuda::mma_tile {

// Fragment layouts (ptx.cuh): lane = threadIdx.x % 32, g = lane / 4, t = lane % 4. A C fragment c[4] of a 16 x 8 tile
// holds (row g, cols 2t, 2t+1) in c[0], c[1] and (row g + 8, cols 2t, 2t+1) in c[2], c[3]; a row's 8 columns sit in
// the 4 lanes of a quad (same g). An A fragment a[4] is a 16 x 16 bf16 tile; ldmatrix_x4 of the B recipes gives the
// B fragments of two adjacent n-tiles, b[0..1] (n 0-7) and b[2..3] (n 8-15).

// Element offsets, inside a row-major bf16 tile of row stride `stride`, of this lane's ldmatrix row address:
// the A fragment of the 16 x 16 tile at (0, 0) (ldmatrix_x4).
__device__ __forceinline__ int a_lane_offset(int lane, int stride) { return (lane % 16) * stride + 8 * (lane / 16); }
// The B fragments of n-tiles 0-7 and 8-15 when the tile is Y (n x k, e.g. K of Q K^T), k 0-15 (ldmatrix_x4).
__device__ __forceinline__ int bt_lane_offset(int lane, int stride) {
  return (8 * (lane / 16) + lane % 8) * stride + 8 * ((lane / 8) % 2);
}
// The B fragments of n-tiles 0-7 and 8-15 when the tile is Z (k x n, e.g. V of P V), k 0-15 (ldmatrix_x4_trans).
__device__ __forceinline__ int b_lane_offset(int lane, int stride) {
  return (8 * ((lane / 8) % 2) + lane % 8) * stride + 8 * (lane / 16);
}

// c = 0 for N C fragments.
template <int N>
__device__ __forceinline__ void zero(float (&c)[N][4]) {
#pragma unroll
  for (int n = 0; n < N; ++n) c[n][0] = c[n][1] = c[n][2] = c[n][3] = 0.f;
}

// c = 0 for M x N C fragments.
template <int M, int N>
__device__ __forceinline__ void zero(float (&c)[M][N][4]) {
#pragma unroll
  for (int m = 0; m < M; ++m) zero(c[m]);
}

// M A fragments of the M 16-row tiles stacked from `a_lane` (this lane's address, a_lane_offset, of the first tile's
// current k-step): tile m starts 16 m rows further.
template <int M>
__device__ __forceinline__ void load_a(uint32_t (&a)[M][4], const __nv_bfloat16* a_lane, int stride) {
#pragma unroll
  for (int m = 0; m < M; ++m) ptx::ldmatrix_x4(a[m], a_lane + 16 * m * stride);
}

// c0 += A * B(n 0-7), c1 += A * B(n 8-15), with b the ldmatrix_x4 result of two n-tiles.
__device__ __forceinline__ void mma_pair(float (&c0)[4], float (&c1)[4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
  const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
  ptx::mma_bf16_16816(c0, a, b0);
  ptx::mma_bf16_16816(c1, a, b1);
}

// One k-step of C += A Y^T: c[n] (n < 2 NPairs) is n-tile n, rows 8 n .. 8 n + 7 of Y (n x k row-major); y_lane is
// this lane's address (bt_lane_offset) at the k-step's columns of Y's first row. The M m-tiles share each B load.
template <int NPairs, int M, int N>
__device__ __forceinline__ void mma_abt_step(float (&c)[M][N][4], const uint32_t (&a)[M][4], const __nv_bfloat16* y_lane,
                                             int stride) {
  static_assert(N >= 2 * NPairs, "accumulator n-tiles");
#pragma unroll
  for (int np = 0; np < NPairs; ++np) {
    uint32_t b[4];
    ptx::ldmatrix_x4(b, y_lane + np * 16 * stride);
#pragma unroll
    for (int m = 0; m < M; ++m) mma_pair(c[m][2 * np], c[m][2 * np + 1], a[m], b);
  }
}
// The same for one m-tile.
template <int NPairs, int N>
__device__ __forceinline__ void mma_abt_step(float (&c)[N][4], const uint32_t (&a)[4], const __nv_bfloat16* y_lane, int stride) {
  static_assert(N >= 2 * NPairs, "accumulator n-tiles");
#pragma unroll
  for (int np = 0; np < NPairs; ++np) {
    uint32_t b[4];
    ptx::ldmatrix_x4(b, y_lane + np * 16 * stride);
    mma_pair(c[2 * np], c[2 * np + 1], a, b);
  }
}

// One k-step of C += A Z: c[n] (n < 2 NPairs) is n-tile n, columns 8 n .. 8 n + 7 of Z (k x n row-major); z_lane is
// this lane's address (b_lane_offset) at the k-step's first row and Z's first column. The M m-tiles share each B load.
template <int NPairs, int M, int N>
__device__ __forceinline__ void mma_ab_step(float (&c)[M][N][4], const uint32_t (&a)[M][4], const __nv_bfloat16* z_lane) {
  static_assert(N >= 2 * NPairs, "accumulator n-tiles");
#pragma unroll
  for (int np = 0; np < NPairs; ++np) {
    uint32_t b[4];
    ptx::ldmatrix_x4_trans(b, z_lane + np * 16);
#pragma unroll
    for (int m = 0; m < M; ++m) mma_pair(c[m][2 * np], c[m][2 * np + 1], a[m], b);
  }
}
// The same for one m-tile.
template <int NPairs, int N>
__device__ __forceinline__ void mma_ab_step(float (&c)[N][4], const uint32_t (&a)[4], const __nv_bfloat16* z_lane) {
  static_assert(N >= 2 * NPairs, "accumulator n-tiles");
#pragma unroll
  for (int np = 0; np < NPairs; ++np) {
    uint32_t b[4];
    ptx::ldmatrix_x4_trans(b, z_lane + np * 16);
    mma_pair(c[2 * np], c[2 * np + 1], a, b);
  }
}

// The A fragment (16 x 16, bf16) of the C fragments c0 (columns 0-7) and c1 (columns 8-15) of a 16 x 16 fp32 tile.
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = ptx::pack_bf16(c0[0], c0[1]);
  a[1] = ptx::pack_bf16(c0[2], c0[3]);
  a[2] = ptx::pack_bf16(c1[0], c1[1]);
  a[3] = ptx::pack_bf16(c1[2], c1[3]);
}

// O += P V for one warp: P (16 rows x 8 KT keys) in C fragments p[KT] (packed to bf16 A fragments), V (8 KT keys x
// 8 DT columns, row-major, row stride `stride`) in shared memory; v_lane is this lane's address (b_lane_offset) of V's
// first row. o[n] is output n-tile n (C layout).
template <int KT, int DT>
__device__ __forceinline__ void mma_pv(float (&o)[DT][4], const float (&p)[KT][4], const __nv_bfloat16* v_lane, int stride) {
  static_assert(KT % 2 == 0 && DT % 2 == 0, "P and O come in 16-column pairs of n-tiles");
#pragma unroll
  for (int kk = 0; kk < KT / 2; ++kk) {
    uint32_t a[4];
    c_to_a(a, p[2 * kk], p[2 * kk + 1]);
    mma_ab_step<DT / 2>(o, a, v_lane + kk * 16 * stride);
  }
}

// Max / sum of x over the 4 lanes of this lane's quad (the lanes holding one C-fragment row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Online-softmax step (base 2) of a warp's 16 x 8 N score tile s (C layout): the lane's rows h = 0, 1 (g, g + 8) are
// s[n][2 h], s[n][2 h + 1]. For each row: m_new = max(m[h], max_j s_j * scale_log2) over the quad (scale_log2 > 0, so
// max and scaling commute), s_j <- exp2(s_j * scale_log2 - m_new) (-inf scores give 0; a row with nothing visible yet
// uses 0 as its base and gets zeros), l[h] <- l[h] * exp2(m[h] - m_new) + (the lane's sum of its new s_j), the row's
// o fragments scaled by the same factor, m[h] <- m_new. m is the same in the 4 lanes of a quad; l is per lane.
template <int N, int DT>
__device__ __forceinline__ void online_softmax(float (&s)[N][4], float scale_log2, float (&m)[2], float (&l)[2],
                                               float (&o)[DT][4]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < N; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
    const float m_new = fmaxf(m[h], quad_max(mx) * scale_log2);
    const float m_ref = m_new == -INFINITY ? 0.f : m_new;  // exp2(-inf - 0) = 0
    const float rescale = exp2f(m[h] - m_ref);             // 0 when m was -inf
    m[h] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < N; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float prob = exp2f(fmaf(s[n][2 * h + e], scale_log2, -m_ref));
        s[n][2 * h + e] = prob;
        sum += prob;
      }
    }
    l[h] = l[h] * rescale + sum;
#pragma unroll
    for (int n = 0; n < DT; ++n) o[n][2 * h] *= rescale, o[n][2 * h + 1] *= rescale;
  }
}

}  // namespace stepwise::cuda::mma_tile
