// Tests of the CPU embedding: gather forward, scatter-add backward (repeated ids), float vs double, bad ids.
#include <gtest/gtest.h>

#include <stdexcept>

#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/dense.h"

using namespace stepwise;
using namespace stepwise::testing;

TEST(Embedding, ForwardCopiesTheRowOfEachId) {
  const int64_t N = 5, C = 3, V = 4;
  const std::vector<int32_t> ids = {2, 0, 2, 3, 1};
  std::vector<double> table = random_vector<double>(V * C, 1), out(N * C, -7);
  cpu::embedding_forward<double>({.out = out.data(), .table = table.data(), .ids = ids.data(), .N = N, .C = C, .V = V});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(out[n * C + c], table[ids[n] * C + c]) << n << "," << c;
}

TEST(Embedding, BackwardAccumulatesAndMatchesFiniteDifference) {
  const int64_t N = 9, C = 70, V = 4;  // C > 64 covers two column blocks; ids repeat
  const std::vector<int32_t> ids = {0, 3, 3, 1, 0, 3, 2, 3, 1};
  std::vector<double> table = random_vector<double>(V * C, 2), g = random_vector<double>(N * C, 3), out(N * C);
  auto loss = [&] {
    cpu::embedding_forward<double>({.out = out.data(), .table = table.data(), .ids = ids.data(), .N = N, .C = C, .V = V});
    return dot(out, g);
  };
  const std::vector<double> before = random_vector<double>(V * C, 4);
  std::vector<double> dtable = before;
  cpu::embedding_backward<double>({.dtable = dtable.data(), .dout = g.data(), .ids = ids.data(), .N = N, .C = C, .V = V});
  expect_gradient(loss, table, minus(dtable, before), "embedding dtable");
}

TEST(Embedding, FloatAgreesWithDouble) {
  const int64_t N = 300, C = 96, V = 50;
  const auto ids = random_ids(N, 5, 0, V - 1);
  const auto table = random_vector<double>(V * C, 6), g = random_vector<double>(N * C, 7);
  auto run = [&]<class T>(T) {
    std::vector<T> t = cast_vector<T>(table), gt = cast_vector<T>(g), out(N * C), dtable(V * C, T(0));
    cpu::embedding_forward<T>({.out = out.data(), .table = t.data(), .ids = ids.data(), .N = N, .C = C, .V = V});
    cpu::embedding_backward<T>({.dtable = dtable.data(), .dout = gt.data(), .ids = ids.data(), .N = N, .C = C, .V = V});
    return std::pair(cast_vector<double>(out), cast_vector<double>(dtable));
  };
  const auto [out_f, dtable_f] = run(float{});
  const auto [out_d, dtable_d] = run(double{});
  EXPECT_LT(normalised_error(out_f, out_d), 1e-5);
  EXPECT_LT(normalised_error(dtable_f, dtable_d), 1e-5);
}

TEST(Embedding, RejectsIdOutsideTheVocabulary) {
  const std::vector<int32_t> ids = {1, 4};
  std::vector<float> table(4 * 2), out(2 * 2);
  EXPECT_THROW(cpu::embedding_forward<float>({.out = out.data(), .table = table.data(), .ids = ids.data(), .N = 2, .C = 2,
                                              .V = 4}),
               std::invalid_argument);
}
