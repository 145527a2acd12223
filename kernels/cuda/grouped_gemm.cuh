// The grouped GEMM behind cuda::grouped_linear_* (device code, included by grouped_linear.cu and the emulator test
// tests/emu/test_emu_grouped_gemm.cpp): one GEMM per expert, all in one launch, with each expert's rows read from the
// device offsets. A persistent grid walks the list of output tiles; each block derives that list itself from the
// offsets (tile_start per expert, a warp scan) and finds a tile's expert by binary search, so the host never learns
// the row counts. Empty experts have no tiles; tiles past an expert's rows or columns are masked (zero-filled loads,
// bounds-checked stores).
// bf16: 128 x 128 x 32 block tiles on 4 warps (64 x 64 each: half the shared-memory reads per mma of 64 x 32), a
// 4-stage cp.async pipeline into shared rows padded by 16 bytes, ldmatrix and mma.sync m16n8k16 (fp32 accumulate),
// 2 blocks per SM. fp32 (the exact check path): 64 x 64 x 16 tiles on 256 threads moved global -> registers ->
// shared, CUDA-core FMAs.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/ptx.cuh"
#include "ops/moe.h"

namespace stepwise::cuda::grouped_gemm {
namespace {

template <class T> constexpr int kVec = 16 / static_cast<int>(sizeof(T));   // elements per 16-byte chunk
constexpr int64_t kMaxExperts = 2048;              // tile_start[E + 1] in dynamic shared memory (16 KiB)

// One GEMM per expert e, C_e (M_e, N) (=/+=) A_e (M_e, K_e) B_e (K_e, N), expert e owning rows [row0, row0 + rows_e)
// with row0 = offsets[e], rows_e = offsets[e + 1] - row0:
//  rows_in_k = false (forward, dinp): M_e = rows_e, K_e = K; A_e = a + row0*lda, B_e = b + e*b_expert_stride,
//    C_e = c + row0*ldc (T, written =).
//  rows_in_k = true (dweight): M_e = M, K_e = rows_e; A_e = a + row0*lda, B_e = b + row0*ldb,
//    C_e = c + e*c_expert_stride (fp32, accumulated +=).
// A(m, k) = A_e[m*lda + k] when a_k_contig, else A_e[k*lda + m]; B(k, n) = B_e[n*ldb + k] when b_k_contig, else
// B_e[k*ldb + n]; C(m, n) = C_e[m*ldc + n].
struct Problem {
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  const int64_t* offsets = nullptr;   // (E + 1) device
  int E = 0;
  int64_t M = 0, N = 0, K = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t b_expert_stride = 0, c_expert_stride = 0;
  bool a_vec = false, b_vec = false;  // 16-byte loads allowed: leading dimension a multiple of kVec, base aligned
  bool c_vec = false;                 // stores of two adjacent outputs at once: ldc even, base aligned to two outputs
};

// ---- host side: the three problems of a grouped linear (shared by the launcher and the emulator test) ------------

template <class T>
bool vector_loads_ok(const T* base, int64_t ld) {
  return ld % kVec<T> == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}
template <class C>
bool pair_stores_ok(const C* base, int64_t ld) {
  return ld % 2 == 0 && reinterpret_cast<uintptr_t>(base) % (2 * sizeof(C)) == 0;
}

// out (R, O) = inp (R, I) W_e^T per expert: A = inp (k-contiguous), B(k, n) = W_e[n, k] (k-contiguous).
template <class T>
Problem forward_problem(const GroupedLinearParams<T, float>& p) {
  Problem g;
  g.a = p.inp, g.b = p.weight, g.c = p.out, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
  g.N = p.O, g.K = p.I;
  g.lda = p.I, g.ldb = p.I, g.ldc = p.O, g.b_expert_stride = p.O * p.I;
  g.a_vec = vector_loads_ok(p.inp, p.I), g.b_vec = vector_loads_ok(p.weight, p.I);
  g.c_vec = pair_stores_ok(p.out, p.O);
  return g;
}

// dinp (R, I) = dout (R, O) W_e: A = dout (k-contiguous), B(k, n) = W_e[k, n] (n-contiguous).
template <class T>
Problem dinp_problem(const GroupedLinearParams<T, float>& p) {
  Problem g;
  g.a = p.dout, g.b = p.weight, g.c = p.dinp, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
  g.N = p.I, g.K = p.O;
  g.lda = p.O, g.ldb = p.I, g.ldc = p.I, g.b_expert_stride = p.O * p.I;
  g.a_vec = vector_loads_ok(p.dout, p.O), g.b_vec = vector_loads_ok(p.weight, p.I);
  g.c_vec = pair_stores_ok(p.dinp, p.I);
  return g;
}

// dweight_e (O, I) += dout_e^T inp_e: A(m, k) = dout[row0 + k, m] (m-contiguous), B(k, n) = inp[row0 + k, n].
template <class T>
Problem dweight_problem(const GroupedLinearParams<T, float>& p) {
  Problem g;
  g.a = p.dout, g.b = p.inp, g.c = p.dweight, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
  g.M = p.O, g.N = p.I;
  g.lda = p.O, g.ldb = p.I, g.ldc = p.I, g.c_expert_stride = p.O * p.I;
  g.a_vec = vector_loads_ok(p.dout, p.O), g.b_vec = vector_loads_ok(p.inp, p.I);
  g.c_vec = pair_stores_ok(p.dweight, p.I);
  return g;
}

// ---- chunk loads shared by both paths ------------------------------------------------------------------------------

// Elements [0, count) of one 16-byte chunk at src, loaded one by one (count <= kVec; the rest zero).
template <class T>
__device__ __forceinline__ uint4 load_partial_chunk(const T* src, int64_t count) {
  using Bits = std::conditional_t<sizeof(T) == 2, unsigned short, unsigned>;
  union {
    uint4 chunk;
    Bits bits[kVec<T>];
  } u;
  u.chunk = make_uint4(0, 0, 0, 0);
  const Bits* src_bits = reinterpret_cast<const Bits*>(src);
#pragma unroll
  for (int j = 0; j < kVec<T>; ++j)
    if (j < count) u.bits[j] = src_bits[j];
  return u.chunk;
}

// ---- bf16: tensor cores ---------------------------------------------------------------------------------------------

// Block tile 128 x 128 (m x n) in k-steps of 32, kStages k-steps in flight, 4 warps. Warp w owns rows
// 64 * (w / 2) .. + 64 and columns 64 * (w % 2) .. + 64 of the block tile: 4 x 8 mma tiles of 16 x 8.
struct Bf16Shape {
  static constexpr int BM = 128, BN = 128, BK = 32, kStages = 4, kThreads = 128;
  static constexpr int kWarpM = 64, kWarpN = 64, kWarpsN = BN / kWarpN, kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
  static_assert((BM / kWarpM) * kWarpsN * 32 == kThreads, "warps do not cover the block tile");
};

// One operand's k-step in shared memory, in its global orientation: k-contiguous -> kMN rows of BK elements
// ([m][k] or [n][k]), else BK rows of kMN elements ([k][m] or [k][n]). Rows are padded by 8 elements (16 bytes):
// the 8 rows an ldmatrix phase reads then start in 8 different 16-byte bank groups (row strides of 80 or 272 bytes).
template <bool kKContig, int kMN>
struct OperandTile {
  static constexpr int kOuter = kKContig ? kMN : Bf16Shape::BK;
  static constexpr int kInner = kKContig ? Bf16Shape::BK : kMN;
  static constexpr int kLd = kInner + 8;
  static constexpr int kElems = kOuter * kLd;
  static constexpr int kChunksPerRow = kInner / 8;
  static constexpr int kThreads = Bf16Shape::kThreads;
  static constexpr int kChunksPerThread = kOuter * kChunksPerRow / kThreads;
  static_assert((kOuter * kChunksPerRow) % kThreads == 0, "tile chunks not divisible by the threads");
  static_assert((kElems * 2) % 16 == 0, "tile not a whole number of 16-byte chunks");

