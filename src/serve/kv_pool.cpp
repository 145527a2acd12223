// KvPool: the block pool, its free list and the per-token writes through a block table.
#include "serve/kv_pool.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace stepwise {

KvPool::KvPool(int64_t num_blocks, int64_t block_size, int64_t layers, int64_t head_dim)
    : num_blocks_(num_blocks), block_size_(block_size), layers_(layers), head_dim_(head_dim),
      layer_stride_(num_blocks * block_size * head_dim) {
  if (num_blocks <= 0 || block_size <= 0 || layers <= 0 || head_dim < 0)
    fail("KvPool: blocks ", num_blocks, ", block size ", block_size, ", layers ", layers, " must be positive and ",
         "head_dim ", head_dim, " >= 0");
  k_.assign(static_cast<size_t>(layers * layer_stride_), 0.0f);
  v_.assign(static_cast<size_t>(layers * layer_stride_), 0.0f);
  free_.resize(static_cast<size_t>(num_blocks));
  for (int64_t i = 0; i < num_blocks; ++i) free_[static_cast<size_t>(i)] = static_cast<int32_t>(num_blocks - 1 - i);
}

std::vector<int32_t> KvPool::allocate(int64_t n) {
  if (n < 0 || n > blocks_free()) return {};
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = free_.back();
    free_.pop_back();
  }
  return out;
}

void KvPool::release(std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    if (b < 0 || b >= num_blocks_) fail("KvPool::release: block id ", b, " outside the pool of ", num_blocks_);
    free_.push_back(b);
  }
  blocks.clear();
  // keep allocation order deterministic: lowest free ids are handed out first
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
}

void KvPool::write(int64_t layer, const std::vector<int32_t>& table, int64_t pos0, int64_t n, const float* k_rows,
                   const float* v_rows) {
  if (layer < 0 || layer >= layers_) fail("KvPool::write: layer ", layer, " outside [0, ", layers_, ")");
  if (blocks_for(pos0 + n) > static_cast<int64_t>(table.size()))
    fail("KvPool::write: positions up to ", pos0 + n, " exceed the ", table.size(), " reserved blocks");
  float* kl = k(layer);
  float* vl = v(layer);
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(head_dim_);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = pos0 + i;
    const int64_t off = (table[static_cast<size_t>(p / block_size_)] * block_size_ + p % block_size_) * head_dim_;
    std::memcpy(kl + off, k_rows + i * head_dim_, row_bytes);
    std::memcpy(vl + off, v_rows + i * head_dim_, row_bytes);
  }
}

}  // namespace stepwise
