// CUDA MFA attention backward (see cuda/attention.h), flash-style: probabilities are recomputed from the saved lse.
// Three kernels, no atomics (deterministic): delta = rowsum(dO * O) per query row; dQ with a CTA per tile of query
// rows looping over key tiles; dK/dV with a CTA per key tile looping over every query row (all positions x heads,
// since all heads share the one K/V head). bf16 with D in {64, 128, 256} runs the tensor-core kernels of
// attention_backward_mma.cuh (the dK/dV work split in chunks over the causal triangle, partials reduced in order);
// fp32 and other head dims run the CUDA-core kernels below (fp32 accumulation).
#include <algorithm>
#include <cmath>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "cuda/attention.h"
#include "cuda/attention_backward_mma.cuh"
#include "cuda/attention_tile.cuh"

namespace stepwise::cuda {
namespace {

using namespace attention_tile;

constexpr int kRowsPerWarp = 4;
constexpr int kRowTile = kWarps * kRowsPerWarp;  // 32 query rows (positions x heads) per tile

// Per-row facts shared by both gradient kernels: whether the flattened row (query * H + head) exists, its position,
// segment, lse and delta.
struct RowInfo {
  bool valid = false;
  int64_t pos = 0;
  int32_t seg = 0;
  float lse = -INFINITY, delta = 0.f;
};

template <class T>
__device__ RowInfo row_info(const AttentionParams<T, float>& p, const float* delta, int64_t b, int64_t row) {
  RowInfo ri;
  const int64_t rows_total = p.Tq * p.H;
  ri.valid = row < rows_total;
  if (!ri.valid) return ri;
  const int64_t query = row / p.H, head = row - query * p.H;
  ri.pos = p.q_offset + query;
  ri.seg = p.seg ? p.seg[b * p.Tk + ri.pos] : 0;
  ri.lse = p.lse[(b * p.H + head) * p.Tq + query];
  ri.delta = delta[b * rows_total + row];
  return ri;
}

// Grid ceil(B * Tq * H / 8), kThreads threads: warp w of block x owns flattened row x * 8 + w of (B * Tq * H) and
// writes delta[row] = sum_d dout[row, d] * out[row, d] in fp32.
template <class T>
__global__ void __launch_bounds__(kThreads) attention_delta_kernel(const T* dout, const T* out, float* delta,
                                                                   int64_t rows, int D) {
  const int64_t row = int64_t{blockIdx.x} * kWarps + threadIdx.x / 32;
  if (row >= rows) return;  // whole warp leaves together
  const int lane = threadIdx.x % 32;
  float acc = 0.f;
  for (int d = lane; d < D; d += 32) acc += to_float(dout[row * D + d]) * to_float(out[row * D + d]);
  acc = warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

// Grid (row tiles of 32, B), kThreads threads. Warp w owns tile rows [w * 4, w * 4 + 4). Per key tile, lane j computes
// s = scale q.k_j and dp = do.v_j for its rows, ds = exp(s - lse) (dp - delta) (0 where masked), then every lane adds
// sum_j ds_j k_j[d] for its d = lane + 32 c. dq = scale * that sum.
// Shared memory: q_s, do_s (32, D); k_s, v_s (32, kv_stride(D)); all float.
template <class T, int DC>
__global__ void __launch_bounds__(kThreads) attention_dq_kernel(AttentionParams<T, float> p, const float* delta,
                                                                float scale) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(p.D), stride = kv_stride(D);
  float* q_s = smem;
  float* do_s = q_s + kRowTile * D;
  float* k_s = do_s + kRowTile * D;
  float* v_s = k_s + kKeyTile * stride;

  const int64_t H = p.H, Tk = p.Tk, b = blockIdx.y;
  const int64_t rows_total = p.Tq * H;
  const int64_t row0 = (gridDim.x - 1 - blockIdx.x) * int64_t{kRowTile};
  const int64_t row_end = min(row0 + kRowTile, rows_total);
  const int64_t key_end = min(Tk, p.q_offset + (row_end - 1) / H + 1);
  const T* k_batch = p.k + b * Tk * D;  // (Tk, D)
  const T* v_batch = p.v + b * Tk * D;  // (Tk, D)
  const int32_t* seg = p.seg ? p.seg + b * Tk : nullptr;

  load_rows(q_s, p.q + b * rows_total * D, row0, rows_total, kRowTile, D);
  load_rows(do_s, p.dout + b * rows_total * D, row0, rows_total, kRowTile, D);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float* q_rows = q_s + warp * kRowsPerWarp * D;   // (4, D)
  const float* do_rows = do_s + warp * kRowsPerWarp * D; // (4, D)
  RowInfo ri[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) ri[r] = row_info(p, delta, b, row0 + warp * kRowsPerWarp + r);
  float acc[kRowsPerWarp][DC];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int c = 0; c < DC; ++c) acc[r][c] = 0.f;

  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyTile) {
    const int count = static_cast<int>(key_end - j0 < kKeyTile ? key_end - j0 : kKeyTile);
    __syncthreads();  // previous tile consumed (q_s / do_s loaded, on the first pass)
    load_key_tile<T>(k_s, count, D, [&](int j) { return k_batch + (j0 + j) * D; });
    load_key_tile<T>(v_s, count, D, [&](int j) { return v_batch + (j0 + j) * D; });
    __syncthreads();

    float s[kRowsPerWarp], dp[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.f, dp[r] = 0.f;
    for (int d = 0; d < D; ++d) {
      const float kv = k_s[lane * stride + d], vv = v_s[lane * stride + d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        s[r] += q_rows[r * D + d] * kv;
        dp[r] += do_rows[r * D + d] * vv;
      }
    }
    const int64_t key = j0 + lane;
    const bool key_ok = lane < count;
    const int32_t key_seg = seg && key_ok ? seg[key] : 0;
    float ds[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const bool vis = ri[r].valid && key_ok && key <= ri[r].pos && (seg == nullptr || key_seg == ri[r].seg) &&
                       ri[r].lse != -INFINITY;
      ds[r] = vis ? expf(s[r] * scale - ri[r].lse) * (dp[r] - ri[r].delta) : 0.f;
    }
    for (int j = 0; j < kKeyTile; ++j) {
      float kj[DC];
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int d = lane + 32 * c;
        kj[c] = d < D ? k_s[j * stride + d] : 0.f;
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float dsj = __shfl_sync(kFullMask, ds[r], j);
#pragma unroll
        for (int c = 0; c < DC; ++c) acc[r][c] += dsj * kj[c];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    if (!ri[r].valid) continue;
    T* dq_row = p.dq + (b * rows_total + row0 + warp * kRowsPerWarp + r) * D;
#pragma unroll
    for (int c = 0; c < DC; ++c) {
      const int d = lane + 32 * c;
      if (d < D) dq_row[d] = from_float<T>(scale * acc[r][c]);
    }
  }
}

// Grid (key tiles of 32, B), kThreads threads. The CTA owns keys [j0, j0 + 32) of batch b and loops over every query
// row (query * H + head) that may see them (queries at positions >= j0), 32 rows at a time:
//   phase A: warp w, lane j: for rows w * 4 .. w * 4 + 3, P = exp(scale q.k_j - lse), dS = P (do.v_j - delta), into
//            p_s / ds_s (32 rows, 32 keys);
//   phase B: thread t owns key t / 8 and d = t % 8 + 8 c: dv += P do, dk += dS q over the 32 rows.
// dk = scale * sum dS q. Shared memory: k_s, v_s (32, kv_stride(D)); q_s, do_s (32, D); p_s, ds_s (32, 32); float.
template <class T, int DC>
__global__ void __launch_bounds__(kThreads) attention_dkdv_kernel(AttentionParams<T, float> p, const float* delta,
                                                                  float scale) {
  constexpr int kPerThread = 4 * DC;  // d values per thread: D <= 32 * DC = 8 * kPerThread
  extern __shared__ float smem[];
  const int D = static_cast<int>(p.D), stride = kv_stride(D);
  float* k_s = smem;
  float* v_s = k_s + kKeyTile * stride;
  float* q_s = v_s + kKeyTile * stride;
  float* do_s = q_s + kRowTile * D;
  float* p_s = do_s + kRowTile * D;
  float* ds_s = p_s + kRowTile * kKeyTile;

  const int64_t H = p.H, Tk = p.Tk, b = blockIdx.y;
  const int64_t rows_total = p.Tq * H;
  const int64_t j0 = int64_t{blockIdx.x} * kKeyTile;
  const int count = static_cast<int>(Tk - j0 < kKeyTile ? Tk - j0 : kKeyTile);
  const int64_t first_query = j0 > p.q_offset ? j0 - p.q_offset : 0;  // earlier queries see none of these keys
  const int32_t* seg = p.seg ? p.seg + b * Tk : nullptr;

  load_key_tile<T>(k_s, count, D, [&](int j) { return p.k + (b * Tk + j0 + j) * D; });
  load_key_tile<T>(v_s, count, D, [&](int j) { return p.v + (b * Tk + j0 + j) * D; });

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t key = j0 + lane;
  const bool key_ok = lane < count;
  const int32_t key_seg = seg && key_ok ? seg[key] : 0;
  const int my_key = threadIdx.x / 8, my_d0 = threadIdx.x % 8;  // phase B ownership
  float dk_acc[kPerThread], dv_acc[kPerThread];
#pragma unroll
  for (int c = 0; c < kPerThread; ++c) dk_acc[c] = 0.f, dv_acc[c] = 0.f;

  for (int64_t row0 = first_query * H; row0 < rows_total; row0 += kRowTile) {
    __syncthreads();  // phase B of the previous rows is done with q_s / do_s / p_s / ds_s
    load_rows(q_s, p.q + b * rows_total * D, row0, rows_total, kRowTile, D);
    load_rows(do_s, p.dout + b * rows_total * D, row0, rows_total, kRowTile, D);
    __syncthreads();

    // phase A
    float s[kRowsPerWarp], dp[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.f, dp[r] = 0.f;
    const float* q_rows = q_s + warp * kRowsPerWarp * D;
    const float* do_rows = do_s + warp * kRowsPerWarp * D;
    for (int d = 0; d < D; ++d) {
      const float kv = k_s[lane * stride + d], vv = v_s[lane * stride + d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        s[r] += q_rows[r * D + d] * kv;
        dp[r] += do_rows[r * D + d] * vv;
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int local = warp * kRowsPerWarp + r;
      const RowInfo ri = row_info(p, delta, b, row0 + local);
      const bool vis = ri.valid && key_ok && key <= ri.pos && (seg == nullptr || key_seg == ri.seg) &&
                       ri.lse != -INFINITY;
      const float prob = vis ? expf(s[r] * scale - ri.lse) : 0.f;
      p_s[local * kKeyTile + lane] = prob;
      ds_s[local * kKeyTile + lane] = vis ? prob * (dp[r] - ri.delta) : 0.f;
    }
    __syncthreads();

    // phase B
    for (int local = 0; local < kRowTile; ++local) {
      const float prob = p_s[local * kKeyTile + my_key], dsv = ds_s[local * kKeyTile + my_key];
      const float* q_row = q_s + local * D;
      const float* do_row = do_s + local * D;
#pragma unroll
      for (int c = 0; c < kPerThread; ++c) {
        const int d = my_d0 + 8 * c;
        if (d < D) {
          dv_acc[c] += prob * do_row[d];
          dk_acc[c] += dsv * q_row[d];
        }
      }
    }
  }

  if (my_key < count) {
    T* dk_row = p.dk + (b * Tk + j0 + my_key) * D;
    T* dv_row = p.dv + (b * Tk + j0 + my_key) * D;
#pragma unroll
    for (int c = 0; c < kPerThread; ++c) {
      const int d = my_d0 + 8 * c;
      if (d < D) {
        dk_row[d] = from_float<T>(scale * dk_acc[c]);
        dv_row[d] = from_float<T>(dv_acc[c]);
      }
    }
  }
}

template <class T, int DC>
void launch_backward(const AttentionParams<T, float>& p, const float* delta, float scale, cudaStream_t stream) {
  const int D = static_cast<int>(p.D);
  const size_t dq_bytes = sizeof(float) * (2 * size_t{kRowTile} * D + 2 * size_t{kKeyTile} * kv_stride(D));
  if (p.Tq * p.H > 0) {
    prepare_launch(attention_dq_kernel<T, DC>, kThreads, dq_bytes, "attention_backward");
    const dim3 dq_grid(static_cast<unsigned>(ceil_div(p.Tq * p.H, kRowTile)), static_cast<unsigned>(p.B));
    attention_dq_kernel<T, DC><<<dq_grid, kThreads, dq_bytes, stream>>>(p, delta, scale);
    STEPWISE_CUDA_LAUNCH_CHECK("attention_dq_kernel");
  }

  const size_t dkdv_bytes = sizeof(float) * (2 * size_t{kKeyTile} * kv_stride(D) + 2 * size_t{kRowTile} * D +
                                             2 * size_t{kRowTile} * kKeyTile);
  prepare_launch(attention_dkdv_kernel<T, DC>, kThreads, dkdv_bytes, "attention_backward");
  const dim3 dkdv_grid(static_cast<unsigned>(ceil_div(p.Tk, kKeyTile)), static_cast<unsigned>(p.B));
  attention_dkdv_kernel<T, DC><<<dkdv_grid, kThreads, dkdv_bytes, stream>>>(p, delta, scale);
  STEPWISE_CUDA_LAUNCH_CHECK("attention_dkdv_kernel");
}

// The tensor-core path (bf16, D in {64, 128, 256}): delta = rowsum(dO * O) into `delta` (B * Tq * H floats), the dQ
// kernel, then the dK/dV kernel over chunks of the row tiles (fp32 partials in stream-ordered scratch and an ordered
// reduction when there is more than one chunk).
template <int D>
void launch_backward_mma(const AttentionParams<bf16, float>& p, float* delta, float scale, cudaStream_t stream) {
  namespace mma = attention_backward_mma;
  const char* op = "attention_backward";
  const int64_t R = p.Tq * p.H;
  if (R > 0) {
    const int64_t rows = p.B * R;
    mma::attention_delta_mma_kernel<D><<<static_cast<unsigned>(ceil_div(rows * (D / 8), 256)), 256, 0, stream>>>(
        p.dout, p.out, delta, rows);
    STEPWISE_CUDA_LAUNCH_CHECK("attention_delta_mma_kernel");
    constexpr size_t bytes = mma::dq_shared_bytes<D>();
    prepare_launch(mma::attention_dq_mma_kernel<D>, mma::kThreads, bytes, op);
    const dim3 grid(static_cast<unsigned>(ceil_div(R, mma::kTile)), static_cast<unsigned>(p.B));
    mma::attention_dq_mma_kernel<D><<<grid, mma::kThreads, bytes, stream>>>(p, delta, scale);
    STEPWISE_CUDA_LAUNCH_CHECK("attention_dq_mma_kernel");
  }

  const int sms = multiprocessor_count();
  const mma::DkdvPlan plan = mma::plan_dkdv(p.B, p.Tq, p.Tk, p.H, p.q_offset, sms);
  mma::DkdvOutput out;
  out.tiles_per_chunk = plan.tiles_per_chunk, out.chunks = plan.chunks;
  const int64_t kv_elements = p.B * p.Tk * D;
  if (plan.chunks > 1) {
    const size_t part_bytes = sizeof(float) * static_cast<size_t>(kv_elements) * plan.chunks;
    STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&out.part_dk), 2 * part_bytes, stream));
    out.part_dv = out.part_dk + kv_elements * plan.chunks;
  }
  constexpr size_t bytes = mma::dkdv_shared_bytes<D>();
  prepare_launch(mma::attention_dkdv_mma_kernel<D>, mma::kThreads, bytes, op);
  const dim3 grid(static_cast<unsigned>(ceil_div(p.Tk, mma::kTile)), static_cast<unsigned>(plan.chunks),
                  static_cast<unsigned>(p.B));
  mma::attention_dkdv_mma_kernel<D><<<grid, mma::kThreads, bytes, stream>>>(p, delta, scale, out);
  STEPWISE_CUDA_LAUNCH_CHECK("attention_dkdv_mma_kernel");
  if (plan.chunks > 1) {
    const int64_t blocks = std::min<int64_t>(ceil_div(kv_elements, 256), 8 * int64_t{sms});
    mma::attention_dkdv_reduce_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
        out.part_dk, out.part_dv, p.dk, p.dv, kv_elements, plan.chunks, scale);
    STEPWISE_CUDA_LAUNCH_CHECK("attention_dkdv_reduce_kernel");
    STEPWISE_CUDA_CHECK(cudaFreeAsync(out.part_dk, stream));
  }
}

