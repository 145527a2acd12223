// The grouped GEMM behind cuda::grouped_linear_* (include from grouped_linear.cu only): one GEMM per expert, all in
// one launch, with each expert's rows read from the device offsets. A persistent grid (SMs x blocks per SM) walks
// the list of output tiles; each block derives that list itself from the offsets (tile_start per expert, a warp
// scan) and finds a tile's expert by binary search, so the host never learns the row counts. Empty experts have no
// tiles; tiles past an expert's rows or columns are masked (zero-filled loads, bounds-checked stores).
// Per tile: global -> registers -> shared (single buffer, the next k-step is fetched into registers while the current
// one is multiplied), then bf16 tensor cores (WMMA 16x16x16, fp32 accumulate) or fp32 CUDA-core FMAs.
#pragma once
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "cuda/common.cuh"

namespace stepwise::cuda::grouped_gemm {
namespace {

using namespace nvcuda;

// Block tiles per element type. bf16: 8 warps in a 2 (m) x 4 (n) grid, each warp 64 x 32 of the 128 x 128 tile as
// 4 x 2 WMMA fragments. fp32: 16 x 16 threads, thread (ty, tx) owning rows ty + 16i and columns tx + 16j (i, j < 4)
// of the 64 x 64 tile.
template <class T> struct TileShape;
template <> struct TileShape<bf16> { static constexpr int BM = 128, BN = 128, BK = 32; };
template <> struct TileShape<float> { static constexpr int BM = 64, BN = 64, BK = 16; };
constexpr int kThreads = 256;
template <class T> constexpr int kVec = 16 / static_cast<int>(sizeof(T));   // elements per 16-byte chunk
template <class T> constexpr int kPad = kVec<T>;   // shared-row padding: rows stay 16-byte aligned, banks staggered
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
};

// One 16-byte chunk (kVec elements) at base[outer*stride + inner ..]: zero outside [0, outer_valid) x [0, inner_valid);
// one vector load when `vec` and the chunk is whole, else element by element.
template <class T>
__device__ __forceinline__ uint4 load_chunk(const T* base, int64_t stride, int outer, int inner, int64_t outer_valid,
                                            int64_t inner_valid, bool vec) {
  using Bits = std::conditional_t<sizeof(T) == 2, unsigned short, unsigned>;
  union {
    uint4 chunk;
    Bits bits[kVec<T>];
  } u;
  u.chunk = make_uint4(0, 0, 0, 0);
  if (outer >= outer_valid) return u.chunk;
  const T* src = base + outer * stride + inner;
  if (vec && inner + kVec<T> <= inner_valid) return *reinterpret_cast<const uint4*>(src);
  const Bits* src_bits = reinterpret_cast<const Bits*>(src);
#pragma unroll
  for (int j = 0; j < kVec<T>; ++j)
    if (inner + j < inner_valid) u.bits[j] = src_bits[j];
  return u.chunk;
}

// A kOuter x kInner tile whose inner index is contiguous in global memory, moved global -> registers -> shared as
// 16-byte chunks. Thread t owns chunks t, t + kThreads, ...: consecutive threads read consecutive chunks of a row.
// In shared memory the tile keeps the same orientation, rows of kInner + kPad elements.
template <class T, int kOuter, int kInner>
struct TileLoader {
  static constexpr int kLd = kInner + kPad<T>;
  static constexpr int kChunksPerRow = kInner / kVec<T>;
  static constexpr int kChunks = kOuter * kChunksPerRow / kThreads;
  static_assert(kInner % kVec<T> == 0 && (kOuter * kChunksPerRow) % kThreads == 0, "tile not divisible by threads");
  uint4 regs[kChunks];

  __device__ __forceinline__ void load(const T* base, int64_t stride, int64_t outer_valid, int64_t inner_valid,
                                       bool vec) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = static_cast<int>(threadIdx.x) + i * kThreads;
      regs[i] = load_chunk(base, stride, chunk / kChunksPerRow, (chunk % kChunksPerRow) * kVec<T>, outer_valid,
                           inner_valid, vec);
    }
  }
  __device__ __forceinline__ void store(T* smem) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = static_cast<int>(threadIdx.x) + i * kThreads;
      *reinterpret_cast<uint4*>(smem + (chunk / kChunksPerRow) * kLd + (chunk % kChunksPerRow) * kVec<T>) = regs[i];
    }
  }
};