  // Issues the copy of the k-step whose element (outer, inner) is src[outer * ld + inner], valid for outer <
  // outer_valid and inner < inner_valid (zero elsewhere): thread t owns chunks t, t + kThreads, ... (consecutive
  // threads, consecutive 16 bytes of a row). With `vec` (16-byte aligned rows), whole chunks go by cp.async and
  // chunks wholly outside are zero-filled by it (reading nothing from `mapped`, the aligned operand base); partial
  // chunks, and every chunk without `vec`, are loaded element by element (none when wholly outside: zeros) and stored
  // at once. All are visible after cp_async_wait and a barrier.
  __device__ __forceinline__ static void copy(bf16* dst, const bf16* src, int64_t ld, int outer_valid,
                                              int inner_valid, bool vec, const void* mapped) {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int chunk = static_cast<int>(threadIdx.x) + i * kThreads;
      const int outer = chunk / kChunksPerRow, inner = (chunk % kChunksPerRow) * 8;
      bf16* d = dst + outer * kLd + inner;
      const bool in_rows = outer < outer_valid;
      const bool whole = in_rows && inner + 8 <= inner_valid;
      const bool none = !in_rows || inner >= inner_valid;
      if (vec && (whole || none))
        ptx::cp_async_16(d, whole ? static_cast<const void*>(src + outer * ld + inner) : mapped, whole);
      else
        *reinterpret_cast<uint4*>(d) = load_partial_chunk(src + outer * ld + inner, none ? 0 : inner_valid - inner);
    }
  }
};

template <bool kAKContig, bool kBKContig>
struct Bf16Tiles {
  using ATile = OperandTile<kAKContig, Bf16Shape::BM>;
  using BTile = OperandTile<kBKContig, Bf16Shape::BN>;
  static constexpr int kStageElems = ATile::kElems + BTile::kElems;
  static constexpr int kBytes = Bf16Shape::kStages * kStageElems * 2;
};

// The warp's 64 x 64 accumulators (fp32, mma C layout) and the ldmatrix addressing of its fragments. Per k-step of
// 16: A of 4 m-tiles (one ldmatrix_x4 each: trans when A is stored [k][m]), B of 8 n-tiles (one ldmatrix_x4 per two:
// trans when B is stored [k][n]), then 32 mma. A warp whose 64 x 64 part of an edge tile holds no valid output skips
// the multiply, and with kHalfRows one whose valid rows fit in its first 32 multiplies only those (warp-uniform
// branches), which saves the tensor-core time of the masked part of edge tiles (an expert's last rows in forward and
// dinp; the dweight instantiation, whose rows are the feature dimension, goes without: it would spill there).
template <bool kAKContig, bool kBKContig, bool kHalfRows>
struct TensorCoreMath {
  using Tl = Bf16Tiles<kAKContig, kBKContig>;
  using S = Bf16Shape;
  static constexpr int kLdA = Tl::ATile::kLd, kLdB = Tl::BTile::kLd;
  float acc[S::kFragsM][S::kFragsN][4];
  int a_lane, b_lane;   // this lane's ldmatrix offsets (elements) into a stage's A / B tile at k = 0
  int frags_m;          // m-tiles multiplied: 0 (no valid output in the warp's part), kFragsM / 2 or kFragsM

