// CUDA token sampling (see cuda/sampling.h), one CTA per row, following the CPU sampler (src/serve/sampler.cpp):
// greedy argmax (ties to the lowest id) when temperature <= 0; otherwise candidates ordered by (logit desc, id asc),
// cut to top-k, then to the shortest prefix whose probability reaches top-p, then one draw from the renormalised
// candidates. No sort: every "k-th element in sorted order" is found by an 8-pass radix descent over a unique 64-bit
// key (ordered logit bits, inverted id), weighting elements by count (top-k) or by probability mass (top-p, the draw).
//
// Differences from the CPU sampler (documented, deliberate):
// - probability masses are fixed-point integers, exp((x - max) / T) * 2^40 rounded down, so sums are exact and the
//   result does not depend on thread timing; tokens whose probability is below ~1e-12 of the top one are never drawn;
// - the uniform comes from a counter-based generator of (seed, step) (splitmix64), not from a request's std::mt19937;
//   the row index is not mixed in, so a request draws the same token wherever it sits in the batch;
// - NaN logits are never chosen (greedy or sampled); a row whose logits are all -inf or NaN returns the lowest id of
//   the maximum (greedy rule), or 0 when all are NaN.
#include <cmath>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/sampling.h"

namespace stepwise::cuda {
namespace {

constexpr int kSampleThreads = 512;
constexpr float kMassScale = 1099511627776.f;  // 2^40: fixed-point unit of probability mass (top logit = 2^40)

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Monotone map of a float to uint32 (larger float -> larger integer); NaN maps like -inf.
__device__ __forceinline__ uint32_t ordered_bits(float x) {
  const uint32_t u = __float_as_uint(isnan(x) ? -INFINITY : x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Unique key whose descending order is (logit descending, id ascending), the CPU sampler's stable order.
__device__ __forceinline__ uint64_t sort_key(float x, int64_t v) {
  return (uint64_t{ordered_bits(x)} << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(v));
}
__device__ __forceinline__ int32_t token_of(uint64_t key) {
  return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key));
}

struct RowView {
  const float* logits;  // (V)
  int64_t V;
  float max_logit, inv_temperature;
  // exp((x - max) / T) in units of 2^-40; 0 for NaN and -inf.
  __device__ uint64_t mass(float x) const {
    if (isnan(x)) return 0;
    return static_cast<uint64_t>(expf((x - max_logit) * inv_temperature) * kMassScale);
  }
};

// Scratch of one CTA in shared memory.
struct SampleShared {
  unsigned long long hist[256];
  unsigned long long prefix, above, total;
};

// The key of the first element, in descending key order among elements with key >= floor_key, whose inclusive
// cumulative weight exceeds `target` (weight = 1 per element, or its mass). Eight passes, one per key byte, high
// byte first: each builds a 256-bin weight histogram of the elements that match the bytes chosen so far, and thread
// 0 walks it from the top. Integer atomics: the result does not depend on timing. Called by the whole CTA.
__device__ uint64_t descend(const RowView& row, bool by_mass, uint64_t target, uint64_t floor_key, SampleShared& sh) {
  uint64_t prefix = 0, above = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.hist[i] = 0;
    __syncthreads();
    for (int64_t v = threadIdx.x; v < row.V; v += blockDim.x) {
      const float x = row.logits[v];
      const uint64_t key = sort_key(x, v);
      if (key < floor_key) continue;
      if (shift < 56 && (key >> (shift + 8)) != (prefix >> (shift + 8))) continue;
      const uint64_t w = by_mass ? row.mass(x) : 1;
      if (w != 0) atomicAdd(&sh.hist[(key >> shift) & 255], static_cast<unsigned long long>(w));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint64_t cum = above;
      int chosen = -1, last_nonempty = -1;
      for (int bin = 255; bin >= 0; --bin) {
        if (sh.hist[bin] == 0) continue;
        last_nonempty = bin;
        if (cum + sh.hist[bin] > target) {
          chosen = bin;
          break;
        }
        cum += sh.hist[bin];
      }
      if (chosen < 0 && last_nonempty >= 0) {  // target beyond the total (cannot happen): take the last element
        chosen = last_nonempty;
        cum -= sh.hist[chosen];
      }
      sh.prefix = prefix | (static_cast<uint64_t>(chosen < 0 ? 0 : chosen) << shift);
      sh.above = cum;
    }
    __syncthreads();
    prefix = sh.prefix, above = sh.above;
  }
  return prefix;
}

// Sum of the masses of elements with key >= floor_key. Called by the whole CTA.
__device__ uint64_t mass_sum(const RowView& row, uint64_t floor_key, SampleShared& sh) {
  if (threadIdx.x == 0) sh.total = 0;
  __syncthreads();
  uint64_t local = 0;
  for (int64_t v = threadIdx.x; v < row.V; v += blockDim.x) {
    const float x = row.logits[v];
    if (sort_key(x, v) >= floor_key) local += row.mass(x);
  }
  atomicAdd(&sh.total, static_cast<unsigned long long>(local));
  __syncthreads();
  const uint64_t total = sh.total;
  __syncthreads();  // everyone has read total before it can be reset
  return total;
}

// Largest non-NaN logit of the row (-inf if none). Called by the whole CTA.
__device__ float block_max_of(const RowView& row) {
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < row.V; v += blockDim.x) m = fmaxf(m, row.logits[v]);  // fmaxf skips NaN
  return block_max(m);
}

