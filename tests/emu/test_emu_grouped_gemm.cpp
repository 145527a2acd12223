// The grouped expert GEMM kernel (kernels/cuda/grouped_gemm.cuh) run on the CPU SIMT emulator against
// stepwise::cpu::grouped_linear_*: its three problems (forward: A and B k-contiguous; dinp: B n-contiguous; dweight:
// A and B not k-contiguous, fp32 +=), bf16 (mma.sync, cp.async pipeline; normalised error < 1e-2) and fp32 (CUDA
// cores; < 1e-5), on fresh random inputs with poisoned outputs and guard elements past every output. Shapes: empty
// experts, experts of one row, dims not multiples of the tiles, unaligned dims and bases (element-wise loads), more
// tiles than blocks (the persistent loop), more than 32 experts (the tile scan's carry).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "cuda/grouped_gemm.cuh"
#include "emu_testing.h"
#include "emulator.h"
#include "ops/moe.h"

namespace stepwise {
namespace {

namespace gg = cuda::grouped_gemm;
using emu_testing::normalized_error;
using emu_testing::random_vector;
using emu_testing::representable;

constexpr int64_t kGuard = 64;   // elements after each output that the kernel must leave alone

// An emulated device allocation of `host` (as T) starting `shift` elements in, followed by kGuard elements of `fill`.
template <class T>
class DeviceArray {
 public:
  template <class U>
  DeviceArray(const std::vector<U>& host, int64_t shift, float fill) : shift_(shift), size_(host.size()) {
    std::vector<T> typed(static_cast<size_t>(shift) + host.size() + kGuard, static_cast<T>(fill));
    for (size_t i = 0; i < host.size(); ++i) typed[static_cast<size_t>(shift) + i] = static_cast<T>(host[i]);
    bytes_ = typed.size() * sizeof(T);
    EXPECT_EQ(cudaMalloc(&base_, bytes_), cudaSuccess);
    cudaMemcpy(base_, typed.data(), bytes_, cudaMemcpyHostToDevice);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(base_); }
  T* data() { return base_ + shift_; }
  // The payload as float; `guard_intact` false when an element past it changed.
  std::vector<float> download(bool* guard_intact, float fill) const {
    std::vector<T> typed(bytes_ / sizeof(T));
    cudaMemcpy(typed.data(), base_, bytes_, cudaMemcpyDeviceToHost);
    std::vector<float> out(size_);
    for (size_t i = 0; i < size_; ++i) out[i] = static_cast<float>(typed[static_cast<size_t>(shift_) + i]);
    *guard_intact = true;
    const float fill_as_t = static_cast<float>(static_cast<T>(fill));
    for (size_t i = static_cast<size_t>(shift_) + size_; i < typed.size(); ++i)
      if (static_cast<float>(typed[i]) != fill_as_t) *guard_intact = false;
    return out;
  }