  __device__ void init(int m_valid, int n_valid) {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int wm = warp / S::kWarpsN * S::kWarpM, wn = warp % S::kWarpsN * S::kWarpN;
    // A from [m][k]: &X[lane % 16][8 * (lane / 16)] (ptx.cuh). From [k][m] (trans): matrices 0..3 = (k 0-7, m 0-7),
    // (k 0-7, m 8-15), (k 8-15, m 0-7), (k 8-15, m 8-15), i.e. a[0..3]; lane gives row lane % 8 of matrix lane / 8.
    a_lane = kAKContig ? (wm + lane % 16) * kLdA + 8 * (lane / 16)
                       : (lane % 8 + 8 * (lane / 16)) * kLdA + wm + 8 * ((lane / 8) % 2);
    // B of two n-tiles from [n][k] / [k][n] (trans): the ptx.cuh recipes for Y and Z.
    b_lane = kBKContig ? (wn + 8 * (lane / 16) + lane % 8) * kLdB + 8 * ((lane / 8) % 2)
                       : (8 * ((lane / 8) % 2) + lane % 8) * kLdB + wn + 8 * (lane / 16);
    const int rows = m_valid - wm, cols = n_valid - wn;
    frags_m = rows <= 0 || cols <= 0 ? 0 : kHalfRows && rows <= S::kWarpM / 2 ? S::kFragsM / 2 : S::kFragsM;
#pragma unroll
    for (int i = 0; i < S::kFragsM; ++i)
#pragma unroll
      for (int j = 0; j < S::kFragsN; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
  }

  // One k-step (BK = 32) from a stage's tiles.
  __device__ __forceinline__ void step(const bf16* sA, const bf16* sB) {
    if (frags_m == S::kFragsM)
      multiply<S::kFragsM>(sA, sB);
    else if (kHalfRows && frags_m > 0)
      multiply<S::kFragsM / 2>(sA, sB);
  }

  // The k-step for m-tiles 0 .. kFM - 1 of the warp.
  template <int kFM>
  __device__ __forceinline__ void multiply(const bf16* sA, const bf16* sB) {
#pragma unroll
    for (int kk = 0; kk < S::BK; kk += 16) {
      uint32_t a[kFM][4], b[S::kFragsN / 2][4];
#pragma unroll
      for (int i = 0; i < kFM; ++i) {
        const bf16* row = sA + a_lane + (kAKContig ? 16 * i * kLdA + kk : kk * kLdA + 16 * i);
        if constexpr (kAKContig)
          ptx::ldmatrix_x4(a[i], row);
        else
          ptx::ldmatrix_x4_trans(a[i], row);
      }
#pragma unroll
      for (int jj = 0; jj < S::kFragsN / 2; ++jj) {
        const bf16* row = sB + b_lane + (kBKContig ? 16 * jj * kLdB + kk : kk * kLdB + 16 * jj);
        if constexpr (kBKContig)
          ptx::ldmatrix_x4(b[jj], row);
        else
          ptx::ldmatrix_x4_trans(b[jj], row);
      }
#pragma unroll
      for (int i = 0; i < kFM; ++i)
#pragma unroll
        for (int j = 0; j < S::kFragsN; ++j) {
          const uint32_t bj[2] = {b[j / 2][2 * (j % 2)], b[j / 2][2 * (j % 2) + 1]};
          ptx::mma_bf16_16816(acc[i][j], a[i], bj);
        }
    }
  }

  // Hands each accumulator pair (row m, columns n and n + 1) to store2(m, n, v0, v1) in tile coordinates + m0, n0.
  template <class Store2>
  __device__ void finish(int64_t m0, int64_t n0, const Store2& store2) const {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int64_t wm = m0 + warp / S::kWarpsN * S::kWarpM + lane / 4;
    const int64_t wn = n0 + warp % S::kWarpsN * S::kWarpN + 2 * (lane % 4);
#pragma unroll
    for (int i = 0; i < S::kFragsM; ++i)
#pragma unroll
      for (int j = 0; j < S::kFragsN; ++j) {
        store2(wm + 16 * i, wn + 8 * j, acc[i][j][0], acc[i][j][1]);
        store2(wm + 16 * i + 8, wn + 8 * j, acc[i][j][2], acc[i][j][3]);
      }
  }
};

// ---- fp32: CUDA cores -----------------------------------------------------------------------------------------------

// 16 x 16 threads, thread (ty, tx) owning rows ty + 16i and columns tx + 16j (i, j < 4) of the 64 x 64 tile.
struct Fp32Shape {
  static constexpr int BM = 64, BN = 64, BK = 16, kThreads = 256;
};

// A kOuter x kInner fp32 tile whose inner index is contiguous in global memory, moved global -> registers -> shared
// as 16-byte chunks. Thread t owns chunks t, t + kThreads, ...: consecutive threads read consecutive chunks of a row.
// In shared memory the tile keeps the same orientation, rows of kInner + kVec elements (16-byte aligned, staggered).
template <int kOuter, int kInner>
struct Fp32TileLoader {
  static constexpr int kThreads = Fp32Shape::kThreads;
  static constexpr int kLd = kInner + kVec<float>;
  static constexpr int kChunksPerRow = kInner / kVec<float>;
  static constexpr int kChunks = kOuter * kChunksPerRow / kThreads;
  static_assert(kInner % kVec<float> == 0 && (kOuter * kChunksPerRow) % kThreads == 0, "tile not divisible");
  uint4 regs[kChunks];

