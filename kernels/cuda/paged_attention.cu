// CUDA paged MFA attention for decoding (see cuda/paged_attention.h). bf16 at D = 64, 128, 256 runs the tensor-core
// kernel of paged_attention_mma.cuh; fp32 and other head dims the CUDA-core kernel below. Split-K: CTA (s, y) reads
// only KV blocks [y * blocks_per_split, (y + 1) * blocks_per_split) of sequence s, once, for all query rows x heads of
// s, and writes partial (max, sum, unnormalised output) to a scratch; a second kernel (paged_attention_mma.cuh)
// combines the splits. Context lengths are read from pos0 / q_start on the device, so nothing depends on them on the
// host (no re-planning per step).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/attention_tile.cuh"
#include "cuda/paged_attention.h"
#include "cuda/paged_attention_mma.cuh"

namespace stepwise::cuda {
namespace {

using namespace attention_tile;

constexpr int kRowsPerWarp = 8;
constexpr int kVectorTile = kWarps * kRowsPerWarp;  // 64 query vectors (row x head) per pass of a CTA
constexpr int64_t kMinSplitKeys = 256;              // a split covers at least this many keys

static_assert(kVectorTile == kPagedVectorTile, "one combine format for both kernels");

// Grid (S, splits), kThreads threads. Warp w owns vectors [w * 8, w * 8 + 8) of each 64-vector pass (vector
// v = row * H + head of the sequence, q's own layout); lane j owns key j of each 32-key tile, gathered through the
// block table into shared memory. Shared memory: q_s (64, D), k_s and v_s (32, kv_stride(D)), float.
// part_ml (S, splits, slots) = (max, sum); part_acc (S, splits, slots, D) = sum of exp(score - max) v.
template <class T, int DC>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(PagedAttentionParams<T> p, float scale,
                                                                   int64_t blocks_per_split, float2* part_ml,
                                                                   float* part_acc) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(p.D);
  float* q_s = smem;
  float* k_s = q_s + kVectorTile * D;
  float* v_s = k_s + kKeyTile * kv_stride(D);

  const int64_t s = blockIdx.x, y = blockIdx.y, splits = gridDim.y, H = p.H, bs = p.block_size;
  const int64_t first_row = p.q_start[s], rows = p.q_start[s + 1] - first_row, pos0 = p.pos0[s];
  if (rows <= 0 || pos0 < 0) return;
  const int64_t keys = pos0 + rows, vectors = rows * H;
  const bool split = paged_split_mode(rows, H);
  const int64_t keys_per_split = blocks_per_split * bs;
  int64_t key_begin = 0, key_end = keys, vec_first = y * kVectorTile, vec_step = splits * kVectorTile;
  if (split) {
    key_begin = y * keys_per_split;
    key_end = min(keys, key_begin + keys_per_split);
    vec_first = 0, vec_step = kVectorTile;
    if (key_begin >= keys) return;  // the combine kernel knows this split is unused
  }
  const T* q_seq = p.q + first_row * H * D;  // (vectors, D)
  const int32_t* table = p.block_table + s * p.max_blocks;
  auto key_row = [&](const T* pool, int64_t key) -> const T* {
    const int64_t b = key / bs;
    const int32_t blk = b < p.max_blocks ? table[b] : -1;
    return blk >= 0 && blk < p.num_blocks ? pool + (blk * bs + key % bs) * D : nullptr;
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t v0 = vec_first; v0 < vectors; v0 += vec_step) {
    __syncthreads();  // the previous pass is done with q_s, k_s, v_s
    load_rows(q_s, q_seq, v0, vectors, kVectorTile, D);
    const int64_t last_vec = min(v0 + kVectorTile, vectors) - 1;
    const int64_t tile_end = min(key_end, pos0 + last_vec / H + 1);  // no key past the last row's position
    int64_t pos[kRowsPerWarp];
    bool valid[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t vec = v0 + warp * kRowsPerWarp + r;
      valid[r] = vec < vectors;
      pos[r] = pos0 + vec / H;
    }
    RowsState<kRowsPerWarp, DC> st;
    st.init();
    for (int64_t j0 = key_begin; j0 < tile_end; j0 += kKeyTile) {
      const int count = static_cast<int>(tile_end - j0 < kKeyTile ? tile_end - j0 : kKeyTile);
      __syncthreads();  // previous key tile consumed; q_s loaded on the first pass
      load_key_tile<T>(k_s, count, D, [&](int j) { return key_row(p.k_pool, j0 + j); });
      load_key_tile<T>(v_s, count, D, [&](int j) { return key_row(p.v_pool, j0 + j); });
      __syncthreads();
      const int64_t key = j0 + lane;
      const bool key_ok = lane < count;
      online_softmax_tile(st, q_s + warp * kRowsPerWarp * D, k_s, v_s, D, scale,
                          [&](int r) { return valid[r] && key_ok && key <= pos[r]; });
    }

#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (!valid[r]) continue;
      const int64_t vec = v0 + warp * kRowsPerWarp + r;
      if (split) {
        const int64_t slot = (s * splits + y) * paged_slots_per_split(H) + vec;
        if (lane == 0) part_ml[slot] = make_float2(st.m[r], st.l[r]);
#pragma unroll
        for (int c = 0; c < DC; ++c) {
          const int d = lane + 32 * c;
          if (d < D) part_acc[slot * D + d] = st.acc[r][c];
        }
      } else {
        const float inv = st.l[r] > 0.f ? 1.f / st.l[r] : 0.f;
        T* out_row = p.out + (first_row * H + vec) * D;
#pragma unroll
        for (int c = 0; c < DC; ++c) {
          const int d = lane + 32 * c;
          if (d < D) out_row[d] = from_float<T>(st.acc[r][c] * inv);
        }
      }
    }
  }
}

