// Tests of the CPU SIMT emulator against definitions written here, not against its implementation: one mma.m16n8k16
// with fragments built from ptx.cuh's layout formulas vs a plain matmul, a small ldmatrix + mma GEMM (B as n x k and
// as k x n) vs a CPU GEMM, cp.async group semantics, the poison that exposes a missing __syncthreads, shuffles and
// votes vs CUDA's definitions, the launch geometry, and the aborts (deadlock, divergence, misaligned addresses).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cuda/ptx.cuh"
#include "emulator.h"

namespace {

namespace ptx = stepwise::cuda::ptx;
using bf16 = __nv_bfloat16;

std::vector<bf16> random_bf16(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16_rn(dist(rng));
  return v;
}

uint32_t pack(bf16 lo, bf16 hi) { return uint32_t{__bfloat16_as_ushort(lo)} | (uint32_t{__bfloat16_as_ushort(hi)} << 16); }

// ---- (1) one mma: fragments gathered by each lane from row-major A (16 x 16), B (16 x 8), C (16 x 8).
__global__ void one_mma(const bf16* A, const bf16* B, const float* C, float* D) {
  const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
  auto a_at = [&](int m, int k) { return A[m * 16 + k]; };
  auto b_at = [&](int k, int n) { return B[k * 8 + n]; };
  const uint32_t a[4] = {pack(a_at(g, 2 * t), a_at(g, 2 * t + 1)), pack(a_at(g + 8, 2 * t), a_at(g + 8, 2 * t + 1)),
                         pack(a_at(g, 2 * t + 8), a_at(g, 2 * t + 9)),
                         pack(a_at(g + 8, 2 * t + 8), a_at(g + 8, 2 * t + 9))};
  const uint32_t b[2] = {pack(b_at(2 * t, g), b_at(2 * t + 1, g)), pack(b_at(2 * t + 8, g), b_at(2 * t + 9, g))};
  float d[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  ptx::mma_bf16_16816(d, a, b);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

TEST(Emulator, MmaMatchesPlainMatmul) {
  const std::vector<bf16> A = random_bf16(16 * 16, 1), B = random_bf16(16 * 8, 2);
  std::vector<float> C(16 * 8), D(16 * 8, std::numeric_limits<float>::quiet_NaN());
  for (size_t i = 0; i < C.size(); ++i) C[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  emu::launch(one_mma, dim3(1), dim3(32), 0, A.data(), B.data(), C.data(), D.data());
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double want = C[m * 8 + n];
      for (int k = 0; k < 16; ++k) want += double(float(A[m * 16 + k])) * double(float(B[k * 8 + n]));
      EXPECT_NEAR(D[m * 8 + n], want, 1e-5) << "m=" << m << " n=" << n;
    }
}

// ---- (2) a 32 x 32 x 48 GEMM C = A B with ldmatrix fragments: 4 warps, each a 16 x 16 tile of C (two n-tiles).
// A (M x K) row-major; B given as Bt (N x K, "nk") or as B (K x N, "kn"). Tiles are staged in dynamic shared memory
// with cp.async, rows padded by 8 elements (rows stay 16-byte aligned).
constexpr int kM = 32, kN = 32, kK = 48, kPad = 8;
enum class BLoad { nk_x4, kn_x4_trans, nk_x2, kn_x2_trans };

template <BLoad kLoad>
__global__ void ldmatrix_gemm(const bf16* A, const bf16* Bsrc, float* C) {
  constexpr bool kNk = kLoad == BLoad::nk_x4 || kLoad == BLoad::nk_x2;
  constexpr int kBRows = kNk ? kN : kK, kBCols = kNk ? kK : kN;
  constexpr int kAStride = kK + kPad, kBStride = kBCols + kPad;
  bf16* As = reinterpret_cast<bf16*>(ptx::dynamic_shared_base());
  bf16* Bs = As + kM * kAStride;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  for (int chunk = tid; chunk < kM * kK / 8; chunk += blockDim.x) {
    const int r = chunk / (kK / 8), c = 8 * (chunk % (kK / 8));
    ptx::cp_async_16(As + r * kAStride + c, A + r * kK + c, true);
  }
  for (int chunk = tid; chunk < kBRows * kBCols / 8; chunk += blockDim.x) {
    const int r = chunk / (kBCols / 8), c = 8 * (chunk % (kBCols / 8));
    ptx::cp_async_16(Bs + r * kBStride + c, Bsrc + r * kBCols + c, true);
  }
  ptx::cp_async_commit();
  ptx::cp_async_wait<0>();
  __syncthreads();

  const int m0 = 16 * (warp / 2), n0 = 16 * (warp % 2);
  float d0[4] = {0, 0, 0, 0}, d1[4] = {0, 0, 0, 0};
  for (int k0 = 0; k0 < kK; k0 += 16) {
    uint32_t a[4];
    ptx::ldmatrix_x4(a, As + (m0 + lane % 16) * kAStride + k0 + 8 * (lane / 16));
    uint32_t b0[2], b1[2];
    if constexpr (kLoad == BLoad::nk_x4) {
      uint32_t r[4];
      ptx::ldmatrix_x4(r, Bs + (n0 + 8 * (lane / 16) + lane % 8) * kBStride + k0 + 8 * ((lane / 8) % 2));
      b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
    } else if constexpr (kLoad == BLoad::kn_x4_trans) {
      uint32_t r[4];
      ptx::ldmatrix_x4_trans(r, Bs + (k0 + 8 * ((lane / 8) % 2) + lane % 8) * kBStride + n0 + 8 * (lane / 16));
      b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
    } else if constexpr (kLoad == BLoad::nk_x2) {   // lanes 0-15 address n-tile rows; 16-31 repeat them (ignored)
      ptx::ldmatrix_x2(b0, Bs + (n0 + lane % 8) * kBStride + k0 + 8 * ((lane / 8) % 2));
      ptx::ldmatrix_x2(b1, Bs + (n0 + 8 + lane % 8) * kBStride + k0 + 8 * ((lane / 8) % 2));
    } else {
      ptx::ldmatrix_x2_trans(b0, Bs + (k0 + 8 * ((lane / 8) % 2) + lane % 8) * kBStride + n0);
      ptx::ldmatrix_x2_trans(b1, Bs + (k0 + 8 * ((lane / 8) % 2) + lane % 8) * kBStride + n0 + 8);
    }
    ptx::mma_bf16_16816(d0, a, b0);
    ptx::mma_bf16_16816(d1, a, b1);
  }
  const int g = lane / 4, t = lane % 4;
  for (int e = 0; e < 4; ++e) {
    const int m = m0 + g + 8 * (e / 2), n = 2 * t + e % 2;
    C[m * kN + n0 + n] = d0[e];
    C[m * kN + n0 + 8 + n] = d1[e];
  }
}

template <BLoad kLoad> void check_ldmatrix_gemm() {
  constexpr bool kNk = kLoad == BLoad::nk_x4 || kLoad == BLoad::nk_x2;
  const std::vector<bf16> A = random_bf16(kM * kK, 3), B = random_bf16(kK * kN, 4);   // B: K x N
  std::vector<bf16> Bsrc = B;
  if (kNk)
    for (int k = 0; k < kK; ++k)
      for (int n = 0; n < kN; ++n) Bsrc[n * kK + k] = B[k * kN + n];
  std::vector<float> C(kM * kN, std::numeric_limits<float>::quiet_NaN());
  const size_t smem = sizeof(bf16) * (kM * (kK + kPad) + (kNk ? kN * (kK + kPad) : kK * (kN + kPad)));
  emu::launch(ldmatrix_gemm<kLoad>, dim3(1), dim3(128), smem, A.data(), Bsrc.data(), C.data());
  double err = 0, ref = 0;
  for (int m = 0; m < kM; ++m)
    for (int n = 0; n < kN; ++n) {
      double want = 0;
      for (int k = 0; k < kK; ++k) want += double(float(A[m * kK + k])) * double(float(B[k * kN + n]));
      const double got = C[m * kN + n];
      ASSERT_TRUE(std::isfinite(got)) << "m=" << m << " n=" << n;
      err += (got - want) * (got - want), ref += want * want;
    }
  EXPECT_LT(std::sqrt(err / ref), 1e-6);
}

TEST(Emulator, LdmatrixGemmBFromNxK) { check_ldmatrix_gemm<BLoad::nk_x4>(); }
TEST(Emulator, LdmatrixTransGemmBFromKxN) { check_ldmatrix_gemm<BLoad::kn_x4_trans>(); }
TEST(Emulator, LdmatrixX2GemmBFromNxK) { check_ldmatrix_gemm<BLoad::nk_x2>(); }
TEST(Emulator, LdmatrixX2TransGemmBFromKxN) { check_ldmatrix_gemm<BLoad::kn_x2_trans>(); }

// ---- (3) cp.async: copies land only when a wait leaves at most `pending` committed groups outstanding.
// Each of 32 threads copies 4 floats (16 bytes) in group 0 and 4 in group 1, then reads its shared slots before any
// wait, after wait<1> (group 0 landed) and after wait<0>. A third, invalid copy writes zeros.
__global__ void cp_async_groups(const float* src, float* before, float* middle, float* after, float* zeros) {
  float* s = reinterpret_cast<float*>(ptx::dynamic_shared_base());
  const int t = static_cast<int>(threadIdx.x);
  ptx::cp_async_16(s + 4 * t, src + 4 * t, true);
  ptx::cp_async_commit();
  ptx::cp_async_16(s + 128 + 4 * t, src + 128 + 4 * t, true);
  ptx::cp_async_16(s + 256 + 4 * t, src, false);
  ptx::cp_async_commit();
  for (int i = 0; i < 4; ++i) before[4 * t + i] = s[4 * t + i];
  ptx::cp_async_wait<1>();
  for (int i = 0; i < 4; ++i) middle[4 * t + i] = s[4 * t + i], middle[128 + 4 * t + i] = s[128 + 4 * t + i];
  ptx::cp_async_wait<0>();
  for (int i = 0; i < 4; ++i) after[4 * t + i] = s[128 + 4 * t + i], zeros[4 * t + i] = s[256 + 4 * t + i];
}

TEST(Emulator, CpAsyncLandsOnlyAfterWait) {
  std::vector<float> src(256), before(128), middle(256), after(128), zeros(128);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) + 0.5f;
  emu::set_copy_landing(emu::CopyLanding::at_wait);
  emu::launch(cp_async_groups, dim3(1), dim3(32), 384 * sizeof(float), src.data(), before.data(), middle.data(),
              after.data(), zeros.data());
  for (int i = 0; i < 128; ++i) {
    EXPECT_TRUE(std::isnan(before[i])) << i;                 // read before any wait: poison
    EXPECT_EQ(middle[i], src[i]) << i;                       // group 0 waited for
    EXPECT_TRUE(std::isnan(middle[128 + i])) << i;           // group 1 still in flight
    EXPECT_EQ(after[i], src[128 + i]) << i;
    EXPECT_EQ(zeros[i], 0.f) << i;                           // valid = false: 16 zero bytes
  }
  emu::set_copy_landing(emu::CopyLanding::per_block);
}

// A prefetch into a stage that the other warp may still be reading: each thread reads the other warp's chunk of the
// stage, then (without the barrier) issues the copy of the next tile into its own chunk, waited for only after a
// later barrier. Landing at the wait hides the race; landing at issue shows it as next-tile values in out_now.
template <bool kBarrier>
__global__ void prefetch_into_stage(const float* tile0, const float* tile1, float* out_now, float* out_next) {
  float* s = reinterpret_cast<float*>(ptx::dynamic_shared_base());
  const int t = static_cast<int>(threadIdx.x), other = (t + 32) % 64;
  ptx::cp_async_16(s + 4 * t, tile0 + 4 * t, true);
  ptx::cp_async_commit();
  ptx::cp_async_wait<0>();
  __syncthreads();
  out_now[t] = s[4 * other];
  if (kBarrier) __syncthreads();
  ptx::cp_async_16(s + 4 * t, tile1 + 4 * t, true);
  ptx::cp_async_commit();
  __syncthreads();
  ptx::cp_async_wait<0>();
  __syncthreads();
  out_next[t] = s[4 * other];
}

TEST(Emulator, CpAsyncLandingAtIssueCatchesAnEarlyPrefetch) {
  std::vector<float> tile0(256), tile1(256), now(64), next(64);
  for (int i = 0; i < 256; ++i) tile0[i] = static_cast<float>(i), tile1[i] = static_cast<float>(1000 + i);
  auto run = [&](auto kernel) {
    emu::launch(kernel, dim3(1), dim3(64), 256 * sizeof(float), tile0.data(), tile1.data(), now.data(), next.data());
  };
  emu::set_seed(3);
  emu::set_copy_landing(emu::CopyLanding::at_issue);
  run(prefetch_into_stage<false>);
  int early = 0;
  for (int t = 0; t < 64; ++t) early += now[t] == tile1[4 * ((t + 32) % 64)];
  EXPECT_GT(early, 0);
  for (auto landing : {emu::CopyLanding::at_issue, emu::CopyLanding::at_wait, emu::CopyLanding::per_block}) {
    emu::set_copy_landing(landing);
    run(prefetch_into_stage<true>);
    for (int t = 0; t < 64; ++t) {
      EXPECT_EQ(now[t], tile0[4 * ((t + 32) % 64)]) << t;
      EXPECT_EQ(next[t], tile1[4 * ((t + 32) % 64)]) << t;
    }
  }
  emu::set_copy_landing(emu::CopyLanding::per_block);
}

// ---- (4) a missing __syncthreads: thread i writes shared[i] and reads shared[(i + 32) % 64] (the other warp's).
template <bool kBarrier>
__global__ void rotate_through_shared(const float* in, float* out) {
  float* s = reinterpret_cast<float*>(ptx::dynamic_shared_base());
  const int t = static_cast<int>(threadIdx.x);
  s[t] = in[t];
  if (kBarrier) __syncthreads();
  out[t] = s[(t + 32) % 64];
}

TEST(Emulator, MissingBarrierReadsPoison) {
  std::vector<float> in(64), out(64);
  for (int i = 0; i < 64; ++i) in[i] = static_cast<float>(i);
  emu::set_seed(7);
  emu::launch(rotate_through_shared<false>, dim3(1), dim3(64), 64 * sizeof(float), in.data(), out.data());
  int poisoned = 0;
  for (float x : out) poisoned += std::isnan(x);
  EXPECT_GT(poisoned, 0);
  emu::launch(rotate_through_shared<true>, dim3(1), dim3(64), 64 * sizeof(float), in.data(), out.data());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[i], in[(i + 32) % 64]) << i;
}

// ---- (5) shuffles and votes vs CUDA's definitions, on 2 warps.
constexpr int kShuffleOutputs = 11;
__device__ int lane_value(int warp, int lane) { return 1000 * warp + 37 * lane - 400; }

__global__ void shuffles_and_votes(int* out, double* wide) {
  const int t = static_cast<int>(threadIdx.x), lane = t % 32, warp = t / 32, v = lane_value(warp, lane);
  int* o = out + kShuffleOutputs * t;
  o[0] = __shfl_sync(0xffffffffu, v, (lane * 7 + 3) % 32);
  o[1] = __shfl_sync(0xffffffffu, v, 5, 8);
  o[2] = __shfl_up_sync(0xffffffffu, v, 3, 16);
  o[3] = __shfl_down_sync(0xffffffffu, v, 5);
  o[4] = __shfl_xor_sync(0xffffffffu, v, 6);
  o[5] = __shfl_xor_sync(0xffffffffu, v, 12, 8);
  o[6] = static_cast<int>(__ballot_sync(0xffffffffu, v % 3 == 0));
  o[7] = __any_sync(0xffffffffu, warp == 1 && lane == 17);
  o[8] = __all_sync(0xffffffffu, v > -400);
  // Two half-warp collectives at once, one per branch, each with its own mask.
  if (lane < 16)
    o[9] = __shfl_down_sync(0x0000ffffu, v, 1, 16);
  else
    o[9] = __shfl_down_sync(0xffff0000u, v, 2, 16);
  __syncwarp();
  o[10] = static_cast<int>(__ballot_sync(lane < 16 ? 0x0000ffffu : 0xffff0000u, lane % 2 == 1));
  wide[t] = __shfl_xor_sync(0xffffffffu, 0.1 * v, 1);
}

TEST(Emulator, ShufflesAndVotesMatchTheirDefinitions) {
  std::vector<int> out(64 * kShuffleOutputs);
  std::vector<double> wide(64);
  emu::launch(shuffles_and_votes, dim3(1), dim3(64), 0, out.data(), wide.data());
  for (int warp = 0; warp < 2; ++warp) {
    unsigned ballot = 0;
    bool all_positive = true;
    for (int lane = 0; lane < 32; ++lane) {
      ballot |= (lane_value(warp, lane) % 3 == 0 ? 1u : 0u) << lane;
      all_positive = all_positive && lane_value(warp, lane) > -400;
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int* o = out.data() + kShuffleOutputs * (32 * warp + lane);
      auto v = [&](int l) { return lane_value(warp, l); };
      EXPECT_EQ(o[0], v((lane * 7 + 3) % 32)) << lane;
      EXPECT_EQ(o[1], v((lane / 8) * 8 + 5)) << lane;                          // srcLane within the 8-lane segment
      EXPECT_EQ(o[2], lane % 16 >= 3 ? v(lane - 3) : v(lane)) << lane;         // below the segment start: own value
      EXPECT_EQ(o[3], lane + 5 < 32 ? v(lane + 5) : v(lane)) << lane;
      EXPECT_EQ(o[4], v(lane ^ 6)) << lane;
      EXPECT_EQ(o[5], (lane ^ 12) < (lane / 8) * 8 + 8 ? v(lane ^ 12) : v(lane)) << lane;   // later segment: own
      EXPECT_EQ(static_cast<unsigned>(o[6]), ballot) << lane;
      EXPECT_EQ(o[7], warp == 1 ? 1 : 0) << lane;
      EXPECT_EQ(o[8], all_positive ? 1 : 0) << lane;
      const int delta = lane < 16 ? 1 : 2;
      EXPECT_EQ(o[9], lane % 16 + delta < 16 ? v(lane + delta) : v(lane)) << lane;
      EXPECT_EQ(static_cast<unsigned>(o[10]), lane < 16 ? 0x0000aaaau : 0xaaaa0000u) << lane;
      EXPECT_EQ(wide[32 * warp + lane], 0.1 * v(lane ^ 1)) << lane;
    }
  }
}

// ---- launch geometry: every thread of a 3-D grid of 3-D blocks runs once with its own indices; dynamic shared
// memory is fresh (0xFF) in every block.
__global__ void geometry(int* visits, int* fresh) {
  const int block = static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const int thread = static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  const int threads = static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
  unsigned char* s = ptx::dynamic_shared_base();
  if (s[thread] != 0xff) fresh[block] = 0;
  __syncthreads();
  s[thread] = 0;
  atomicAdd(visits + block * threads + thread, 1);
}

TEST(Emulator, LaunchGeometryAndFreshSharedMemory) {
  const dim3 grid(3, 2, 2), block(4, 2, 8);
  std::vector<int> visits(12 * 64, 0), fresh(12, 1);
  emu::launch(geometry, grid, block, 64, visits.data(), fresh.data());
  for (int v : visits) EXPECT_EQ(v, 1);
  for (int f : fresh) EXPECT_EQ(f, 1);
}

// ---- __syncthreads_count / _and / _or over 96 threads, twice in a row (the second barrier's counts are its own).
__global__ void barrier_votes(int* out) {
  const int t = static_cast<int>(threadIdx.x);
  const int count = __syncthreads_count(t % 3 == 0);
  const int all = __syncthreads_and(t < 200);
  const int any = __syncthreads_or(t == 95);
  const int none = __syncthreads_or(0);
  out[4 * t] = count, out[4 * t + 1] = all, out[4 * t + 2] = any, out[4 * t + 3] = none;
}

TEST(Emulator, BarrierVotesCountTheirOwnBarrier) {
  std::vector<int> out(4 * 96, -1);
  emu::launch(barrier_votes, dim3(1), dim3(96), 0, out.data());
  for (int t = 0; t < 96; ++t) {
    EXPECT_EQ(out[4 * t], 32) << t;
    EXPECT_EQ(out[4 * t + 1], 1) << t;
    EXPECT_EQ(out[4 * t + 2], 1) << t;
    EXPECT_EQ(out[4 * t + 3], 0) << t;
  }
}

// ---- the shim's bf16: round to nearest, ties to even; overflow to infinity; NaN stays NaN.
TEST(Emulator, Bf16ConversionRoundsToNearestEven) {
  const float ulp = std::ldexp(1.f, -7);   // bf16 spacing in [1, 2)
  EXPECT_EQ(float(__float2bfloat16_rn(1.f + ulp / 2)), 1.f);                          // tie, even below
  EXPECT_EQ(float(__float2bfloat16_rn(1.f + 1.5f * ulp)), 1.f + 2 * ulp);             // tie, even above
  EXPECT_EQ(float(__float2bfloat16_rn(1.f + ulp / 2 + std::ldexp(1.f, -20))), 1.f + ulp);
  EXPECT_EQ(float(__float2bfloat16_rn(-1.f - 0.4f * ulp)), -1.f);
  EXPECT_TRUE(std::isinf(float(__float2bfloat16_rn(std::numeric_limits<float>::max()))));
  EXPECT_TRUE(std::isnan(float(__float2bfloat16_rn(std::numeric_limits<float>::quiet_NaN()))));
  const __nv_bfloat162 pair = __floats2bfloat162_rn(0.5f, -3.f);
  EXPECT_EQ(ptx::pack_bf16(0.5f, -3.f), pack(pair.x, pair.y));
  EXPECT_EQ(__low2float(pair), 0.5f);
  EXPECT_EQ(__high2float(pair), -3.f);
}

// ---- (6) aborts with a message.
__global__ void early_exit_before_barrier(float* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1.f;
}
__global__ void divergent_collectives(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane < 16)
    out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1);
  else
    out[lane] = static_cast<int>(__ballot_sync(0xffffffffu, lane > 20));
}
__global__ void shuffle_outside_mask(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane < 16) out[lane] = __shfl_down_sync(0x0000ffffu, lane, 1);   // width 32: lane 15 reads lane 16
}
__global__ void misaligned_ldmatrix(uint32_t* out) {
  uint32_t r[4];
  ptx::ldmatrix_x4(r, ptx::dynamic_shared_base() + 16 * (threadIdx.x % 16) + 8);
  out[threadIdx.x] = r[0];
}
__global__ void ldmatrix_from_global(const bf16* global, uint32_t* out) {
  uint32_t r[2];
  ptx::ldmatrix_x2(r, global + 8 * (threadIdx.x % 16));
  out[threadIdx.x] = r[0];
}
__global__ void misaligned_cp_async(const float* src) {
  ptx::cp_async_16(ptx::dynamic_shared_base() + 16 * threadIdx.x, src + 1, true);
}