  __device__ __forceinline__ void load(const float* base, int64_t stride, int64_t outer_valid, int64_t inner_valid,
                                       bool vec) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = static_cast<int>(threadIdx.x) + i * kThreads;
      const int outer = chunk / kChunksPerRow, inner = (chunk % kChunksPerRow) * kVec<float>;
      regs[i] = make_uint4(0, 0, 0, 0);
      if (outer >= outer_valid || inner >= inner_valid) continue;
      const float* src = base + outer * stride + inner;
      regs[i] = vec && inner + kVec<float> <= inner_valid ? *reinterpret_cast<const uint4*>(src)
                                                          : load_partial_chunk(src, inner_valid - inner);
    }
  }
  __device__ __forceinline__ void store(float* smem) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = static_cast<int>(threadIdx.x) + i * kThreads;
      *reinterpret_cast<uint4*>(smem + (chunk / kChunksPerRow) * kLd + (chunk % kChunksPerRow) * kVec<float>) =
          regs[i];
    }
  }
};

// Shared-memory layout of the fp32 A and B tiles: A is (BM x BK) as [m][k] when a_k_contig, else [k][m]; B is
// (BK x BN) as [n][k] when b_k_contig, else [k][n].
template <bool kAKContig, bool kBKContig>
struct Fp32Tiles {
  using Sh = Fp32Shape;
  using ALoader = Fp32TileLoader<kAKContig ? Sh::BM : Sh::BK, kAKContig ? Sh::BK : Sh::BM>;
  using BLoader = Fp32TileLoader<kBKContig ? Sh::BN : Sh::BK, kBKContig ? Sh::BK : Sh::BN>;
  static constexpr int kLdA = ALoader::kLd, kLdB = BLoader::kLd;
  static constexpr int kAElems = (kAKContig ? Sh::BM : Sh::BK) * kLdA;
  static constexpr int kBElems = (kBKContig ? Sh::BN : Sh::BK) * kLdB;
  static constexpr int kBytes = (kAElems + kBElems) * static_cast<int>(sizeof(float));
};

