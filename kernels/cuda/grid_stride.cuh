// Grid sizing for the elementwise and row kernels of the dense, loss and optimizer ops: a 1-D grid of 256-thread
// blocks over n items, capped so huge n use a grid-stride loop (for i = global id; i < n; i += total threads).
#pragma once
#include <cstdint>

#include "cuda/common.cuh"

namespace stepwise::cuda {

constexpr int kElementwiseThreads = 256;

// Blocks for n items at `threads` per block: ceil(n / threads), at most 65536 (every thread then loops).
inline unsigned grid_stride_blocks(int64_t n, int threads = kElementwiseThreads) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65536 ? 65536 : blocks));
}

__device__ __forceinline__ int64_t global_thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

}  // namespace stepwise::cuda
