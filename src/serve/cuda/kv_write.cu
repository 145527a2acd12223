// kv_write: the scatter of a step's new K/V rows into the paged device pool (see kv_write.h).
#include "core/error.h"
#include "cuda/common.cuh"
#include "cuda/grid_stride.cuh"
#include "serve/cuda/kv_write.h"

namespace stepwise::cuda {
namespace {

// Thread mapping: one thread per element i = r * D + d of the new rows (grid-stride over N * D); it copies k and v
// element d of row r to pool row dst_rows[r]. Rows never overlap within a step (each token has its own slot).
template <class T>
__global__ void kv_write_kernel(T* __restrict__ k_pool, T* __restrict__ v_pool, const T* __restrict__ k_rows,
                                const T* __restrict__ v_rows, const int32_t* __restrict__ dst_rows, int64_t N,
                                int64_t D, int64_t pool_rows) {
  for (int64_t i = global_thread_index(); i < N * D; i += global_thread_count()) {
    const int64_t r = i / D, d = i - r * D;
    const int64_t dst = dst_rows[r];
    if (dst < 0 || dst >= pool_rows) continue;
    k_pool[dst * D + d] = k_rows[i];
    v_pool[dst * D + d] = v_rows[i];
  }
}

}  // namespace

template <class T>
void kv_write(T* k_pool, T* v_pool, const T* k_rows, const T* v_rows, const int32_t* dst_rows, int64_t N, int64_t D,
              int64_t pool_rows, cudaStream_t stream) {
  if (N < 0 || D < 0 || pool_rows < 0)
    fail("cuda::kv_write: negative size (N ", N, ", D ", D, ", rows ", pool_rows, ")");
  if (N == 0 || D == 0) return;
  if (!k_pool || !v_pool || !k_rows || !v_rows || !dst_rows) fail("cuda::kv_write: null pointer");
  kv_write_kernel<<<grid_stride_blocks(N * D), kElementwiseThreads, 0, stream>>>(k_pool, v_pool, k_rows, v_rows,
                                                                               dst_rows, N, D, pool_rows);
  STEPWISE_CUDA_LAUNCH_CHECK("kv_write_kernel");
}

template void kv_write<float>(float*, float*, const float*, const float*, const int32_t*, int64_t, int64_t, int64_t,
                              cudaStream_t);
template void kv_write<bf16>(bf16*, bf16*, const bf16*, const bf16*, const int32_t*, int64_t, int64_t, int64_t,
                             cudaStream_t);

}  // namespace stepwise::cuda
