// CUDA grouped expert linears (one launch for all experts, rows per expert from device offsets) against
// stepwise::cpu::grouped_linear_* on fresh random inputs with poisoned outputs: T = float (CUDA cores) and bf16
// (tensor cores: mma.sync with a cp.async pipeline); empty experts, uneven loads, odd dims (scalar loads), aligned
// dims (vector loads), misaligned bases, multi-tile rows and reductions, step3-mini's expert shapes, and the backward
// with only dinp or only dweight.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "cuda/moe.h"
#include "gpu_testing.h"
#include "ops/moe.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

struct GroupedCase {
  std::vector<int64_t> rows;   // per expert
  int64_t I, O;
  bool misaligned = false;     // shift inp / dout / weight one element off their 16-byte aligned allocations
};

// A device copy of `host` starting `shift` elements into its allocation (the element before is poison).
template <class T>
struct ShiftedBuffer {
  cuda::DeviceBuffer<T> storage;
  int64_t shift;
  ShiftedBuffer(const std::vector<float>& host, int64_t shift_by) : shift(shift_by) {
    std::vector<float> padded(static_cast<size_t>(shift), std::numeric_limits<float>::quiet_NaN());
    padded.insert(padded.end(), host.begin(), host.end());
    if (padded.empty()) padded.push_back(0.f);
    storage = upload<T>(padded);
  }
  T* data() { return storage.data() + shift; }
};

template <class T>
void check_grouped(const GroupedCase& c, uint64_t seed) {
  const int64_t E = static_cast<int64_t>(c.rows.size()), I = c.I, O = c.O;
  std::vector<int64_t> offsets(E + 1, 0);
  std::partial_sum(c.rows.begin(), c.rows.end(), offsets.begin() + 1);
  const int64_t R = offsets[E];
  SCOPED_TRACE(testing::Message() << "E=" << E << " R=" << R << " I=" << I << " O=" << O
                                  << " misaligned=" << c.misaligned);
  // Row-indexed arrays hold at least one element, so that no pointer is null when R = 0.
  const int64_t RI = std::max<int64_t>(R * I, 1), RO = std::max<int64_t>(R * O, 1);
  const auto inp = representable<T>(random_vector(RI, seed));
  const auto weight = representable<T>(random_vector(E * O * I, seed + 1));
  const auto dout = representable<T>(random_vector(RO, seed + 2));
  const auto dweight0 = random_vector(E * O * I, seed + 3);

  std::vector<float> want_out(RO), want_dinp(RI), want_dweight = dweight0;
  GroupedLinearParams<float> cp;
  cp.inp = inp.data(), cp.weight = weight.data(), cp.offsets = offsets.data(), cp.E = E, cp.I = I, cp.O = O;
  cp.out = want_out.data();
  cpu::grouped_linear_forward(cp);
  cp.dout = dout.data(), cp.dinp = want_dinp.data(), cp.dweight = want_dweight.data();
  cpu::grouped_linear_backward(cp);

  const int64_t shift = c.misaligned ? 1 : 0;
  ShiftedBuffer<T> d_inp(inp, shift), d_weight(weight, shift), d_dout(dout, shift);
  cuda::DeviceBuffer<int64_t> d_offsets(offsets);
  auto d_out = poisoned<T>(RO);
  GroupedLinearParams<T, float> p;
  p.inp = d_inp.data(), p.weight = d_weight.data(), p.offsets = d_offsets.data(), p.E = E, p.I = I, p.O = O;
  p.out = d_out.data();
  cuda::grouped_linear_forward(p);
  cuda::device_synchronize();
  if (R > 0) {
    EXPECT_LT(normalized_error(download(d_out), want_out), tolerance<T>()) << "out";
  }

  // backward three ways: both gradients, only dinp, only dweight
  for (const int wanted : {3, 1, 2}) {
    const bool with_dinp = wanted & 1, with_dweight = wanted & 2;
    auto d_dinp = poisoned<T>(RI);
    auto d_dweight = upload<float>(dweight0);
    p.dout = d_dout.data();
    p.dinp = with_dinp ? d_dinp.data() : nullptr;
    p.dweight = with_dweight ? d_dweight.data() : nullptr;
    cuda::grouped_linear_backward(p);
    cuda::device_synchronize();
    if (with_dinp && R > 0) {
      EXPECT_LT(normalized_error(download(d_dinp), want_dinp), tolerance<T>()) << "dinp";
    }
    const std::vector<float> got_dweight = download(d_dweight);
    if (with_dweight)
      EXPECT_LT(normalized_error(got_dweight, want_dweight), tolerance<T>()) << "dweight";
    else
      EXPECT_EQ(got_dweight, dweight0) << "dweight written although null in the params";
  }
}

const GroupedCase kCases[] = {
    {{0, 5, 130, 0, 17, 300, 1}, 37, 45},        // odd dims (scalar loads), empty experts first and in the middle
    {{64, 0, 200, 129}, 64, 96},                  // aligned dims (vector loads), rows not multiples of the tiles
    {{64, 0, 200, 129}, 64, 96, true},            // the same with misaligned bases (scalar fallback)
    {{0, 0, 0}, 40, 24},                          // no rows at all: nothing written, dweight unchanged
    {{2500}, 48, 40},                             // one expert, a long reduction over rows for dweight
    {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
      30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 0},
     136, 72},                                    // 40 experts (more than one warp-scan step), uneven loads
    {{150, 3, 0, 260}, 200, 264},                 // several row and column tiles per expert
    // step3-mini's expert linears (GPU.md): gate / up 1024 -> 704 and down 704 -> 1024, uneven loads around the
    // ~400 rows per expert of the benchmark, an empty expert and a one-row one (the tensor-core pipeline's shapes).
    {{384, 0, 411, 1, 129, 700, 64, 3}, 1024, 704},
    {{384, 0, 411, 1, 129, 700, 64, 3}, 704, 1024},
};

TEST(GroupedLinearCuda, Fp32MatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 300;
  for (const GroupedCase& c : kCases) check_grouped<float>(c, seed += 7);
}

TEST(GroupedLinearCuda, Bf16MatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  uint64_t seed = 400;
  for (const GroupedCase& c : kCases) check_grouped<bf16>(c, seed += 7);
}

}  // namespace
}  // namespace stepwise