// Each k-step, every thread multiplies 4 A values by 4 B values read from the shared tiles, in ascending k.
template <bool kAKContig, bool kBKContig>
struct CudaCoreMath {
  using Tl = Fp32Tiles<kAKContig, kBKContig>;
  float acc[4][4];

  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
  }

  __device__ void step(const float* sA, const float* sB) {
    constexpr int kLdA = Tl::kLdA, kLdB = Tl::kLdB;
    const int ty = static_cast<int>(threadIdx.x / 16), tx = static_cast<int>(threadIdx.x % 16);
#pragma unroll
    for (int kk = 0; kk < Fp32Shape::BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = ty + 16 * i;
        a[i] = kAKContig ? sA[m * kLdA + kk] : sA[kk * kLdA + m];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int n = tx + 16 * j;
        b[j] = kBKContig ? sB[n * kLdB + kk] : sB[kk * kLdB + n];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }

  template <class Store>
  __device__ void finish(int64_t m0, int64_t n0, int64_t M, int64_t N, const Store& store) const {
    const int ty = static_cast<int>(threadIdx.x / 16), tx = static_cast<int>(threadIdx.x % 16);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
        if (m < M && n < N) store(m, n, acc[i][j]);
      }
  }
};

// ---- the kernel ---------------------------------------------------------------------------------------------------

