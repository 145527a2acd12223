// Paged KV cache: one pool of fixed-size blocks (block_size tokens x layers x head_dim, K and V) shared by every
// running sequence, a free list, and per-sequence block tables. Sequences reserve their blocks on admission and give
// them back on finish or cancel; attention reads K/V through the block table (kernels/ops/paged_attention.h).
#pragma once
#include <cstdint>
#include <vector>

namespace stepwise {

class KvPool {
 public:
  // head_dim 0: block bookkeeping only, no host K/V (the CUDA engine keeps them on the device).
  KvPool(int64_t num_blocks, int64_t block_size, int64_t layers, int64_t head_dim);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t blocks_used() const { return num_blocks_ - static_cast<int64_t>(free_.size()); }
  int64_t blocks_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }

  // Takes n blocks off the free list (lowest ids first); empty when fewer than n are free (nothing is taken).
  std::vector<int32_t> allocate(int64_t n);
  void release(std::vector<int32_t>& blocks);   // returns them to the pool and clears `blocks`

  // Layer l's pool of keys / values: (num_blocks, block_size, head_dim).
  float* k(int64_t layer) { return k_.data() + layer * layer_stride_; }
  float* v(int64_t layer) { return v_.data() + layer * layer_stride_; }
  // Writes n rows (n, head_dim) of keys and values for positions pos0 .. pos0+n-1 of a sequence with `table`.
  void write(int64_t layer, const std::vector<int32_t>& table, int64_t pos0, int64_t n, const float* k_rows,
             const float* v_rows);

 private:
  int64_t num_blocks_, block_size_, layers_, head_dim_, layer_stride_;
  std::vector<float> k_, v_;        // (layers, num_blocks, block_size, head_dim)
  std::vector<int32_t> free_;       // free block ids, highest first (allocate pops from the back)
};

}  // namespace stepwise
