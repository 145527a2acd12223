// One plain AdamW step over every tensor of a ParamTable (the CPU kernel, moments in two arenas laid out like the
// parameters), for model tests that train a small model without the trainer library.
#pragma once
#include <vector>

#include "model/param_table.h"
#include "ops.h"

namespace stepwise::test {

struct AdamWMoments {
  std::vector<float> m, v;
  explicit AdamWMoments(const ParamTable<float>& p)
      : m(static_cast<size_t>(p.arena_size())), v(static_cast<size_t>(p.arena_size())) {}
};

// Applies step `step` (1-based) with learning rate lr; weight decay only on tensors marked for it.
inline void adamw_step(ParamTable<float>& p, AdamWMoments& moments, int step, float lr, float weight_decay = 0.0f) {
  for (const ParamSpec& s : p.specs()) {
    AdamWParams a;
    a.param = p.value(s);
    a.m = moments.m.data() + s.offset;
    a.v = moments.v.data() + s.offset;
    a.grad = p.grad(s);
    a.n = s.count;
    a.step = step;
    a.lr = lr;
    a.weight_decay = s.weight_decay ? weight_decay : 0.0f;
    cpu::adamw_update(a);
  }
}

}  // namespace stepwise::test
