// Implementation of the whole-model AdamW (see optimizer.h); the per-tensor arithmetic is kernels' adamw_update.
#include "train/optimizer.h"

#include <cmath>

#include "ops.h"

namespace stepwise {

AdamW::AdamW(const ParamTable<float>& params, AdamWConfig cfg)
    : cfg_(cfg), m_(params.arena_size(), 0.0f), v_(params.arena_size(), 0.0f) {}

double AdamW::grad_norm(const ParamTable<float>& params) {
  return std::sqrt(cpu::sum_squares(params.grad_data(), params.arena_size()));
}

void AdamW::clip(ParamTable<float>& params, double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return;
  cpu::scale_inplace(params.grad_data(), params.arena_size(), static_cast<float>(max_norm / norm));
}

void AdamW::step(ParamTable<float>& params, double lr) {
  ++step_;
  for (const ParamSpec& s : params.specs()) {
    AdamWParams p;
    p.param = params.value(s);
    p.grad = params.grad(s);
    p.m = m_.data() + s.offset;
    p.v = v_.data() + s.offset;
    p.n = s.count;
    p.step = step_;
    p.lr = static_cast<float>(lr);
    p.beta1 = static_cast<float>(cfg_.beta1);
    p.beta2 = static_cast<float>(cfg_.beta2);
    p.eps = static_cast<float>(cfg_.eps);
    p.weight_decay = s.weight_decay ? static_cast<float>(cfg_.weight_decay) : 0.0f;
    cpu::adamw_update(p);
  }
}

std::vector<TensorToWrite> AdamW::state_tensors(const ParamTable<float>& params) const {
  std::vector<TensorToWrite> out;
  for (const ParamSpec& s : params.specs()) {
    out.push_back({s.name + ".exp_avg", DType::f32, s.shape, m_.data() + s.offset});
    out.push_back({s.name + ".exp_avg_sq", DType::f32, s.shape, v_.data() + s.offset});
  }
  return out;
}

void AdamW::load_state(const SafetensorsFile& file, const ParamTable<float>& params, int64_t steps) {
  for (const ParamSpec& s : params.specs()) {
    file.read_f32(s.name + ".exp_avg", s.shape, m_.data() + s.offset);
    file.read_f32(s.name + ".exp_avg_sq", s.shape, v_.data() + s.offset);
  }
  step_ = steps;
}

}  // namespace stepwise