template <class T, int DC>
void launch_paged(const PagedAttentionParams<T>& p, float scale, cudaStream_t stream) {
  // Splits: about two CTAs per SM over all sequences, each split at least kMinSplitKeys keys. Depends only on S and
  // max_blocks (fixed by the cache), never on the current context lengths.
  const int64_t wanted_splits = std::max<int64_t>(1, ceil_div(2 * int64_t{multiprocessor_count()}, p.S));
  const int64_t blocks_per_split =
      std::max({int64_t{1}, ceil_div(kMinSplitKeys, p.block_size), ceil_div(p.max_blocks, wanted_splits)});
  const int64_t splits = std::max<int64_t>(1, ceil_div(p.max_blocks, blocks_per_split));

  // Scratch from the stream-ordered allocator: (S, splits, slots) float2 + (S, splits, slots, D) float.
  const int64_t slots = p.S * splits * paged_slots_per_split(p.H);
  float2* part_ml = nullptr;
  float* part_acc = nullptr;
  STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&part_ml), sizeof(float2) * slots, stream));
  STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&part_acc), sizeof(float) * slots * p.D, stream));

  const int D = static_cast<int>(p.D);
  const size_t bytes = sizeof(float) * (size_t{kVectorTile} * D + 2 * size_t{kKeyTile} * kv_stride(D));
  prepare_launch(paged_attention_kernel<T, DC>, kThreads, bytes, "paged_attention_forward");
  const dim3 grid(static_cast<unsigned>(p.S), static_cast<unsigned>(splits));
  paged_attention_kernel<T, DC><<<grid, kThreads, bytes, stream>>>(p, scale, blocks_per_split, part_ml, part_acc);
  STEPWISE_CUDA_LAUNCH_CHECK("paged_attention_kernel");
  paged_attention_combine_kernel<T><<<static_cast<unsigned>(p.S), kThreads, 0, stream>>>(p, blocks_per_split, splits,
                                                                                         part_ml, part_acc);
  STEPWISE_CUDA_LAUNCH_CHECK("paged_attention_combine_kernel");
  STEPWISE_CUDA_CHECK(cudaFreeAsync(part_acc, stream));
  STEPWISE_CUDA_CHECK(cudaFreeAsync(part_ml, stream));
}

// Blocks per split of the tensor-core kernel: splits of at least kMinSplitKeys keys, as many as minimise the modelled
// time: waves of CTAs (S x splits, `resident` at a time) x bytes per CTA (its K and V, its Q, and with more than one
// split its partials written and read back by the combine). Depends only on S and max_blocks, never on the current
// context lengths.
int64_t mma_blocks_per_split(const PagedAttentionParams<bf16>& p, int64_t resident) {
  const int64_t min_blocks = std::max<int64_t>(1, ceil_div(kMinSplitKeys, p.block_size));
  const int64_t most = std::min<int64_t>(std::max<int64_t>(1, ceil_div(p.max_blocks, min_blocks)), 4 * resident);
  const double kv_per_block = 2.0 * 2 * p.block_size * p.D, q_bytes = 2.0 * p.H * p.D;
  const double partial_bytes = 2.0 * (4 * p.D + 8) * static_cast<double>(paged_slots_per_split(p.H));
  auto blocks_for = [&](int64_t wanted) { return std::max(min_blocks, ceil_div(p.max_blocks, wanted)); };
  int64_t best_blocks = blocks_for(1);
  double best_cost = INFINITY;
  for (int64_t w = 1; w <= most; ++w) {
    const int64_t blocks = blocks_for(w), splits = std::max<int64_t>(1, ceil_div(p.max_blocks, blocks));
    const double per_cta = kv_per_block * blocks + q_bytes + (splits > 1 ? partial_bytes : 0.0);
    const double cost = static_cast<double>(ceil_div(p.S * splits, resident)) * per_cta;
    if (cost < best_cost * (1 - 1e-9)) best_cost = cost, best_blocks = blocks;
  }
  return best_blocks;
}

