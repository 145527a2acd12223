// Step3Model training path: weight views, the layer pieces (shared with inference; their math is model/layer_forward.h
// and layer_backward.h through CpuBackend), forward over a packed batch with saved activations, backward with
// per-token loss weights, MoE load statistics and loss-free expert bias.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "ops.h"
#include "model/cpu_backend.h"
#include "model/layer_backward.h"
#include "model/layer_binding.h"
#include "model/layer_forward.h"
#include "model/op_params.h"
#include "model/step3_model_impl.h"

namespace stepwise {

// ---------------------------------------------------------------- state set-up

template <class T>
Step3ModelState<T>::Step3ModelState(const Step3Config& c, ModelOptions o, bool with_grad)
    : cfg(c), opts(o), params(c, with_grad, o.score_head, o.only_side) {
  cfg.validate("model config");
  auto ref = [&](const std::string& name) {
    const ParamSpec& s = params.spec(name);
    return TensorRef<T>{params.value(s), params.grad(s)};
  };
  moe_layers = cfg.moe_layers();
  bind_decoder_weights(cfg, ref, embed, final_norm, lm_head, layers);
  if (o.score_head) score = ref(kScoreHeadName);
  const size_t E = static_cast<size_t>(cfg.moe_num_experts);
  expert_bias.assign(moe_layers.size(), std::vector<float>(E, 0.0f));
  expert_load.assign(moe_layers.size(), std::vector<double>(E, 0.0));
}

template <class T>
void Step3ModelState<T>::check_tokens(const int32_t* ids, int64_t n, const char* what) const {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= cfg.vocab_size)
      fail(what, "[", i, "] = ", ids[i], " is outside the vocabulary [0, ", cfg.vocab_size, ")");
}

template <class T>
void Step3ModelState<T>::require_weights(std::optional<ParamSide> side, const char* what) const {
  const std::optional<ParamSide> held = params.only_side();
  if (!held || (side && *side == *held)) return;
  fail("Step3Model::", what, ": this model holds only the ", *held == ParamSide::attention ? "attention" : "FFN",
       " side's weights (ModelOptions::only_side), but ", what, " needs ",
       side ? (*side == ParamSide::attention ? "the attention side's" : "the FFN side's") : "all of them");
}

// ---------------------------------------------------------------- layer pieces

template <class T>
AttentionParams<T> Step3ModelState<T>::attention_params(const LayerActs<T>& a) const {
  return batch_attention_params(a, seg.empty() ? nullptr : seg.data(), B, T_len, cfg);
}

template <class T>
void Step3ModelState<T>::attention_output_and_ffn(const LayerWeights<T>& lw, LayerActs<T>& a, const T* x_in,
                                                  T* x_out, T* tmp_buf, int64_t N, bool record_load) {
  const CpuBackend be;
  const size_t row_bytes = sizeof(T) * static_cast<size_t>(N * cfg.hidden_size);
  std::memcpy(a.x_mid, x_in, row_bytes);
  attention_output(be, lw, static_cast<const T*>(a.att), a.x_mid, a.h2, a.rstd2, tmp_buf, cfg, N);
  std::memcpy(x_out, a.x_mid, row_bytes);
  // MoE router: softmax over all experts, top-k (selection steered by the loss-free bias when enabled)
  RouterParams<T> rp;
  rp.probs = a.probs;
  rp.idx = a.idx;
  rp.weights = a.weights;
  rp.load = a.load;
  rp.aux_loss = a.aux;
  rp.bias = lw.moe && opts.expert_bias ? expert_bias[static_cast<size_t>(lw.moe_index)].data() : nullptr;
  rp.aux_coef = opts.aux_loss_coef;
  ffn_layer_forward(be, lw, a, x_out, tmp_buf, rp, cfg, N);
  if (lw.moe && record_load) {
    auto& load = expert_load[static_cast<size_t>(lw.moe_index)];
    for (int64_t e = 0; e < cfg.moe_num_experts; ++e) load[static_cast<size_t>(e)] = static_cast<double>(a.load[e]);
  }
}