bool aligned(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

// Whether the tensor-core path takes these params: bf16, D in {64, 128, 256}, positions that fit the kernels' int32,
// q / k / v / dout / out 16-byte aligned (cp.async, vector loads) and dq / dk / dv 4-byte aligned (bf16 pairs are
// stored as one word).
template <class T>
bool use_mma_path(const AttentionParams<T, float>& p) {
  return std::is_same_v<T, bf16> && attention_backward_mma::supports_head_dim(p.D) && p.Tk <= INT32_MAX &&
         aligned(p.q, 16) && aligned(p.k, 16) && aligned(p.v, 16) && aligned(p.dout, 16) && aligned(p.out, 16) &&
         aligned(p.dq, 4) && aligned(p.dk, 4) && aligned(p.dv, 4);
}

}  // namespace

// Scratch: delta (B * Tq * H floats) comes from the stream-ordered allocator (cudaMallocAsync / cudaFreeAsync on
// `stream`), so there is no host synchronisation and the op can be captured in a CUDA graph.
template <class T>
void attention_backward(const AttentionParams<T, float>& p, cudaStream_t stream) {
  const char* op = "attention_backward";
  if (p.B < 0 || p.Tq < 0 || p.Tk < 0 || p.H < 0 || p.q_offset < 0)
    cpu::kernel_fail(op, "negative dimension (B = ", p.B, ", Tq = ", p.Tq, ", Tk = ", p.Tk, ", H = ", p.H,
                     ", q_offset = ", p.q_offset, ")");
  if (p.B == 0 || (p.Tk == 0 && p.Tq == 0)) return;  // nothing to do (Tq > 0 with no keys fails the check below)
  require_head_dim(p.D, op);
  if (p.q_offset + p.Tq > p.Tk)
    cpu::kernel_fail(op, "q_offset + Tq = ", p.q_offset + p.Tq, " exceeds Tk = ", p.Tk);
  if (p.B > 65535) cpu::kernel_fail(op, "B = ", p.B, " exceeds the grid limit 65535");
  if (!(p.scale >= 0) || p.scale > 1e30) cpu::kernel_fail(op, "scale = ", p.scale, " must be finite and >= 0");
  cpu::require_pointer(p.k, op, "k");
  cpu::require_pointer(p.v, op, "v");
  cpu::require_pointer(p.dk, op, "dk");
  cpu::require_pointer(p.dv, op, "dv");
  const int64_t rows = p.B * p.Tq * p.H;
  if (rows > 0) {
    cpu::require_pointer(p.q, op, "q");
    cpu::require_pointer(p.out, op, "out");
    cpu::require_pointer(p.lse, op, "lse");
    cpu::require_pointer(p.dout, op, "dout");
    cpu::require_pointer(p.dq, op, "dq");
  }
  const float scale = static_cast<float>(p.scale > 0 ? p.scale : 1.0 / std::sqrt(static_cast<double>(p.D)));

  float* delta = nullptr;  // (B, Tq * H)
  if (rows > 0) STEPWISE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&delta), sizeof(float) * rows, stream));
  if constexpr (std::is_same_v<T, bf16>) {
    if (use_mma_path(p)) {
      switch (p.D) {
        case 64: launch_backward_mma<64>(p, delta, scale, stream); break;
        case 128: launch_backward_mma<128>(p, delta, scale, stream); break;
        default: launch_backward_mma<256>(p, delta, scale, stream); break;
      }
      if (delta) STEPWISE_CUDA_CHECK(cudaFreeAsync(delta, stream));
      return;
    }
  }
  if (rows > 0) {
    attention_delta_kernel<T><<<static_cast<unsigned>(ceil_div(rows, kWarps)), kThreads, 0, stream>>>(
        p.dout, p.out, delta, rows, static_cast<int>(p.D));
    STEPWISE_CUDA_LAUNCH_CHECK("attention_delta_kernel");
  }
  switch (head_chunks(p.D)) {
    case 1: launch_backward<T, 1>(p, delta, scale, stream); break;
    case 2: launch_backward<T, 2>(p, delta, scale, stream); break;
    case 4: launch_backward<T, 4>(p, delta, scale, stream); break;
    default: launch_backward<T, 8>(p, delta, scale, stream); break;
  }
  if (delta) STEPWISE_CUDA_CHECK(cudaFreeAsync(delta, stream));
}

template void attention_backward<float>(const AttentionParams<float, float>&, cudaStream_t);
template void attention_backward<bf16>(const AttentionParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