// Lowest id of the largest non-NaN logit (V if every logit is NaN). Called by the whole CTA.
__device__ int64_t block_argmax(const float* logits, int64_t V) {
  __shared__ float warp_val[32];
  __shared__ int64_t warp_id[32];
  float best = -INFINITY;
  int64_t best_id = V;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {  // ids increase: strict > keeps the first maximum
    const float x = logits[v];
    if (x > best || (x == best && best_id == V)) best = x, best_id = v;
  }
  auto better = [](float a, int64_t ia, float b, int64_t ib) { return b > a || (b == a && ib < ia); };
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, best_id, o);
    if (better(best, best_id, ob, oi)) best = ob, best_id = oi;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) warp_val[warp] = best, warp_id[warp] = best_id;
  __syncthreads();
  best = lane < warps ? warp_val[lane] : -INFINITY;
  best_id = lane < warps ? warp_id[lane] : V;
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, best_id, o);
    if (better(best, best_id, ob, oi)) best = ob, best_id = oi;
  }
  return best_id;
}

// Grid S, kSampleThreads threads: CTA r samples row r. All branches are uniform over the CTA.
__global__ void __launch_bounds__(kSampleThreads) sample_kernel(SampleParams p) {
  __shared__ SampleShared sh;
  const int64_t r = blockIdx.x;
  RowView row{p.logits + r * p.V, p.V, 0.f, 0.f};
  const float temperature = p.temperature[r];
  const float max_logit = block_max_of(row);
  if (!(temperature > 0.f) || !(max_logit > -INFINITY)) {  // greedy (also for rows with no finite logit)
    const int64_t best = block_argmax(row.logits, row.V);
    if (threadIdx.x == 0) p.tokens[r] = static_cast<int32_t>(best < row.V ? best : 0);
    return;
  }
  row.max_logit = max_logit;
  row.inv_temperature = 1.f / temperature;
  const int32_t top_k = p.top_k ? p.top_k[r] : 0;
  const float top_p = p.top_p ? p.top_p[r] : 1.f;

  uint64_t floor_key = 0;  // candidates: keys >= floor_key
  if (top_k > 0 && top_k < row.V) floor_key = descend(row, false, static_cast<uint64_t>(top_k - 1), 0, sh);
  uint64_t total = mass_sum(row, floor_key, sh);  // >= 2^40: the top logit is always a candidate
  if (top_p < 1.f) {  // shortest prefix whose mass reaches top_p of the top-k mass (at least one token)
    double need = ceil(static_cast<double>(top_p) * static_cast<double>(total));
    if (!(need >= 1.0)) need = 1.0;
    if (need > static_cast<double>(total)) need = static_cast<double>(total);
    floor_key = descend(row, true, static_cast<uint64_t>(need) - 1, floor_key, sh);
    total = mass_sum(row, floor_key, sh);
  }
  const uint64_t seed = p.seed ? p.seed[r] : 0;
  const uint64_t step = p.step ? static_cast<uint64_t>(p.step[r]) : 0;
  const uint64_t u = __umul64hi(splitmix64(splitmix64(seed) ^ step), total);  // uniform in [0, total)
  const uint64_t key = descend(row, true, u, floor_key, sh);
  if (threadIdx.x == 0) p.tokens[r] = token_of(key);
}

}  // namespace

void sample(const SampleParams& p, cudaStream_t stream) {
  const char* op = "sample";
  if (p.S < 0) cpu::kernel_fail(op, "S = ", p.S, " is negative");
  if (p.S == 0) return;
  if (p.V < 1 || p.V > int64_t{0x7fffffff}) cpu::kernel_fail(op, "V = ", p.V, " must be in [1, 2^31)");
  if (p.S > int64_t{0x7fffffff}) cpu::kernel_fail(op, "S = ", p.S, " exceeds the grid limit");
  cpu::require_pointer(p.tokens, op, "tokens");
  cpu::require_pointer(p.logits, op, "logits");
  cpu::require_pointer(p.temperature, op, "temperature");
  sample_kernel<<<static_cast<unsigned>(p.S), kSampleThreads, 0, stream>>>(p);
  STEPWISE_CUDA_LAUNCH_CHECK("sample_kernel");
}

}  // namespace stepwise::cuda
