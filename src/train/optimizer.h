// AdamW over a whole ParamTable: fp32 moments in two arenas laid out like the parameters, decoupled weight decay
// only on tensors flagged for it, global-norm gradient clipping. State saves to / loads from checkpoint tensors
// named "<param>.exp_avg" and "<param>.exp_avg_sq".
#pragma once
#include <vector>

#include "ckpt/safetensors.h"
#include "model/param_table.h"

namespace stepwise {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(const ParamTable<float>& params, AdamWConfig cfg);

  // Global L2 norm of the gradients (accumulated in double).
  static double grad_norm(const ParamTable<float>& params);
  // Scales gradients so their global norm is at most max_norm (no-op when max_norm <= 0 or norm <= max_norm).
  static void clip(ParamTable<float>& params, double norm, double max_norm);

  // One update with learning rate lr; increments the step counter first (bias correction uses it).
  void step(ParamTable<float>& params, double lr);
  int64_t steps() const { return step_; }
  // The moment arenas (ParamTable layout) and the step counter, for a device optimizer mirroring its state here.
  float* exp_avg() { return m_.data(); }
  float* exp_avg_sq() { return v_.data(); }
  void set_steps(int64_t steps) { step_ = steps; }

  std::vector<TensorToWrite> state_tensors(const ParamTable<float>& params) const;
  void load_state(const SafetensorsFile& file, const ParamTable<float>& params, int64_t steps);

 private:
  AdamWConfig cfg_;
  std::vector<float> m_, v_;  // (arena_size) each
  int64_t step_ = 0;
};

}  // namespace stepwise
