// Emulator shim of <cuda_runtime.h> (tests/emu): what CUDA kernel source needs to compile as plain C++ under g++ and
// run on the CPU SIMT emulator (tests/emu/emulator.h): the CUDA keywords, the built-in index variables (set by the
// scheduler before it resumes a thread), barriers, warp shuffles and votes (warp rendezvous), atomics (one OS thread:
// plain read-modify-write) and the device maths (host libm; device rounding is not reproduced).
#pragma once
#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuda_bf16.h"
#include "cuda_runtime_api.h"
#include "cuda_vector_types.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
// Static shared arrays become function-local statics: the blocks of a grid run one after another, so each block has
// them to itself (they are not re-poisoned between blocks). `extern __shared__` (dynamic shared memory) cannot be
// expressed this way: use stepwise::cuda::ptx::dynamic_shared_base() / emu::dynamic_shared_memory().
#define __shared__ static

extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

namespace emu::detail {
enum class ShuffleMode { index, up, down, bfly };
enum class VoteMode { ballot, any, all };
void syncthreads();
int syncthreads_count(bool predicate);   // the barrier, returning how many threads passed a true predicate
void syncwarp(unsigned mask);
uint64_t shuffle(unsigned mask, uint64_t value, ShuffleMode mode, int operand, int width);
unsigned vote(unsigned mask, bool predicate, VoteMode mode);
template <class T> uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8, "warp shuffles move at most 64 bits");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T> T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
}  // namespace emu::detail

inline void __syncthreads() { emu::detail::syncthreads(); }
inline int __syncthreads_count(int predicate) { return emu::detail::syncthreads_count(predicate != 0); }
inline int __syncthreads_and(int predicate) {
  return emu::detail::syncthreads_count(predicate != 0) == static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate) { return emu::detail::syncthreads_count(predicate != 0) != 0; }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::detail::syncwarp(mask); }
inline void __threadfence() {}
inline void __threadfence_block() {}

template <class T> T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  return emu::detail::from_bits<T>(
      emu::detail::shuffle(mask, emu::detail::to_bits(var), emu::detail::ShuffleMode::index, src_lane, width));
}
template <class T> T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return emu::detail::from_bits<T>(emu::detail::shuffle(mask, emu::detail::to_bits(var), emu::detail::ShuffleMode::up,
                                                        static_cast<int>(delta), width));
}
template <class T> T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return emu::detail::from_bits<T>(emu::detail::shuffle(mask, emu::detail::to_bits(var),
                                                        emu::detail::ShuffleMode::down, static_cast<int>(delta), width));
}
template <class T> T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  return emu::detail::from_bits<T>(
      emu::detail::shuffle(mask, emu::detail::to_bits(var), emu::detail::ShuffleMode::bfly, lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return emu::detail::vote(mask, predicate != 0, emu::detail::VoteMode::ballot);
}
inline int __any_sync(unsigned mask, int predicate) {
  return static_cast<int>(emu::detail::vote(mask, predicate != 0, emu::detail::VoteMode::any));
}
inline int __all_sync(unsigned mask, int predicate) {
  return static_cast<int>(emu::detail::vote(mask, predicate != 0, emu::detail::VoteMode::all));
}

// Atomics: every emulated thread runs on one OS thread and is only switched at barriers and warp collectives.
#define EMU_ATOMIC_RMW(name, type, expr) \
  inline type name(type* address, type val) { \
    const type old = *address;                \
    *address = (expr);                        \
    return old;                               \
  }
#define EMU_ATOMIC_INTEGERS(name, expr)             \
  EMU_ATOMIC_RMW(name, int, expr)                   \
  EMU_ATOMIC_RMW(name, unsigned, expr)              \
  EMU_ATOMIC_RMW(name, unsigned long long, expr)    \
  EMU_ATOMIC_RMW(name, long long, expr)
EMU_ATOMIC_INTEGERS(atomicAdd, old + val)
EMU_ATOMIC_RMW(atomicAdd, float, old + val)
EMU_ATOMIC_RMW(atomicAdd, double, old + val)
EMU_ATOMIC_INTEGERS(atomicSub, old - val)
EMU_ATOMIC_INTEGERS(atomicMax, old < val ? val : old)
EMU_ATOMIC_INTEGERS(atomicMin, val < old ? val : old)
EMU_ATOMIC_INTEGERS(atomicExch, val)
EMU_ATOMIC_RMW(atomicExch, float, val)
EMU_ATOMIC_INTEGERS(atomicOr, old | val)
EMU_ATOMIC_INTEGERS(atomicAnd, old & val)
EMU_ATOMIC_INTEGERS(atomicXor, old ^ val)
#undef EMU_ATOMIC_INTEGERS
#undef EMU_ATOMIC_RMW
template <class T> T atomicCAS(T* address, T compare, T val) {
  const T old = *address;
  if (old == compare) *address = val;
  return old;
}

template <class T> T __ldg(const T* p) { return *p; }

// Device maths: the host libm stands in for the device's (fast-math variants are the accurate functions here).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __int_as_float(int i) { return emu::detail::from_bits<float>(static_cast<uint32_t>(i)); }
inline int __float_as_int(float f) { return static_cast<int>(static_cast<uint32_t>(emu::detail::to_bits(f))); }
inline float __uint_as_float(unsigned u) { return emu::detail::from_bits<float>(u); }
inline unsigned __float_as_uint(float f) { return static_cast<uint32_t>(emu::detail::to_bits(f)); }
inline double __longlong_as_double(long long i) { return emu::detail::from_bits<double>(static_cast<uint64_t>(i)); }
inline long long __double_as_longlong(double d) { return static_cast<long long>(emu::detail::to_bits(d)); }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((uint64_t{a} * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}

// CUDA's global min / max overloads.
#define EMU_MIN_MAX(type)                                        \
  inline type min(type a, type b) { return b < a ? b : a; }     \
  inline type max(type a, type b) { return a < b ? b : a; }
EMU_MIN_MAX(int)
EMU_MIN_MAX(unsigned)
EMU_MIN_MAX(long)
EMU_MIN_MAX(unsigned long)
EMU_MIN_MAX(long long)
EMU_MIN_MAX(unsigned long long)
EMU_MIN_MAX(float)
EMU_MIN_MAX(double)
#undef EMU_MIN_MAX