template <class T> using Shape = std::conditional_t<std::is_same_v<T, bf16>, Bf16Shape, Fp32Shape>;
template <class T> constexpr int kBlockThreads = Shape<T>::kThreads;   // the launch's block size

// Bytes of the tiles (all pipeline stages for bf16, the single buffer for fp32); tile_start follows them.
template <class T, bool kAKContig, bool kBKContig>
constexpr int tile_bytes() {
  if constexpr (std::is_same_v<T, bf16>)
    return Bf16Tiles<kAKContig, kBKContig>::kBytes;
  else
    return Fp32Tiles<kAKContig, kBKContig>::kBytes;
}
// Dynamic shared memory of one block: the tiles, then tile_start[E + 1] (int64).
template <class T, bool kAKContig, bool kBKContig>
size_t shared_bytes(int E) {
  return static_cast<size_t>(tile_bytes<T, kAKContig, kBKContig>()) + sizeof(int64_t) * static_cast<size_t>(E + 1);
}

// The tiles of one expert's GEMM at (m0, n0), reduction over [0, K); per-expert bases already applied.
template <class T, bool kAKContig, bool kBKContig>
struct TileJob {
  const T* A;
  const T* B;
  int64_t M, N, K, m0, n0;
};

// bf16 block tile: the cp.async pipeline, kStages - 1 k-steps ahead of the one multiplied. At step ks the group of
// step ks has landed (wait: all but the kStages - 2 newest), the barrier publishes it to every warp and tells that
// all warps are done with step ks - 1, whose stage then receives step ks + kStages - 1. Every iteration commits a
// group (empty past the end) so that the count stays exact. Returns with the accumulators of the tile.
template <bool kAKContig, bool kBKContig, bool kHalfRows>
__device__ void bf16_tile(const Problem& g, const TileJob<bf16, kAKContig, kBKContig>& job, bf16* stages,
                          TensorCoreMath<kAKContig, kBKContig, kHalfRows>& math) {
  using S = Bf16Shape;
  using Tl = Bf16Tiles<kAKContig, kBKContig>;
  const int k_steps = static_cast<int>(ceil_div(job.K, S::BK));
  // Valid extents along m and n from the tile's origin (clamped to the tile), and the operands' global addresses at
  // the tile's origin for the k-step being issued (advanced by one k-step per issue).
  const int m_valid = static_cast<int>(std::min<int64_t>(job.M - job.m0, S::BM));
  const int n_valid = static_cast<int>(std::min<int64_t>(job.N - job.n0, S::BN));
  const bf16* a_src = job.A + (kAKContig ? job.m0 * g.lda : job.m0);
  const bf16* b_src = job.B + (kBKContig ? job.n0 * g.ldb : job.n0);
  const auto issue = [&](int ks) {
    bf16* sA = stages + (ks % S::kStages) * Tl::kStageElems;
    bf16* sB = sA + Tl::ATile::kElems;
    const int k_valid = static_cast<int>(std::min<int64_t>(job.K - static_cast<int64_t>(ks) * S::BK, S::BK));
    if constexpr (kAKContig)
      Tl::ATile::copy(sA, a_src, g.lda, m_valid, k_valid, g.a_vec, g.a);
    else
      Tl::ATile::copy(sA, a_src, g.lda, k_valid, m_valid, g.a_vec, g.a);
    if constexpr (kBKContig)
      Tl::BTile::copy(sB, b_src, g.ldb, n_valid, k_valid, g.b_vec, g.b);
    else
      Tl::BTile::copy(sB, b_src, g.ldb, k_valid, n_valid, g.b_vec, g.b);
    a_src += kAKContig ? S::BK : S::BK * g.lda;
    b_src += kBKContig ? S::BK : S::BK * g.ldb;
  };

  math.init(m_valid, n_valid);
#pragma unroll 1
  for (int s = 0; s < S::kStages - 1; ++s) {
    if (s < k_steps) issue(s);
    ptx::cp_async_commit();
  }
#pragma unroll 1
  for (int ks = 0; ks < k_steps; ++ks) {
    ptx::cp_async_wait<S::kStages - 2>();
    __syncthreads();
    if (ks + S::kStages - 1 < k_steps) issue(ks + S::kStages - 1);
    ptx::cp_async_commit();
    const bf16* sA = stages + (ks % S::kStages) * Tl::kStageElems;
    math.step(sA, sA + Tl::ATile::kElems);
  }
}

