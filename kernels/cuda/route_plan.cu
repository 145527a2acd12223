// The MoE routing plan built on the device (semantics in kernels/ops/moe.h, oracle kernels/cpu/route_plan.cpp): a
// stable counting sort of the R = N*K assignments by expert, without host synchronisation. Three kernels:
// a per-expert histogram into offsets[1..E], an in-place scan to the offsets, and a scatter in which block e walks
// all assignments in ascending order and ranks its own with block-wide prefix sums, so rows stay ordered by token.
#include <algorithm>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/moe.h"

namespace stepwise::cuda {
namespace {

using cpu::kernel_fail;
using cpu::require_pointer;

constexpr int kHistogramThreads = 256;
constexpr int kScatterThreads = 256;
constexpr int kScatterPerThread = 8;   // consecutive assignments per thread in one scatter tile
constexpr int kScatterTile = kScatterThreads * kScatterPerThread;
constexpr int64_t kMaxExperts = 8192;  // the histogram's shared counters (32 KiB)

// counts[e] += number of assignments a with idx[a] == e (counts = offsets + 1, zeroed before). Grid-stride over R;
// per-block shared counters, then one global atomic per expert and block. Out-of-range ids get row_of_slot = -1 and
// no row (the ops that read the plan skip them).
__global__ void plan_histogram_kernel(const int32_t* idx, int64_t R, int E, unsigned long long* counts,
                                      int32_t* row_of_slot) {
  extern __shared__ unsigned histogram[];   // (E)
  for (int e = threadIdx.x; e < E; e += blockDim.x) histogram[e] = 0;
  __syncthreads();
  for (int64_t a = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; a < R;
       a += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t e = idx[a];
    if (e >= 0 && e < E)
      atomicAdd(histogram + e, 1u);
    else
      row_of_slot[a] = -1;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    if (histogram[e]) atomicAdd(counts + e, static_cast<unsigned long long>(histogram[e]));
}

// offsets[1..E] (counts) become the inclusive prefix sums, i.e. offsets[e+1] = rows of experts 0..e. One warp,
// 32 experts per step with a running carry.
__global__ void plan_scan_kernel(int64_t* offsets, int E) {
  const int lane = threadIdx.x;
  int64_t carry = 0;
  for (int base = 0; base < E; base += 32) {
    const int e = base + lane;
    int64_t v = e < E ? offsets[e + 1] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t up = __shfl_up_sync(0xffffffffu, v, o);
      if (lane >= o) v += up;
    }
    if (e < E) offsets[e + 1] = v + carry;
    carry += __shfl_sync(0xffffffffu, v, 31);
  }
}

// Block e (kScatterThreads threads) ranks the assignments of expert e. Tiles of kScatterTile assignments in
// ascending order; thread t owns the kScatterPerThread consecutive ones at tile + t*kScatterPerThread, counts its
// matches, and an exclusive block scan of the counts gives each match its row: offsets[e] + matches before it.
__global__ void plan_scatter_kernel(const int32_t* idx, int64_t R, int K, const int64_t* offsets,
                                    int32_t* row_token, int32_t* row_of_slot) {
  __shared__ int warp_totals[kScatterThreads / 32];
  const int e = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int warps = kScatterThreads / 32;
  int64_t next = offsets[e];
  const int64_t end = offsets[e + 1];
  for (int64_t tile = 0; tile < R && next < end; tile += kScatterTile) {   // `next` is block-uniform
    const int64_t first = tile + static_cast<int64_t>(threadIdx.x) * kScatterPerThread;
    unsigned match = 0;
    int mine = 0;
    for (int j = 0; j < kScatterPerThread; ++j) {
      const int64_t a = first + j;
      if (a < R && idx[a] == e) match |= 1u << j, ++mine;
    }
    int inclusive = mine;   // inclusive scan within the warp
    for (int o = 1; o < 32; o <<= 1) {
      const int up = __shfl_up_sync(0xffffffffu, inclusive, o);
      if (lane >= o) inclusive += up;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {   // inclusive scan of the warp totals, in place (each lane reads and writes its own entry)
      int t = lane < warps ? warp_totals[lane] : 0;
      for (int o = 1; o < 32; o <<= 1) {
        const int up = __shfl_up_sync(0xffffffffu, t, o);
        if (lane >= o) t += up;
      }
      if (lane < warps) warp_totals[lane] = t;
    }
    __syncthreads();
    int64_t r = next + (warp > 0 ? warp_totals[warp - 1] : 0) + inclusive - mine;
    for (int j = 0; j < kScatterPerThread; ++j)
      if (match & (1u << j)) {
        const int64_t a = first + j;
        row_of_slot[a] = static_cast<int32_t>(r);
        row_token[r] = static_cast<int32_t>(a / K);
        ++r;
      }
    next += warp_totals[warps - 1];
    __syncthreads();   // warp_totals is rewritten by the next tile
  }
}

}  // namespace

void route_plan_build(const RoutePlan& plan, cudaStream_t stream) {
  const char* op = "cuda::route_plan_build";
  if (plan.N < 0) kernel_fail(op, "N = ", plan.N, " is negative");
  if (plan.E <= 0) kernel_fail(op, "E = ", plan.E, " must be positive");
  if (plan.K <= 0) kernel_fail(op, "K = ", plan.K, " must be positive");
  if (plan.E > kMaxExperts) kernel_fail(op, "E = ", plan.E, " exceeds the ", kMaxExperts, " experts supported");
  require_pointer(plan.offsets, op, "offsets");
  const int64_t R = plan.N * plan.K;
  if (R > INT32_MAX) kernel_fail(op, "R = N*K = ", R, " exceeds the int32 row ids");
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(plan.offsets, 0, sizeof(int64_t) * (plan.E + 1), stream));
  if (R == 0) return;
  require_pointer(plan.idx, op, "idx");
  require_pointer(plan.row_token, op, "row_token");
  require_pointer(plan.row_of_slot, op, "row_of_slot");
  const int E = static_cast<int>(plan.E);

  const int sms = multiprocessor_count();
  const int histogram_blocks = static_cast<int>(std::clamp<int64_t>(ceil_div(R, kHistogramThreads * 16), 1, 2 * sms));
  plan_histogram_kernel<<<histogram_blocks, kHistogramThreads, sizeof(unsigned) * E, stream>>>(
      plan.idx, R, E, reinterpret_cast<unsigned long long*>(plan.offsets + 1), plan.row_of_slot);
  STEPWISE_CUDA_LAUNCH_CHECK("plan_histogram_kernel");
  static_assert(sizeof(unsigned long long) == sizeof(int64_t));
  plan_scan_kernel<<<1, 32, 0, stream>>>(plan.offsets, E);
  STEPWISE_CUDA_LAUNCH_CHECK("plan_scan_kernel");
  plan_scatter_kernel<<<E, kScatterThreads, 0, stream>>>(plan.idx, R, static_cast<int>(plan.K), plan.offsets,
                                                         plan.row_token, plan.row_of_slot);
  STEPWISE_CUDA_LAUNCH_CHECK("plan_scatter_kernel");
}

}  // namespace stepwise::cuda
