// CUDA MFA attention forward (see cuda/attention.h): flash-style online softmax. A CTA owns 64 consecutive query
// rows of one batch, where row = query * H + head (q's own layout), so one tile spans several positions x heads and
// every K/V tile it loads into shared memory serves all of them. bf16 with D in {64, 128, 256} and 16-byte aligned
// tensors runs the tensor-core kernel of attention_forward_mma.cuh; fp32 and other head dims run the CUDA-core kernel
// below (fp32 accumulation). lse saved in fp32.
#include <cmath>
#include <type_traits>

#include "cuda/attention.h"
#include "cuda/attention_forward_mma.cuh"
#include "cuda/attention_tile.cuh"

namespace stepwise::cuda {
namespace {

using namespace attention_tile;

constexpr int kRowsPerWarp = 8;
constexpr int kRowTile = kWarps * kRowsPerWarp;  // 64 query rows (positions x heads) per CTA

size_t forward_shared_bytes(int D) {
  return sizeof(float) * (static_cast<size_t>(kRowTile) * D + 2 * static_cast<size_t>(kKeyTile) * kv_stride(D));
}

// Grid (row tiles, B), kThreads threads. Warp w owns tile rows [w * 8, w * 8 + 8); lane j owns key j of each key tile
// for the scores and d = lane + 32 c of each row for the output. Row tiles are visited last-first (blockIdx.x = 0 gets
// the tile with the most keys) so the long causal tiles start early.
// Shared memory: q_s (64, D), k_s and v_s (32, kv_stride(D)), all float.
template <class T, int DC>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(AttentionParams<T, float> p, float scale) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(p.D);
  float* q_s = smem;
  float* k_s = q_s + kRowTile * D;
  float* v_s = k_s + kKeyTile * kv_stride(D);

  const int64_t H = p.H, Tq = p.Tq, Tk = p.Tk, b = blockIdx.y;
  const int64_t rows_total = Tq * H;                                    // rows of batch b
  const int64_t row0 = (gridDim.x - 1 - blockIdx.x) * int64_t{kRowTile};  // first row of this tile
  const int64_t row_end = min(row0 + kRowTile, rows_total);
  const int64_t key_end = min(Tk, p.q_offset + (row_end - 1) / H + 1);  // one past the last key any row may see
  const T* q_batch = p.q + b * rows_total * D;                         // (Tq * H, D)
  const T* k_batch = p.k + b * Tk * D;                                 // (Tk, D)
  const T* v_batch = p.v + b * Tk * D;                                 // (Tk, D)
  const int32_t* seg = p.seg ? p.seg + b * Tk : nullptr;               // (Tk)

  load_rows(q_s, q_batch, row0, rows_total, kRowTile, D);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t pos[kRowsPerWarp];
  int32_t row_seg[kRowsPerWarp];
  bool valid[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t row = row0 + warp * kRowsPerWarp + r;
    valid[r] = row < rows_total;
    pos[r] = p.q_offset + (valid[r] ? row / H : 0);
    row_seg[r] = seg && valid[r] ? seg[pos[r]] : 0;
  }
  RowsState<kRowsPerWarp, DC> st;
  st.init();

  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyTile) {
    const int count = static_cast<int>(key_end - j0 < kKeyTile ? key_end - j0 : kKeyTile);
    __syncthreads();  // the previous tile is consumed (and q_s is loaded, on the first pass)
    load_key_tile<T>(k_s, count, D, [&](int j) { return k_batch + (j0 + j) * D; });
    load_key_tile<T>(v_s, count, D, [&](int j) { return v_batch + (j0 + j) * D; });
    __syncthreads();
    const int64_t key = j0 + lane;
    const bool key_ok = lane < count;
    const int32_t key_seg = seg && key_ok ? seg[key] : 0;
    online_softmax_tile(st, q_s + warp * kRowsPerWarp * D, k_s, v_s, D, scale, [&](int r) {
      return valid[r] && key_ok && key <= pos[r] && (seg == nullptr || key_seg == row_seg[r]);
    });
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    if (!valid[r]) continue;
    const int64_t row = row0 + warp * kRowsPerWarp + r;
    const int64_t query = row / H, head = row - query * H;
    T* out_row = p.out + (b * rows_total + row) * D;
    const bool any = st.l[r] > 0.f;  // false only for a fully masked row: output 0, lse = -inf (as on the CPU)
    const float inv = any ? 1.f / st.l[r] : 0.f;
#pragma unroll
    for (int c = 0; c < DC; ++c) {
      const int d = lane + 32 * c;
      if (d < D) out_row[d] = from_float<T>(st.acc[r][c] * inv);
    }
    if (lane == 0) p.lse[(b * H + head) * Tq + query] = any ? st.m[r] + logf(st.l[r]) : -INFINITY;
  }
}

