// The Step-3 parameter list (names, shapes, flags) and the ParamTable arena built from it.
#include "model/param_table.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace stepwise {

std::vector<ParamSpec> step3_param_specs(const Step3Config& cfg, bool score_head) {
  const int64_t C = cfg.hidden_size, V = cfg.vocab_size, H = cfg.num_attention_heads, D = cfg.head_dim;
  const int64_t Q = cfg.share_q_dim, F = cfg.intermediate_size, E = cfg.moe_num_experts;
  const int64_t Fm = cfg.moe_intermediate_size, Fs = cfg.share_expert_dim, L = cfg.num_hidden_layers;
  const double std_in = 0.02;
  const double std_out = 0.02 / std::sqrt(2.0 * static_cast<double>(L));   // residual-branch outputs
  const std::vector<bool> moe = cfg.moe_layer_mask();

  std::vector<ParamSpec> specs;
  int64_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, int64_t layer, ParamSide side, ParamInit init,
                 double init_std, bool decay, bool routed = false) {
    ParamSpec s;
    s.name = std::move(name);
    s.count = 1;
    for (int64_t d : shape) s.count *= d;
    s.shape = std::move(shape);
    s.offset = offset;
    offset += (s.count + kParamAlign - 1) / kParamAlign * kParamAlign;
    s.layer = layer;
    s.side = side;
    s.init = init;
    s.init_std = init_std;
    s.weight_decay = decay;
    s.routed_expert = routed;
    specs.push_back(std::move(s));
  };
  using enum ParamSide;
  auto norm = [&](std::string name, int64_t n, int64_t layer) {
    add(std::move(name), {n}, layer, attention, ParamInit::ones, 0, false);
  };
  auto matrix = [&](std::string name, std::vector<int64_t> shape, int64_t layer, ParamSide side, double sd,
                    bool routed = false) {
    add(std::move(name), std::move(shape), layer, side, ParamInit::normal, sd, true, routed);
  };

  add("model.embed_tokens.weight", {V, C}, -1, attention, ParamInit::normal, std_in, false);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    norm(p + "input_layernorm.weight", C, l);
    matrix(p + "self_attn.q_proj.weight", {Q, C}, l, attention, std_in);
    matrix(p + "self_attn.k_proj.weight", {D, C}, l, attention, std_in);
    matrix(p + "self_attn.v_proj.weight", {D, C}, l, attention, std_in);
    norm(p + "self_attn.inter_norm.weight", Q, l);
    matrix(p + "self_attn.wq.weight", {H * D, Q}, l, attention, std_in);
    matrix(p + "self_attn.o_proj.weight", {C, H * D}, l, attention, std_out);
    norm(p + "post_attention_layernorm.weight", C, l);
    if (!moe[static_cast<size_t>(l)]) {
      matrix(p + "mlp.gate_proj.weight", {F, C}, l, ffn, std_in);
      matrix(p + "mlp.up_proj.weight", {F, C}, l, ffn, std_in);
      matrix(p + "mlp.down_proj.weight", {C, F}, l, ffn, std_out);
    } else {
      matrix(p + "moe.gate.weight", {E, C}, l, attention, std_in);
      matrix(p + "moe.gate_proj.weight", {E, Fm, C}, l, ffn, std_in, true);
      matrix(p + "moe.up_proj.weight", {E, Fm, C}, l, ffn, std_in, true);
      matrix(p + "moe.down_proj.weight", {E, C, Fm}, l, ffn, std_out, true);
      matrix(p + "share_expert.gate_proj.weight", {Fs, C}, l, ffn, std_in);
      matrix(p + "share_expert.up_proj.weight", {Fs, C}, l, ffn, std_in);
      matrix(p + "share_expert.down_proj.weight", {C, Fs}, l, ffn, std_out);
    }
  }
  norm("model.norm.weight", C, -1);
  matrix("lm_head.weight", {V, C}, -1, attention, std_in);
  if (score_head) matrix(kScoreHeadName, {1, C}, -1, attention, std_in);
  return specs;
}

int64_t param_arena_size(const std::vector<ParamSpec>& specs) {
  int64_t end = 0;
  for (const ParamSpec& s : specs)
    if (s.offset != kNotHeld) end = std::max(end, s.offset + (s.count + kParamAlign - 1) / kParamAlign * kParamAlign);
  return end;
}

template <class T>
ParamTable<T>::ParamTable(const Step3Config& cfg, bool with_grad, bool score_head, std::optional<ParamSide> only_side)
    : cfg_(cfg), specs_(step3_param_specs(cfg, score_head)), with_grad_(with_grad), only_side_(only_side) {
  if (only_side) {   // pack the held side's tensors from offset 0
    int64_t offset = 0;
    for (ParamSpec& s : specs_) {
      if (s.side != *only_side) {
        s.offset = kNotHeld;
        continue;
      }
      s.offset = offset;
      offset += (s.count + kParamAlign - 1) / kParamAlign * kParamAlign;
    }
  }
  for (size_t i = 0; i < specs_.size(); ++i) index_.emplace(specs_[i].name, i);
  const int64_t n = param_arena_size(specs_);
  values_.assign(static_cast<size_t>(n), T(0));
  if (with_grad) grads_.assign(static_cast<size_t>(n), T(0));
}

template <class T>
void ParamTable<T>::fail_layout_mismatch(int64_t other_size) const {
  fail("ParamTable::copy_values_from: the tables differ in layout (arena ", other_size, " vs ", arena_size(),
       " elements): same config and AFD side needed");
}

template <class T>
int64_t ParamTable<T>::num_params() const {
  int64_t n = 0;
  for (const auto& s : specs_)
    if (holds(s)) n += s.count;
  return n;
}

template <class T>
const ParamSpec* ParamTable<T>::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &specs_[it->second];
}

template <class T>
const ParamSpec& ParamTable<T>::spec(std::string_view name) const {
  const ParamSpec* s = find(name);
  if (!s) fail("unknown parameter tensor '", name, "' for this Step3 configuration");
  return *s;
}

template <class T>
void ParamTable<T>::init(uint64_t seed) {
  const int64_t count = static_cast<int64_t>(specs_.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < count; ++i) {
    const ParamSpec& s = specs_[static_cast<size_t>(i)];
    if (!holds(s)) continue;
    T* w = values_.data() + s.offset;
    if (s.init == ParamInit::ones) {
      for (int64_t j = 0; j < s.count; ++j) w[j] = T(1);
      continue;
    }
    std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(i)};
    std::mt19937_64 rng(seq);
    std::normal_distribution<double> normal(0.0, s.init_std);
    for (int64_t j = 0; j < s.count; ++j) w[j] = static_cast<T>(normal(rng));
  }
}

template <class T>
void ParamTable<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template class ParamTable<float>;
template class ParamTable<double>;

}  // namespace stepwise