TEST(EmulatorDeathTest, DeadlockAborts) {
  std::vector<float> out(64);
  EXPECT_DEATH(emu::launch(early_exit_before_barrier, dim3(1), dim3(64), 0, out.data()),
               "deadlock in block \\(0,0,0\\).*63 wait at __syncthreads.*1 have exited");
}
TEST(EmulatorDeathTest, DivergentWarpCollectiveAborts) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(divergent_collectives, dim3(1), dim3(32), 0, out.data()), "divergent warp collective");
}
TEST(EmulatorDeathTest, ShuffleFromLaneOutsideMaskAborts) {
  std::vector<int> out(32);
  EXPECT_DEATH(emu::launch(shuffle_outside_mask, dim3(1), dim3(32), 0, out.data()),
               "reads lane 16, which is not in mask 0x0000ffff");
}
TEST(EmulatorDeathTest, BadLdmatrixAddressesAbort) {
  std::vector<uint32_t> out(32);
  EXPECT_DEATH(emu::launch(misaligned_ldmatrix, dim3(1), dim3(32), 512, out.data()), "not 16-byte aligned");
  bf16* global = nullptr;
  ASSERT_EQ(cudaMalloc(&global, 256 * sizeof(bf16)), cudaSuccess);
  EXPECT_DEATH(emu::launch(ldmatrix_from_global, dim3(1), dim3(32), 0, global, out.data()), "global, not shared");
  EXPECT_EQ(cudaFree(global), cudaSuccess);
}
TEST(EmulatorDeathTest, MisalignedCpAsyncAborts) {
  std::vector<float> src(64);
  EXPECT_DEATH(emu::launch(misaligned_cp_async, dim3(1), dim3(4), 64, src.data()), "not 16-byte aligned");
}
TEST(EmulatorDeathTest, OversizedDynamicSharedMemoryAborts) {
  std::vector<float> out(64);
  EXPECT_DEATH(emu::launch(rotate_through_shared<true>, dim3(1), dim3(64), 64 * 1024, out.data(), out.data()),
               "cudaFuncSetAttribute");
}

}  // namespace