// ---------------------------------------------------------------- Step3Model: training

template <class T>
Step3Model<T>::Step3Model(const Step3Config& cfg, ModelOptions opts, bool with_grad)
    : s_(std::make_unique<Step3ModelState<T>>(cfg, opts, with_grad)) {}

template <class T>
Step3Model<T>::~Step3Model() = default;

template <class T>
const Step3Config& Step3Model<T>::config() const { return s_->cfg; }
template <class T>
ParamTable<T>& Step3Model<T>::params() { return s_->params; }
template <class T>
const ParamTable<T>& Step3Model<T>::params() const { return s_->params; }
template <class T>
ModelOptions& Step3Model<T>::options() { return s_->opts; }

template <class T>
double Step3Model<T>::forward(const TrainBatch& batch) {
  s_->require_weights(std::nullopt, "forward");
  Step3ModelState<T>& s = *s_;
  if (batch.B <= 0 || batch.T <= 0 || !batch.tokens || !batch.targets || !batch.pos)
    fail("Step3Model::forward: batch needs B, T > 0 and tokens, targets, pos");
  const int64_t N = batch.B * batch.T, C = s.cfg.hidden_size, L = s.cfg.num_hidden_layers;
  s.check_tokens(batch.tokens, N, "tokens");
  for (int64_t i = 0; i < N; ++i)
    if (batch.targets[i] != -100 && (batch.targets[i] < 0 || batch.targets[i] >= s.cfg.vocab_size))
      fail("targets[", i, "] = ", batch.targets[i], " is outside the vocabulary [0, ", s.cfg.vocab_size,
           ") and is not -100");
  s.tokens.assign(batch.tokens, batch.tokens + N);
  s.targets.assign(batch.targets, batch.targets + N);
  s.pos.assign(batch.pos, batch.pos + N);
  if (batch.seg) s.seg.assign(batch.seg, batch.seg + N);
  else s.seg.clear();

  // activation arena: sized from N (linear in T), carved in a counting pass and then for real
  const bool reshape = N != s.N || batch.B != s.B;
  s.B = batch.B;
  s.T_len = batch.T;
  s.N = N;
  auto carve_all = [&](Carver<T>& f, Carver<int32_t>& i32, Carver<int64_t>& i64) {
    s.acts.assign(static_cast<size_t>(L), LayerActs<T>{});
    s.resid.assign(static_cast<size_t>(L + 1), nullptr);
    for (auto& r : s.resid) r = f.take(N * C);
    for (int64_t l = 0; l < L; ++l)
      carve_layer_acts(s.acts[static_cast<size_t>(l)], s.cfg, s.layers[static_cast<size_t>(l)].moe, N,
                       batch.B * s.cfg.num_attention_heads * batch.T, true, f, f, i32, i64);
    s.tmp = f.take(N * C);
    s.hf = f.take(N * C);
    s.rstd_f = f.take(N);
    s.lse_f = f.take(N);
    s.loss = f.take(N);
    s.score_out = f.take(N);
  };
  if (reshape || s.act_arena.empty()) {
    Carver<T> f;
    Carver<int32_t> i32;
    Carver<int64_t> i64;
    carve_all(f, i32, i64);
    s.act_arena.assign(static_cast<size_t>(f.used), T(0));
    s.act_ints.assign(static_cast<size_t>(i32.used), 0);
    s.act_offsets.assign(static_cast<size_t>(i64.used), 0);
    f = Carver<T>{s.act_arena.data(), 0};
    i32 = Carver<int32_t>{s.act_ints.data(), 0};
    i64 = Carver<int64_t>{s.act_offsets.data(), 0};
    carve_all(f, i32, i64);
    s.grad_arena.clear();   // re-carved at the next backward
  }

  EmbeddingParams<T> ep;
  ep.out = s.resid[0];
  ep.table = s.embed.w;
  ep.ids = s.tokens.data();
  ep.N = N;
  ep.C = C;
  ep.V = s.cfg.vocab_size;
  cpu::embedding_forward(ep);
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights<T>& lw = s.layers[static_cast<size_t>(l)];
    LayerActs<T>& a = s.acts[static_cast<size_t>(l)];
    const T* x_in = s.resid[static_cast<size_t>(l)];
    attention_inputs(CpuBackend{}, lw, attention_inputs_of(a), x_in, s.pos.data(), s.cfg, N);
    cpu::attention_forward(s.attention_params(a));
    s.attention_output_and_ffn(lw, a, x_in, s.resid[static_cast<size_t>(l + 1)], s.tmp, N, true);
  }
  cpu::rmsnorm_forward(rmsnorm_params(s.hf, s.rstd_f, s.resid[static_cast<size_t>(L)], s.final_norm, N, C,
                               s.cfg.rms_norm_eps));
  LmHeadLossParams<T> lp;
  lp.loss = s.loss;
  lp.lse = s.lse_f;
  lp.h = s.hf;
  lp.weight = s.lm_head.w;
  lp.targets = s.targets.data();
  lp.N = N;
  lp.C = C;
  lp.V = s.cfg.vocab_size;
  cpu::lm_head_loss_forward(lp);
  if (s.score.w)
    for (int64_t i = 0; i < N; ++i) {
      T r = 0;
      for (int64_t c = 0; c < C; ++c) r += s.score.w[c] * s.hf[i * C + c];
      s.score_out[i] = r;
    }

  double total = 0;
  s.num_targets = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (s.targets[static_cast<size_t>(i)] == -100) continue;
    total += static_cast<double>(s.loss[i]);
    ++s.num_targets;
  }
  s.has_forward = true;
  return s.num_targets > 0 ? total / static_cast<double>(s.num_targets) : 0.0;
}

