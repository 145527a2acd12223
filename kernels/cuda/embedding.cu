// CUDA token embedding: forward gathers table rows into out (T), backward scatter-adds dout rows into the fp32
// dtable with atomicAdd (repeated ids add in an unspecified order, so sums may differ in the last bits run to run).
// Ids are device data and cannot be checked on the host: an id outside [0, V) gives a NaN output row (forward) and is
// skipped (backward), so a bad id surfaces as a non-finite loss instead of an out-of-bounds access.
#include <cmath>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/dense.h"
#include "cuda/grid_stride.cuh"

namespace stepwise::cuda {
namespace {

// Thread mapping: one thread per output element i = n * C + c (grid-stride loop over N * C).
template <class T>
__global__ void embedding_forward_kernel(T* __restrict__ out, const T* __restrict__ table,
                                         const int32_t* __restrict__ ids, int64_t N, int64_t C, int64_t V) {
  for (int64_t i = global_thread_index(); i < N * C; i += global_thread_count()) {
    const int64_t n = i / C, c = i - n * C;
    const int32_t id = ids[n];
    out[i] = (id >= 0 && id < V) ? table[static_cast<int64_t>(id) * C + c] : from_float<T>(NAN);
  }
}

// Thread mapping: one thread per dout element i = n * C + c; dtable[ids[n], c] += dout[n, c] atomically.
template <class T>
__global__ void embedding_backward_kernel(float* __restrict__ dtable, const T* __restrict__ dout,
                                          const int32_t* __restrict__ ids, int64_t N, int64_t C, int64_t V) {
  for (int64_t i = global_thread_index(); i < N * C; i += global_thread_count()) {
    const int64_t n = i / C, c = i - n * C;
    const int32_t id = ids[n];
    if (id >= 0 && id < V) atomicAdd(dtable + static_cast<int64_t>(id) * C + c, to_float(dout[i]));
  }
}

template <class T>
bool check_embedding(const EmbeddingParams<T, float>& p, const char* op) {
  cpu::require_nonnegative(p.N, op, "N");
  cpu::require_nonnegative(p.C, op, "C");
  cpu::require_nonnegative(p.V, op, "V");
  if (p.N == 0 || p.C == 0) return false;
  if (p.V == 0) cpu::kernel_fail(op, "V = 0 with N = ", p.N, " ids to look up");
  cpu::require_pointer(p.ids, op, "ids");
  return true;
}

}  // namespace

template <class T>
void embedding_forward(const EmbeddingParams<T, float>& p, cudaStream_t stream) {
  if (!check_embedding(p, "cuda::embedding_forward")) return;
  cpu::require_pointer(p.out, "cuda::embedding_forward", "out");
  cpu::require_pointer(p.table, "cuda::embedding_forward", "table");
  embedding_forward_kernel<<<grid_stride_blocks(p.N * p.C), kElementwiseThreads, 0, stream>>>(p.out, p.table, p.ids,
                                                                                              p.N, p.C, p.V);
  STEPWISE_CUDA_LAUNCH_CHECK("embedding_forward_kernel");
}

template <class T>
void embedding_backward(const EmbeddingParams<T, float>& p, cudaStream_t stream) {
  if (!check_embedding(p, "cuda::embedding_backward")) return;
  cpu::require_pointer(p.dtable, "cuda::embedding_backward", "dtable");
  cpu::require_pointer(p.dout, "cuda::embedding_backward", "dout");
  embedding_backward_kernel<<<grid_stride_blocks(p.N * p.C), kElementwiseThreads, 0, stream>>>(p.dtable, p.dout,
                                                                                               p.ids, p.N, p.C, p.V);
  STEPWISE_CUDA_LAUNCH_CHECK("embedding_backward_kernel");
}

template void embedding_forward<float>(const EmbeddingParams<float, float>&, cudaStream_t);
template void embedding_forward<bf16>(const EmbeddingParams<bf16, float>&, cudaStream_t);
template void embedding_backward<float>(const EmbeddingParams<float, float>&, cudaStream_t);
template void embedding_backward<bf16>(const EmbeddingParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