// fp32 block tile: global -> registers -> shared, single buffer (the next k-step is fetched into registers while the
// current one is multiplied).
template <bool kAKContig, bool kBKContig>
__device__ void fp32_tile(const Problem& g, const TileJob<float, kAKContig, kBKContig>& job, float* tiles,
                          CudaCoreMath<kAKContig, kBKContig>& math) {
  using Sh = Fp32Shape;
  using Tl = Fp32Tiles<kAKContig, kBKContig>;
  float* sA = tiles;
  float* sB = sA + Tl::kAElems;
  typename Tl::ALoader a_loader;
  typename Tl::BLoader b_loader;
  const auto fetch = [&](int64_t k0) {   // the k-step at k0 into registers
    if constexpr (kAKContig)
      a_loader.load(job.A + job.m0 * g.lda + k0, g.lda, job.M - job.m0, job.K - k0, g.a_vec);
    else
      a_loader.load(job.A + k0 * g.lda + job.m0, g.lda, job.K - k0, job.M - job.m0, g.a_vec);
    if constexpr (kBKContig)
      b_loader.load(job.B + job.n0 * g.ldb + k0, g.ldb, job.N - job.n0, job.K - k0, g.b_vec);
    else
      b_loader.load(job.B + k0 * g.ldb + job.n0, g.ldb, job.K - k0, job.N - job.n0, g.b_vec);
  };

  fetch(0);
  a_loader.store(sA);
  b_loader.store(sB);
  __syncthreads();
  math.zero();
  for (int64_t k0 = 0; k0 < job.K; k0 += Sh::BK) {
    const bool more = k0 + Sh::BK < job.K;
    if (more) fetch(k0 + Sh::BK);   // global loads in flight during the multiply
    math.step(sA, sB);
    __syncthreads();                // all warps are done reading this k-step's tiles
    if (more) {
      a_loader.store(sA);
      b_loader.store(sB);
      __syncthreads();
    }
  }
}