template <class T>
int64_t Step3Model<T>::num_target_tokens() const { return s_->num_targets; }

template <class T>
const T* Step3Model<T>::token_loss() const { return s_->loss; }

template <class T>
std::vector<double> Step3Model<T>::token_logprobs() const {
  std::vector<double> out(static_cast<size_t>(s_->N), 0.0);
  for (int64_t i = 0; i < s_->N; ++i)
    if (s_->targets[static_cast<size_t>(i)] != -100) out[static_cast<size_t>(i)] = -static_cast<double>(s_->loss[i]);
  return out;
}

template <class T>
const T* Step3Model<T>::scores() const {
  if (!s_->score.w) fail("Step3Model::scores: the model has no score head (ModelOptions::score_head)");
  return s_->score_out;
}

template <class T>
double Step3Model<T>::aux_loss() const {
  double total = 0;
  if (!s_->has_forward) return 0;
  for (const auto& a : s_->acts)
    if (a.aux) total += static_cast<double>(a.aux[0]);
  return total;
}

template <class T>
void Step3Model<T>::backward(const T* dloss, double aux_weight, const T* dscore) {
  Step3ModelState<T>& s = *s_;
  if (!s.has_forward) fail("Step3Model::backward called without a forward");
  if (dscore && !s.score.w) fail("Step3Model::backward: dscore given but the model has no score head");
  if (!s.params.has_grad()) fail("Step3Model::backward: the model was built without gradients");
  const int64_t N = s.N, C = s.cfg.hidden_size, L = s.cfg.num_hidden_layers;
  if (s.grad_arena.empty()) {
    Carver<T> count;
    carve_grad_scratch(s.gs, s.cfg, N, count, count);
    s.grad_arena.assign(static_cast<size_t>(count.used), T(0));
    Carver<T> real{s.grad_arena.data(), 0};
    carve_grad_scratch(s.gs, s.cfg, N, real, real);
  }
  // LM head + final norm
  LmHeadLossParams<T> lp;
  lp.lse = s.lse_f;
  lp.h = s.hf;
  lp.weight = s.lm_head.w;
  lp.targets = s.targets.data();
  lp.dh = s.gs.dhf;
  lp.dweight = s.lm_head.g;
  lp.dloss = dloss;
  lp.N = N;
  lp.C = C;
  lp.V = s.cfg.vocab_size;
  if (dloss)
    cpu::lm_head_loss_backward(lp);
  else
    std::fill(s.gs.dhf, s.gs.dhf + N * C, T(0));
  if (dscore)   // r[n] = w . hf[n]:  dhf[n] += dscore[n] w,  dw += sum_n dscore[n] hf[n]
    for (int64_t i = 0; i < N; ++i) {
      const T d = dscore[i];
      if (d == T(0)) continue;
      for (int64_t c = 0; c < C; ++c) {
        s.gs.dhf[i * C + c] += d * s.score.w[c];
        s.score.g[c] += d * s.hf[i * C + c];
      }
    }
  cpu::rmsnorm_backward(rmsnorm_backward_params(s.gs.dx, false, static_cast<const T*>(s.gs.dhf),
                                                static_cast<const T*>(s.resid[static_cast<size_t>(L)]),
                                                static_cast<const T*>(s.rstd_f), s.final_norm, N, C,
                                                s.cfg.rms_norm_eps));
  for (int64_t l = L - 1; l >= 0; --l) {
    const LayerWeights<T>& lw = s.layers[static_cast<size_t>(l)];
    const LayerActs<T>& a = s.acts[static_cast<size_t>(l)];
    // gs.dx: d(x_out) -> d(x_mid) -> d(x_in)
    ffn_layer_backward(CpuBackend{}, lw, a, s.gs, a.load, s.cfg, N, s.opts.aux_loss_coef * aux_weight);
    attention_layer_backward(CpuBackend{}, lw, a, s.gs, s.attention_params(a), s.pos.data(),
                             static_cast<const T*>(s.resid[static_cast<size_t>(l)]), s.cfg, N);
  }
  EmbeddingParams<T> ep;
  ep.dtable = s.embed.g;
  ep.dout = s.gs.dx;
  ep.ids = s.tokens.data();
  ep.N = N;
  ep.C = C;
  ep.V = s.cfg.vocab_size;
  cpu::embedding_backward(ep);
}

