// Writes a step's new keys and values into the device KV pool: row r of k_rows / v_rows (N, D) goes to pool row
// dst_rows[r] = block * block_size + slot of (num_blocks * block_size, D) (the layout PagedAttentionParams reads).
// The destination rows are computed on the host from the block tables (cuda_step_model.cpp). Host-callable; the
// kernel is in kv_write.cu.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace stepwise::cuda {

// All pointers are device pointers. A destination row outside [0, pool_rows) is skipped (a device-side fault cannot
// throw; the paged attention then reads the stale row). Throws on negative sizes; N == 0 or D == 0 is a no-op.
template <class T>
void kv_write(T* k_pool, T* v_pool, const T* k_rows, const T* v_rows, const int32_t* dst_rows, int64_t N, int64_t D,
              int64_t pool_rows, cudaStream_t stream);

}  // namespace stepwise::cuda
