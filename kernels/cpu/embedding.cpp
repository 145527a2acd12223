// CPU reference of the token embedding: forward gathers rows of the table, backward scatter-adds dout into dtable.
// The backward is split over column blocks (not rows) so repeated ids never race and sums keep a fixed order.
#include <algorithm>
#include <cstring>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

template <class T>
static void check_embedding_ids(const EmbeddingParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  require_nonnegative(p.C, op, "C");
  require_nonnegative(p.V, op, "V");
  if (p.N > 0) require_pointer(p.ids, op, "ids");
  for (int64_t n = 0; n < p.N; ++n)
    if (p.ids[n] < 0 || p.ids[n] >= p.V) kernel_fail(op, "ids[", n, "] = ", p.ids[n], " is outside [0, V = ", p.V, ")");
}

template <class T>
void embedding_forward(const EmbeddingParams<T>& p) {
  check_embedding_ids(p, "embedding_forward");
  if (p.N == 0 || p.C == 0) return;
  require_pointer(p.out, "embedding_forward", "out");
  require_pointer(p.table, "embedding_forward", "table");
#pragma omp parallel for if (parallel_worth(p.N * p.C)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n)  // out[n] (C) = table[ids[n]] (C)
    std::memcpy(p.out + n * p.C, p.table + static_cast<int64_t>(p.ids[n]) * p.C, sizeof(T) * p.C);
}

template <class T>
void embedding_backward(const EmbeddingParams<T>& p) {
  check_embedding_ids(p, "embedding_backward");
  if (p.N == 0 || p.C == 0) return;
  require_pointer(p.dtable, "embedding_backward", "dtable");
  require_pointer(p.dout, "embedding_backward", "dout");
  constexpr int64_t kBlock = 64;  // columns per task
  const int64_t blocks = (p.C + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(p.N * p.C)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kBlock, c1 = std::min(p.C, c0 + kBlock);
    for (int64_t n = 0; n < p.N; ++n) {
      T* dst = p.dtable + static_cast<int64_t>(p.ids[n]) * p.C;
      const T* src = p.dout + n * p.C;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template void embedding_forward<float>(const EmbeddingParams<float>&);
template void embedding_forward<double>(const EmbeddingParams<double>&);
template void embedding_backward<float>(const EmbeddingParams<float>&);
template void embedding_backward<double>(const EmbeddingParams<double>&);

}  // namespace stepwise::cpu