// The persistent kernel: kBlockThreads<T> threads per block, shared_bytes<T, ...>(E) of dynamic shared memory; block b takes
// tiles b, b + gridDim.x, ... of the tile list ordered by expert, then row tile, then column tile (consecutive blocks
// share A rows; an expert's B stays in L2).
template <class T, bool kRowsInK, bool kAKContig, bool kBKContig>
__global__ void __launch_bounds__(kBlockThreads<T>, 2) grouped_gemm_kernel(Problem g) {
  using Sh = Shape<T>;
  constexpr bool kTensorCores = std::is_same_v<T, bf16>;
  unsigned char* smem = ptx::dynamic_shared_base();
  int64_t* tile_start = reinterpret_cast<int64_t*>(smem + tile_bytes<T, kAKContig, kBKContig>());   // (E + 1)
  const int64_t n_tiles = ceil_div(g.N, Sh::BN);

  if (threadIdx.x < 32) {   // warp 0: tiles per expert, inclusive scan 32 experts at a time with a running carry
    const int lane = static_cast<int>(threadIdx.x);
    if (lane == 0) tile_start[0] = 0;
    int64_t carry = 0;
    for (int base = 0; base < g.E; base += 32) {
      const int e = base + lane;
      int64_t tiles = 0;
      if (e < g.E) {
        const int64_t rows = g.offsets[e + 1] - g.offsets[e];
        const int64_t m_rows = kRowsInK ? g.M : rows;
        tiles = rows > 0 ? ceil_div(m_rows, Sh::BM) * n_tiles : 0;
      }
      for (int o = 1; o < 32; o <<= 1) {
        const int64_t up = __shfl_up_sync(0xffffffffu, tiles, o);
        if (lane >= o) tiles += up;
      }
      if (e < g.E) tile_start[e + 1] = carry + tiles;
      carry += __shfl_sync(0xffffffffu, tiles, 31);
    }
  }
  __syncthreads();

  const int64_t total = tile_start[g.E];
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    int lo = 0, hi = g.E - 1;   // the expert of tile t: the last e with tile_start[e] <= t (skips empty experts)
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (tile_start[mid] <= t)
        lo = mid;
      else
        hi = mid - 1;
    }
    const int e = lo;
    const int64_t row0 = g.offsets[e], rows = g.offsets[e + 1] - row0;
    const int64_t local = t - tile_start[e];
    TileJob<T, kAKContig, kBKContig> job;
    job.m0 = local / n_tiles * Sh::BM, job.n0 = local % n_tiles * Sh::BN;
    job.M = kRowsInK ? g.M : rows, job.K = kRowsInK ? rows : g.K, job.N = g.N;
    job.A = static_cast<const T*>(g.a) + row0 * g.lda;
    job.B = static_cast<const T*>(g.b) + (kRowsInK ? row0 * g.ldb : e * g.b_expert_stride);

    __syncthreads();   // every warp is done with the previous tile's shared memory
    if constexpr (kTensorCores) {
      TensorCoreMath<kAKContig, kBKContig, /*kHalfRows=*/!kRowsInK> math;
      bf16_tile(g, job, reinterpret_cast<bf16*>(smem), math);
      // Output pairs (m, n), (m, n + 1) straight from the accumulators, in range only.
      if constexpr (kRowsInK) {
        float* C = static_cast<float*>(g.c) + e * g.c_expert_stride;
        math.finish(job.m0, job.n0, [&](int64_t m, int64_t n, float v0, float v1) {
          if (m >= job.M || n >= job.N) return;
          float* c = C + m * g.ldc + n;
          if (g.c_vec && n + 1 < job.N) {
            float2 old = *reinterpret_cast<float2*>(c);
            old.x += v0, old.y += v1;
            *reinterpret_cast<float2*>(c) = old;
          } else {
            c[0] += v0;
            if (n + 1 < job.N) c[1] += v1;
          }
        });
      } else {
        bf16* C = static_cast<bf16*>(g.c) + row0 * g.ldc;
        math.finish(job.m0, job.n0, [&](int64_t m, int64_t n, float v0, float v1) {
          if (m >= job.M || n >= job.N) return;
          bf16* c = C + m * g.ldc + n;
          if (g.c_vec && n + 1 < job.N) {
            *reinterpret_cast<uint32_t*>(c) = ptx::pack_bf16(v0, v1);
          } else {
            c[0] = from_float<bf16>(v0);
            if (n + 1 < job.N) c[1] = from_float<bf16>(v1);
          }
        });
      }
    } else {
      CudaCoreMath<kAKContig, kBKContig> math;
      fp32_tile(g, job, reinterpret_cast<float*>(smem), math);
      if constexpr (kRowsInK) {
        float* C = static_cast<float*>(g.c) + e * g.c_expert_stride;
        math.finish(job.m0, job.n0, job.M, job.N, [&](int64_t m, int64_t n, float v) { C[m * g.ldc + n] += v; });
      } else {
        float* C = static_cast<float*>(g.c) + row0 * g.ldc;
        math.finish(job.m0, job.n0, job.M, job.N, [&](int64_t m, int64_t n, float v) { C[m * g.ldc + n] = v; });
      }
    }
  }
}

}  // namespace
}  // namespace stepwise::cuda::grouped_gemm