template <class T, int DC>
void launch_forward(const AttentionParams<T, float>& p, float scale, cudaStream_t stream) {
  const size_t bytes = forward_shared_bytes(static_cast<int>(p.D));
  prepare_launch(attention_forward_kernel<T, DC>, kThreads, bytes, "attention_forward");
  const dim3 grid(static_cast<unsigned>(ceil_div(p.Tq * p.H, kRowTile)), static_cast<unsigned>(p.B));
  attention_forward_kernel<T, DC><<<grid, kThreads, bytes, stream>>>(p, scale);
  STEPWISE_CUDA_LAUNCH_CHECK("attention_forward_kernel");
}

// Tensor-core path: Warps warps per CTA (16 query rows each), one CTA per (row tile, batch), heaviest tiles first.
template <int D, int Warps>
void launch_forward_mma(const AttentionParams<bf16, float>& p, float scale, cudaStream_t stream) {
  namespace mma = attention_forward_mma;
  const size_t bytes = mma::shared_bytes(D, Warps);
  prepare_launch(mma::attention_forward_mma_kernel<D, Warps>, Warps * 32, bytes, "attention_forward");
  const int64_t blocks = ceil_div(p.Tq * p.H, mma::rows_per_cta(Warps)) * p.B;
  if (blocks > 0x7fffffff) cpu::kernel_fail("attention_forward", "B * Tq * H = ", p.B * p.Tq * p.H, " is too large");
  mma::attention_forward_mma_kernel<D, Warps>
      <<<static_cast<unsigned>(blocks), Warps * 32, bytes, stream>>>(p, scale * mma::kLog2e);
  STEPWISE_CUDA_LAUNCH_CHECK("attention_forward_mma_kernel");
}

// Launches the tensor-core kernel when it takes the shape (bf16, D in {64, 128, 256}, q / k / v / out 16-byte aligned
// for cp.async and the paired stores); returns false otherwise.
bool try_forward_mma(const AttentionParams<bf16, float>& p, float scale, cudaStream_t stream) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  if (p.Tk > 0x7fffffff - attention_forward_mma::kKeyTile) return false;  // positions and keys are int there
  if (!aligned(p.q) || !aligned(p.k) || !aligned(p.v) || !aligned(p.out)) return false;
  switch (p.D) {
    case 64: return launch_forward_mma<64, 4>(p, scale, stream), true;
    case 128: return launch_forward_mma<128, 8>(p, scale, stream), true;
    case 256: return launch_forward_mma<256, 8>(p, scale, stream), true;
    default: return false;
  }
}

}  // namespace

template <class T>
void attention_forward(const AttentionParams<T, float>& p, cudaStream_t stream) {
  const char* op = "attention_forward";
  if (p.B < 0 || p.Tq < 0 || p.Tk < 0 || p.H < 0 || p.q_offset < 0)
    cpu::kernel_fail(op, "negative dimension (B = ", p.B, ", Tq = ", p.Tq, ", Tk = ", p.Tk, ", H = ", p.H,
                     ", q_offset = ", p.q_offset, ")");
  if (p.B == 0 || p.Tq == 0 || p.H == 0) return;
  require_head_dim(p.D, op);
  if (p.q_offset + p.Tq > p.Tk)
    cpu::kernel_fail(op, "q_offset + Tq = ", p.q_offset + p.Tq, " exceeds Tk = ", p.Tk);
  if (p.B > 65535) cpu::kernel_fail(op, "B = ", p.B, " exceeds the grid limit 65535");
  if (!(p.scale >= 0) || p.scale > 1e30) cpu::kernel_fail(op, "scale = ", p.scale, " must be finite and >= 0");
  cpu::require_pointer(p.q, op, "q");
  cpu::require_pointer(p.k, op, "k");
  cpu::require_pointer(p.v, op, "v");
  cpu::require_pointer(p.out, op, "out");
  cpu::require_pointer(p.lse, op, "lse");
  const float scale = static_cast<float>(p.scale > 0 ? p.scale : 1.0 / std::sqrt(static_cast<double>(p.D)));
  if constexpr (std::is_same_v<T, bf16>) {
    if (try_forward_mma(p, scale, stream)) return;
  }
  switch (head_chunks(p.D)) {
    case 1: return launch_forward<T, 1>(p, scale, stream);
    case 2: return launch_forward<T, 2>(p, scale, stream);
    case 4: return launch_forward<T, 4>(p, scale, stream);
    default: return launch_forward<T, 8>(p, scale, stream);
  }
}

template void attention_forward<float>(const AttentionParams<float, float>&, cudaStream_t);
template void attention_forward<bf16>(const AttentionParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