// Shared-memory layout of the A and B tiles: A is (BM x BK) as [m][k] when a_k_contig, else [k][m]; B is (BK x BN)
// as [n][k] when b_k_contig, else [k][n].
template <class T, bool kAKContig, bool kBKContig>
struct Tiles {
  using Shape = TileShape<T>;
  using ALoader = TileLoader<T, kAKContig ? Shape::BM : Shape::BK, kAKContig ? Shape::BK : Shape::BM>;
  using BLoader = TileLoader<T, kBKContig ? Shape::BN : Shape::BK, kBKContig ? Shape::BK : Shape::BN>;
  static constexpr int kLdA = ALoader::kLd, kLdB = BLoader::kLd;
  static constexpr int kAElems = (kAKContig ? Shape::BM : Shape::BK) * kLdA;
  static constexpr int kBElems = (kBKContig ? Shape::BN : Shape::BK) * kLdB;
  static constexpr int kStageBytes = (kThreads / 32) * 256 * static_cast<int>(sizeof(float));   // WMMA epilogue
  static constexpr int kBytes = std::max(static_cast<int>((kAElems + kBElems) * sizeof(T)), kStageBytes);
};

// bf16 tensor-core math for one block tile (see TileShape). Fragments are loaded straight from the shared tiles in
// whichever orientation they have (row_major / col_major WMMA layouts).
template <bool kAKContig, bool kBKContig>
struct TensorCoreMath {
  using Tl = Tiles<bf16, kAKContig, kBKContig>;
  static constexpr int kFragsM = 4, kFragsN = 2, kWarpM = 16 * kFragsM, kWarpN = 16 * kFragsN;
  using ALayout = std::conditional_t<kAKContig, wmma::row_major, wmma::col_major>;
  using BLayout = std::conditional_t<kBKContig, wmma::col_major, wmma::row_major>;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kFragsM][kFragsN];

  __device__ static int warp_m0() { return static_cast<int>(threadIdx.x / 32) / 4 * kWarpM; }
  __device__ static int warp_n0() { return static_cast<int>(threadIdx.x / 32) % 4 * kWarpN; }

  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < kFragsM; ++i)