template <class T>
void Step3Model<T>::backward_mean() {
  const int64_t N = s_->N;
  const T w = s_->num_targets > 0 ? static_cast<T>(1.0 / static_cast<double>(s_->num_targets)) : T(0);
  std::vector<T> dloss(static_cast<size_t>(N), T(0));
  for (int64_t i = 0; i < N; ++i)
    if (s_->targets[static_cast<size_t>(i)] != -100) dloss[static_cast<size_t>(i)] = w;
  backward(dloss.data(), 1.0);
}

// ---------------------------------------------------------------- MoE balancing

template <class T>
const std::vector<int64_t>& Step3Model<T>::moe_layers() const { return s_->moe_layers; }

template <class T>
const std::vector<std::vector<double>>& Step3Model<T>::expert_load() const { return s_->expert_load; }

template <class T>
std::vector<float>& Step3Model<T>::expert_bias(size_t moe_index) {
  if (moe_index >= s_->expert_bias.size())
    fail("expert_bias: MoE layer index ", moe_index, " out of range (", s_->expert_bias.size(), " MoE layers)");
  return s_->expert_bias[moe_index];
}

template <class T>
void Step3Model<T>::update_expert_bias(double rate) {
  for (size_t m = 0; m < s_->expert_bias.size(); ++m) {
    const auto& load = s_->expert_load[m];
    auto& bias = s_->expert_bias[m];
    const double mean = 1.0 / static_cast<double>(bias.size());
    for (size_t e = 0; e < bias.size(); ++e) {
      const double diff = mean - load[e];
      const double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
      bias[e] += static_cast<float>(rate * sign);
    }
  }
}

template class Step3Model<float>;
template class Step3Model<double>;
template struct Step3ModelState<float>;
template struct Step3ModelState<double>;

}  // namespace stepwise