 private:
  T* base_ = nullptr;
  int64_t shift_;
  size_t size_, bytes_ = 0;
};

// One launch of the kernel on `blocks` persistent blocks (few, so that blocks walk several tiles).
template <class T, bool kRowsInK, bool kAKContig, bool kBKContig>
void run(const gg::Problem& g, int blocks) {
  const auto kernel = gg::grouped_gemm_kernel<T, kRowsInK, kAKContig, kBKContig>;
  const size_t smem = gg::shared_bytes<T, kAKContig, kBKContig>(g.E);
  ASSERT_EQ(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
            cudaSuccess);
  emu::launch(kernel, dim3(blocks), dim3(gg::kBlockThreads<T>), smem, g);
}

struct GroupedCase {
  std::vector<int64_t> rows;   // per expert
  int64_t I, O;
  bool misaligned = false;     // inputs one element past a 16-byte boundary (element-wise loads)
  int blocks = 3;
};

template <class T>
void check(const GroupedCase& c, uint64_t seed) {
  const int64_t E = static_cast<int64_t>(c.rows.size()), I = c.I, O = c.O;
  std::vector<int64_t> offsets(static_cast<size_t>(E + 1), 0);
  std::partial_sum(c.rows.begin(), c.rows.end(), offsets.begin() + 1);
  const int64_t R = offsets[static_cast<size_t>(E)];
  SCOPED_TRACE(testing::Message() << "E=" << E << " R=" << R << " I=" << I << " O=" << O
                                  << " misaligned=" << c.misaligned);
  const int64_t RI = std::max<int64_t>(R * I, 1), RO = std::max<int64_t>(R * O, 1);
  const auto inp = representable<T>(random_vector(RI, seed));
  const auto weight = representable<T>(random_vector(E * O * I, seed + 1));
  const auto dout = representable<T>(random_vector(RO, seed + 2));
  const auto dweight0 = random_vector(E * O * I, seed + 3);

  std::vector<float> want_out(static_cast<size_t>(RO)), want_dinp(static_cast<size_t>(RI));
  std::vector<float> want_dweight = dweight0;
  GroupedLinearParams<float> cp;
  cp.inp = inp.data(), cp.weight = weight.data(), cp.offsets = offsets.data(), cp.E = E, cp.I = I, cp.O = O;
  cp.out = want_out.data(), cp.dout = dout.data(), cp.dinp = want_dinp.data(), cp.dweight = want_dweight.data();
  cpu::grouped_linear_forward(cp);
  cpu::grouped_linear_backward(cp);

  const float nan = std::numeric_limits<float>::quiet_NaN(), sentinel = 1234.f;
  const int64_t shift = c.misaligned ? 1 : 0;
  DeviceArray<T> d_inp(inp, shift, nan), d_weight(weight, shift, nan), d_dout(dout, shift, nan);
  DeviceArray<T> d_out(std::vector<float>(static_cast<size_t>(RO), nan), 0, sentinel);
  DeviceArray<T> d_dinp(std::vector<float>(static_cast<size_t>(RI), nan), 0, sentinel);
  DeviceArray<float> d_dweight(dweight0, 0, sentinel);
  DeviceArray<int64_t> d_offsets(offsets, 0, 0.f);

  GroupedLinearParams<T, float> p;
  p.inp = d_inp.data(), p.weight = d_weight.data(), p.dout = d_dout.data(), p.offsets = d_offsets.data();
  p.out = d_out.data(), p.dinp = d_dinp.data(), p.dweight = d_dweight.data();
  p.E = E, p.I = I, p.O = O;
  run<T, false, true, true>(gg::forward_problem(p), c.blocks);
  run<T, false, true, false>(gg::dinp_problem(p), c.blocks);
  run<T, true, false, false>(gg::dweight_problem(p), c.blocks);

  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-2;
  bool guard = false;
  if (R > 0) {
    EXPECT_LT(normalized_error(d_out.download(&guard, sentinel), want_out), tol) << "out";
    EXPECT_TRUE(guard) << "out written past its end";
    EXPECT_LT(normalized_error(d_dinp.download(&guard, sentinel), want_dinp), tol) << "dinp";
    EXPECT_TRUE(guard) << "dinp written past its end";
  }
  EXPECT_LT(normalized_error(d_dweight.download(&guard, sentinel), want_dweight), tol) << "dweight";
  EXPECT_TRUE(guard) << "dweight written past its end";
}

const GroupedCase kCases[] = {
    {{0, 1, 37, 130, 0, 5}, 40, 72},                 // aligned dims (cp.async), rows not multiples of the tiles
    {{0, 5, 130, 0, 17, 1}, 37, 45},                 // odd dims: element-wise loads, partial chunks, single stores
    {{3, 0, 70, 129}, 48, 40, true},                 // aligned dims, misaligned bases: the element-wise path
    {{150, 3, 0, 200, 1}, 136, 264},                 // several row, column and k tiles per expert
    {{0, 0, 0}, 24, 16},                             // no rows: nothing written, dweight unchanged
    {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
      30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 0},
     16, 24, false, 7},                              // 40 experts: the tile scan's carry past 32
};

TEST(EmuGroupedGemm, Bf16TensorCoresMatchCpu) {
  uint64_t seed = 500;
  for (const GroupedCase& c : kCases) check<cuda::bf16>(c, seed += 7);
}

TEST(EmuGroupedGemm, Fp32CudaCoresMatchCpu) {
  uint64_t seed = 600;
  for (const GroupedCase& c : kCases) check<float>(c, seed += 7);
}

}  // namespace
}  // namespace stepwise