#pragma unroll
      for (int j = 0; j < kFragsN; ++j) wmma::fill_fragment(acc[i][j], 0.f);
  }

  __device__ void step(const bf16* sA, const bf16* sB) {
    constexpr int kLdA = Tl::kLdA, kLdB = Tl::kLdB;
#pragma unroll
    for (int kk = 0; kk < TileShape<bf16>::BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, ALayout> a[kFragsM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> b[kFragsN];
#pragma unroll
      for (int i = 0; i < kFragsM; ++i) {
        const int m = warp_m0() + 16 * i;
        wmma::load_matrix_sync(a[i], kAKContig ? sA + m * kLdA + kk : sA + kk * kLdA + m, kLdA);
      }
#pragma unroll
      for (int j = 0; j < kFragsN; ++j) {
        const int n = warp_n0() + 16 * j;
        wmma::load_matrix_sync(b[j], kBKContig ? sB + n * kLdB + kk : sB + kk * kLdB + n, kLdB);
      }
#pragma unroll
      for (int i = 0; i < kFragsM; ++i)
#pragma unroll
        for (int j = 0; j < kFragsN; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }

  // Each warp stages one 16 x 16 fragment at a time in its own 1 KiB of `smem` (free once the main loop ended with
  // a barrier), then its lanes store the in-range elements through store(m, n, value).
  template <class Store>
  __device__ void finish(unsigned char* smem, int64_t m0, int64_t n0, int64_t M, int64_t N, const Store& store) {
    float* stage = reinterpret_cast<float*>(smem) + (threadIdx.x / 32) * 256;   // (16, 16)
    const int lane = static_cast<int>(threadIdx.x % 32);
#pragma unroll
    for (int i = 0; i < kFragsM; ++i)
#pragma unroll
      for (int j = 0; j < kFragsN; ++j) {
        wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
        for (int t = lane; t < 256; t += 32) {
          const int64_t m = m0 + warp_m0() + 16 * i + t / 16, n = n0 + warp_n0() + 16 * j + t % 16;
          if (m < M && n < N) store(m, n, stage[t]);
        }
        __syncwarp();   // the stage is rewritten by the next fragment
      }
  }
};

// fp32 CUDA-core math for one block tile (see TileShape): each k-step, every thread multiplies 4 A values by 4 B
// values read from the shared tiles, in ascending k.
template <bool kAKContig, bool kBKContig>
struct CudaCoreMath {
  using Tl = Tiles<float, kAKContig, kBKContig>;
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
    for (int kk = 0; kk < TileShape<float>::BK; ++kk) {
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
  __device__ void finish(unsigned char*, int64_t m0, int64_t n0, int64_t M, int64_t N, const Store& store) {
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

template <class T, bool kAKContig, bool kBKContig>
using Math = std::conditional_t<std::is_same_v<T, bf16>, TensorCoreMath<kAKContig, kBKContig>,
                                CudaCoreMath<kAKContig, kBKContig>>;

// The persistent kernel: kThreads threads per block; block b takes tiles b, b + gridDim.x, ... of the tile list
// ordered by expert, then row tile, then column tile (consecutive blocks share A rows; an expert's B stays in L2).
template <class T, bool kRowsInK, bool kAKContig, bool kBKContig>
__global__ void __launch_bounds__(kThreads, 2) grouped_gemm_kernel(Problem g) {
  using Shape = TileShape<T>;
  using Tl = Tiles<T, kAKContig, kBKContig>;
  extern __shared__ int64_t tile_start[];   // (E + 1): first tile of each expert; tile_start[E] = all tiles
  __shared__ __align__(128) unsigned char smem[Tl::kBytes];
  T* sA = reinterpret_cast<T*>(smem);
  T* sB = sA + Tl::kAElems;
  const int64_t n_tiles = ceil_div(g.N, Shape::BN);

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
        tiles = rows > 0 ? ceil_div(m_rows, Shape::BM) * n_tiles : 0;
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
    const int64_t m0 = local / n_tiles * Shape::BM, n0 = local % n_tiles * Shape::BN;
    const int64_t M = kRowsInK ? g.M : rows, K = kRowsInK ? rows : g.K, N = g.N;
    const T* A = static_cast<const T*>(g.a) + row0 * g.lda;
    const T* B = static_cast<const T*>(g.b) + (kRowsInK ? row0 * g.ldb : e * g.b_expert_stride);

    typename Tl::ALoader a_loader;
    typename Tl::BLoader b_loader;
    const auto fetch = [&](int64_t k0) {   // the k-step at k0 into registers
      if constexpr (kAKContig)
        a_loader.load(A + m0 * g.lda + k0, g.lda, M - m0, K - k0, g.a_vec);
      else
        a_loader.load(A + k0 * g.lda + m0, g.lda, K - k0, M - m0, g.a_vec);
      if constexpr (kBKContig)
        b_loader.load(B + n0 * g.ldb + k0, g.ldb, N - n0, K - k0, g.b_vec);
      else
        b_loader.load(B + k0 * g.ldb + n0, g.ldb, K - k0, N - n0, g.b_vec);
    };

    __syncthreads();   // every warp is done with the previous tile's shared memory (tiles and epilogue stage)
    fetch(0);
    a_loader.store(sA);
    b_loader.store(sB);
    __syncthreads();
    Math<T, kAKContig, kBKContig> math;
    math.zero();
    for (int64_t k0 = 0; k0 < K; k0 += Shape::BK) {
      const bool more = k0 + Shape::BK < K;
      if (more) fetch(k0 + Shape::BK);   // global loads in flight during the multiply
      math.step(sA, sB);
      __syncthreads();                   // all warps are done reading this k-step's tiles
      if (more) {
        a_loader.store(sA);
        b_loader.store(sB);
        __syncthreads();
      }
    }

    if constexpr (kRowsInK) {
      float* C = static_cast<float*>(g.c) + e * g.c_expert_stride;
      math.finish(smem, m0, n0, M, N, [&](int64_t m, int64_t n, float v) { C[m * g.ldc + n] += v; });
    } else {
      T* C = static_cast<T*>(g.c) + row0 * g.ldc;
      math.finish(smem, m0, n0, M, N, [&](int64_t m, int64_t n, float v) { C[m * g.ldc + n] = from_float<T>(v); });
    }
  }
}

// Launches the persistent grid: as many blocks as fit on the device at once (no more are useful).
template <class T, bool kRowsInK, bool kAKContig, bool kBKContig>
void launch(const Problem& g, cudaStream_t stream) {
  const auto kernel = grouped_gemm_kernel<T, kRowsInK, kAKContig, kBKContig>;
  const size_t schedule_bytes = sizeof(int64_t) * static_cast<size_t>(g.E + 1);
  int device = 0, sms = 0, per_sm = 0;
  STEPWISE_CUDA_CHECK(cudaGetDevice(&device));
  STEPWISE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  STEPWISE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, schedule_bytes));
  kernel<<<sms * std::max(per_sm, 1), kThreads, schedule_bytes, stream>>>(g);
  STEPWISE_CUDA_LAUNCH_CHECK("grouped_gemm_kernel");
}

}  // namespace
}  // namespace stepwise::cuda::grouped_gemm