template <int D>
void launch_paged_mma(const PagedAttentionParams<bf16>& p, float scale, cudaStream_t stream) {
  constexpr size_t bytes = paged_mma::shared_bytes<D>();
  auto* kernel = paged_mma::paged_attention_mma_kernel<D>;
  const int per_sm = prepare_launch(kernel, paged_mma::kThreads, bytes, "paged_attention_forward");
  const int64_t resident = int64_t{per_sm} * multiprocessor_count();
  const int64_t blocks_per_split = mma_blocks_per_split(p, resident);
  const int64_t splits = std::max<int64_t>(1, ceil_div(p.max_blocks, blocks_per_split));
  if (splits > 65535) cpu::kernel_fail("paged_attention_forward", splits, " splits exceed the grid limit");

  // One split: the kernel writes `out` itself. Else scratch (S, splits, slots) float2 + (S, splits, slots, D) float
  // from the stream-ordered allocator, combined by the CUDA-core path's combine kernel.
  float2* part_ml = nullptr;
  float* part_acc = nullptr;
  if (splits > 1) {
    const int64_t slots = p.S * splits * paged_slots_per_split(p.H);
    STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&part_ml), sizeof(float2) * slots, stream));
    STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&part_acc), sizeof(float) * slots * D, stream));
  }
  const dim3 grid(static_cast<unsigned>(p.S), static_cast<unsigned>(splits));
  kernel<<<grid, paged_mma::kThreads, bytes, stream>>>(p, scale * paged_mma::kLog2e, blocks_per_split, part_ml,
                                                        part_acc);
  STEPWISE_CUDA_LAUNCH_CHECK("paged_attention_mma_kernel");
  if (splits > 1) {
    paged_attention_combine_kernel<bf16><<<static_cast<unsigned>(p.S), kThreads, 0, stream>>>(
        p, blocks_per_split, splits, part_ml, part_acc);
    STEPWISE_CUDA_LAUNCH_CHECK("paged_attention_combine_kernel");
    STEPWISE_CUDA_CHECK(cudaFreeAsync(part_acc, stream));
    STEPWISE_CUDA_CHECK(cudaFreeAsync(part_ml, stream));
  }
}

// The tensor-core kernel takes bf16 at D = 64, 128, 256 with q, k_pool and v_pool 16-byte aligned (cp.async) and
// block tables of fewer than 2^31 keys (32-bit key arithmetic).
template <class T>
bool mma_applies(const PagedAttentionParams<T>& p) {
  if constexpr (!std::is_same_v<T, bf16>) {
    return false;
  } else {
    auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
    return (p.D == 64 || p.D == 128 || p.D == 256) && aligned(p.q) && aligned(p.k_pool) && aligned(p.v_pool) &&
           p.max_blocks * p.block_size < (int64_t{1} << 31);
  }
}

}  // namespace

// Device-side faults cannot throw: a block id outside [0, num_blocks), or a context longer than max_blocks blocks,
// makes the rows that need it come out NaN; a sequence with a negative row count or position is skipped (its rows
// are not written).
template <class T>
void paged_attention_forward(const PagedAttentionParams<T>& p, cudaStream_t stream) {
  const char* op = "paged_attention_forward";
  if (p.S < 0 || p.max_blocks < 0 || p.num_blocks < 0 || p.H < 0)
    cpu::kernel_fail(op, "negative dimension (S = ", p.S, ", max_blocks = ", p.max_blocks,
                     ", num_blocks = ", p.num_blocks, ", H = ", p.H, ")");
  if (p.S == 0 || p.H == 0) return;
  cpu::require_positive(p.block_size, op, "block_size");
  require_head_dim(p.D, op);
  if (p.S > int64_t{0x7fffffff}) cpu::kernel_fail(op, "S = ", p.S, " exceeds the grid limit");
  if (!(p.scale >= 0) || p.scale > 1e30) cpu::kernel_fail(op, "scale = ", p.scale, " must be finite and >= 0");
  cpu::require_pointer(p.out, op, "out");
  cpu::require_pointer(p.q, op, "q");
  cpu::require_pointer(p.k_pool, op, "k_pool");
  cpu::require_pointer(p.v_pool, op, "v_pool");
  cpu::require_pointer(p.block_table, op, "block_table");
  cpu::require_pointer(p.q_start, op, "q_start");
  cpu::require_pointer(p.pos0, op, "pos0");
  const float scale = static_cast<float>(p.scale > 0 ? p.scale : 1.0 / std::sqrt(static_cast<double>(p.D)));
  if constexpr (std::is_same_v<T, bf16>) {
    if (mma_applies(p)) {
      switch (p.D) {
        case 64: return launch_paged_mma<64>(p, scale, stream);
        case 128: return launch_paged_mma<128>(p, scale, stream);
        default: return launch_paged_mma<256>(p, scale, stream);
      }
    }
  }
  switch (head_chunks(p.D)) {
    case 1: return launch_paged<T, 1>(p, scale, stream);
    case 2: return launch_paged<T, 2>(p, scale, stream);
    case 4: return launch_paged<T, 4>(p, scale, stream);
    default: return launch_paged<T, 8>(p, scale, stream);
  }
}

template void paged_attention_forward<float>(const PagedAttentionParams<float>&, cudaStream_t);
template void paged_attention_forward<bf16>(const PagedAttentionParams<bf16>&, cudaStream_t);

}  // namespace stepwise::cuda
