// Per-layer wait times of Attention-FFN disaggregation, recorded on the attention side: its own waits for FFN results,
// and the FFN workers' waits for work, which arrive with each FFN result (so they count across MPI processes too).
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

namespace stepwise {

class AfdStats {
 public:
  explicit AfdStats(int64_t layers)
      : attn_wait_(static_cast<size_t>(layers), 0.0), ffn_wait_(static_cast<size_t>(layers), 0.0) {}
  void add_attention_wait(int64_t layer, double seconds) { add(attn_wait_, layer, seconds); }
  void add_ffn_wait(int64_t layer, double seconds) { add(ffn_wait_, layer, seconds); }
  std::vector<double> attention_wait() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attn_wait_;
  }
  std::vector<double> ffn_wait() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ffn_wait_;
  }

 private:
  void add(std::vector<double>& v, int64_t layer, double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    if (layer >= 0 && layer < static_cast<int64_t>(v.size())) v[static_cast<size_t>(layer)] += seconds;
  }
  mutable std::mutex mu_;
  std::vector<double> attn_wait_, ffn_wait_;   // [layer] seconds
};

}  // namespace stepwise
