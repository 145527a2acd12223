// The pieces of a decoder layer's forward, one sequence of ops for every backend (the CPU training forward and
// inference, the CUDA training pass and decode step): the attention inputs (input_layernorm .. RoPE), the attention
// output (o_proj, residual, post_attention_layernorm), the dense SwiGLU MLP, the router, and the MoE FFN once routed
// (route plan, routed experts over the permuted rows, shared expert). `Backend` forwards each op to cpu:: or cuda::
// (model/cpu_backend.h, model/cuda/cuda_backend.h). Callers own every buffer, so the training paths keep what their
// backward (model/layer_backward.h) reads. T activations; S statistics and routing weights (fp32 on CUDA, T on CPU).
#pragma once
#include <cstdint>
#include <type_traits>

#include "model/layer_acts.h"
#include "model/op_params.h"
#include "model/step3_config.h"
#include "ops.h"

namespace stepwise {

// Where attention_inputs writes (N rows): h = input_layernorm(x) (rstd), cq_raw = q_proj(h) (rstd_q),
// cq = inter_norm(cq_raw), q = wq(cq) (N, H, D), k = k_proj(h), v = v_proj(h) (N, D); q and k rotated.
template <class T, class S>
struct AttentionInputs {
  T *h = nullptr, *cq_raw = nullptr, *cq = nullptr, *q = nullptr, *k = nullptr, *v = nullptr;
  S *rstd = nullptr, *rstd_q = nullptr;
};

// Where they go in the training layout (h1, rstd1, ...).
template <class T, class S>
AttentionInputs<T, S> attention_inputs_of(const LayerActs<T, S>& a) {
  AttentionInputs<T, S> b;
  b.h = a.h1;
  b.rstd = a.rstd1;
  b.cq_raw = a.cq_raw;
  b.rstd_q = a.rstd_q;
  b.cq = a.cq;
  b.q = a.q;
  b.k = a.k;
  b.v = a.v;
  return b;
}

template <class Backend, class T, class S, class Weights>
void attention_inputs(const Backend& be, const Weights& lw, const AttentionInputs<T, S>& b, const T* x,
                      const int32_t* pos, const Step3Config& cfg, int64_t N) {
  const int64_t C = cfg.hidden_size, Q = cfg.share_q_dim, H = cfg.num_attention_heads, D = cfg.head_dim;
  const double eps = cfg.rms_norm_eps;
  be.rmsnorm_forward(rmsnorm_params(b.h, b.rstd, x, lw.input_norm, N, C, eps));
  be.linear_forward(linear_params(b.cq_raw, static_cast<const T*>(b.h), lw.q_proj, N, C, Q));
  be.rmsnorm_forward(rmsnorm_params(b.cq, b.rstd_q, static_cast<const T*>(b.cq_raw), lw.inter_norm, N, Q, eps));
  be.linear_forward(linear_params(b.q, static_cast<const T*>(b.cq), lw.wq, N, Q, H * D));
  be.linear_forward(linear_params(b.k, static_cast<const T*>(b.h), lw.k_proj, N, C, D));
  be.linear_forward(linear_params(b.v, static_cast<const T*>(b.h), lw.v_proj, N, C, D));
  RopeParams<T> rp;
  rp.pos = pos;
  rp.N = N;
  rp.D = D;
  rp.theta = cfg.rope_theta;
  rp.x = b.q;
  rp.H = H;
  be.rope_forward(rp);
  rp.x = b.k;   // the one K head
  rp.H = 1;
  be.rope_forward(rp);
}

// The causal (segment-masked) attention of a training batch of B rows of T_len tokens over the layer's q, k, v:
// forward writes a.att and a.lse; backward sets the gradient fields. seg: (B, T_len) segment ids or null.
template <class T, class S>
AttentionParams<T, S> batch_attention_params(const LayerActs<T, S>& a, const int32_t* seg, int64_t B, int64_t T_len,
                                             const Step3Config& cfg) {
  AttentionParams<T, S> ap;
  ap.out = a.att;
  ap.lse = a.lse;
  ap.q = a.q;
  ap.k = a.k;
  ap.v = a.v;
  ap.seg = seg;
  ap.B = B;
  ap.Tq = T_len;
  ap.Tk = T_len;
  ap.H = cfg.num_attention_heads;
  ap.D = cfg.head_dim;
  return ap;
}

// x (N, C) += o_proj(att) (through tmp (N, C)), then h2 = post_attention_layernorm(x) (rstd2 (N)).
template <class Backend, class T, class S, class Weights>
void attention_output(const Backend& be, const Weights& lw, const T* att, T* x, T* h2, S* rstd2, T* tmp,
                      const Step3Config& cfg, int64_t N) {
  const int64_t C = cfg.hidden_size, HD = cfg.num_attention_heads * cfg.head_dim;
  be.linear_forward(linear_params(tmp, att, lw.o_proj, N, HD, C));
  be.add_rmsnorm_forward(x, static_cast<const T*>(tmp),
                         rmsnorm_params(h2, rstd2, static_cast<const T*>(nullptr), lw.post_norm, N, C,
                                        cfg.rms_norm_eps));
}

// x_out (N, C) += down(silu(gate(h)) * up(h)): the dense SwiGLU MLP; gate, up, act (N, F) and tmp (N, C) written.
template <class Backend, class T, class Weights>
void dense_ffn_forward(const Backend& be, const Weights& lw, const T* h, T* x_out, T* gate, T* up, T* act, T* tmp,
                       const Step3Config& cfg, int64_t N) {
  const int64_t C = cfg.hidden_size, F = cfg.intermediate_size;
  be.linear_forward(linear_params(gate, h, lw.mlp_gate, N, C, F));
  be.linear_forward(linear_params(up, h, lw.mlp_up, N, C, F));
  be.swiglu_forward(swiglu_params(act, static_cast<const T*>(gate), static_cast<const T*>(up), N, F));
  be.linear_forward(linear_params(tmp, static_cast<const T*>(act), lw.mlp_down, N, F, C));
  be.add_inplace(x_out, static_cast<const T*>(tmp), N * C);
}

// The router: logits (N, E) = router(h), then softmax + top-k into rp.probs / idx / weights (and load, aux_loss when
// set). The caller sets those buffers, bias and aux_coef; the shape and renormalize come from cfg.
template <class Backend, class T, class S, class Weights>
void route(const Backend& be, const Weights& lw, const T* h, T* logits, RouterParams<T, S> rp, const Step3Config& cfg,
           int64_t N) {
  rp.logits = logits;
  rp.N = N;
  rp.E = cfg.moe_num_experts;
  rp.K = cfg.moe_top_k;
  rp.renormalize = cfg.norm_expert_weight;
  be.linear_forward(linear_params(logits, h, lw.router, N, cfg.hidden_size, rp.E));
  be.router_forward(rp);
}

// T activations, S routing weights (fp32 on CUDA, T on the CPU).
template <class T, class S>
struct MoeFfnBuffers {
  T *xp = nullptr, *yp = nullptr;                           // (NK, C) permuted rows in, expert outputs
  T *gate_p = nullptr, *up_p = nullptr, *act_p = nullptr;   // (NK, Fm)
  T *s_gate = nullptr, *s_up = nullptr, *s_act = nullptr;   // (N, Fs) shared expert
  T* tmp = nullptr;                                         // (N, C) shared expert output
  const S* weights = nullptr;                               // (N, K) routing weights
};

// The buffers of an activation struct that names them alike (the training passes' and the decode step's).
template <class T, class Acts>
auto moe_ffn_buffers(const Acts& a, T* tmp) {
  MoeFfnBuffers<T, std::remove_cv_t<std::remove_pointer_t<decltype(a.weights)>>> b;
  b.xp = a.xp;
  b.yp = a.yp;
  b.gate_p = a.gate_p;
  b.up_p = a.up_p;
  b.act_p = a.act_p;
  b.s_gate = a.s_gate;
  b.s_up = a.s_up;
  b.s_act = a.s_act;
  b.tmp = tmp;
  b.weights = a.weights;
  return b;
}

// x_out (N, C) += routed experts (h) + shared expert (h), for h (N, C) routed by `plan` (idx, N, E, K set; the rest
// is built here). lw: the layer's weight handles (moe_gate / moe_up / moe_down, share_gate / share_up / share_down).
template <class Backend, class T, class S, class Weights>
void moe_ffn_forward(const Backend& be, const Weights& lw, const RoutePlan& plan, const T* h, T* x_out,
                     const MoeFfnBuffers<T, S>& b, int64_t C, int64_t Fm, int64_t Fs) {
  const int64_t N = plan.N, NK = plan.N * plan.K;
  be.route_plan_build(plan);
  PermuteParams<T> pp;
  pp.xp = b.xp;
  pp.x = h;
  pp.plan = &plan;
  pp.C = C;
  be.permute_forward(pp);
  GroupedLinearParams<T, S> g;
  g.offsets = plan.offsets;
  g.E = plan.E;
  g.inp = b.xp;
  g.I = C;
  g.O = Fm;
  g.out = b.gate_p;
  g.weight = lw.moe_gate.w;
  be.grouped_linear_forward(g);
  g.out = b.up_p;
  g.weight = lw.moe_up.w;
  be.grouped_linear_forward(g);
  be.swiglu_forward(swiglu_params(b.act_p, static_cast<const T*>(b.gate_p), static_cast<const T*>(b.up_p), NK, Fm));
  g.inp = b.act_p;
  g.I = Fm;
  g.O = C;
  g.out = b.yp;
  g.weight = lw.moe_down.w;
  be.grouped_linear_forward(g);
  CombineParams<T, S> cp;
  cp.y = x_out;
  cp.yp = b.yp;
  cp.weights = b.weights;
  cp.plan = &plan;
  cp.C = C;
  cp.accumulate_y = true;
  be.combine_forward(cp);
  be.linear_forward(linear_params(b.s_gate, h, lw.share_gate, N, C, Fs));
  be.linear_forward(linear_params(b.s_up, h, lw.share_up, N, C, Fs));
  be.swiglu_forward(swiglu_params(b.s_act, static_cast<const T*>(b.s_gate), static_cast<const T*>(b.s_up), N, Fs));
  be.linear_forward(linear_params(b.tmp, static_cast<const T*>(b.s_act), lw.share_down, N, Fs, C));
  be.add_inplace(x_out, static_cast<const T*>(b.tmp), N * C);
}

// The FFN half of a layer's forward over the training layout (model/layer_acts.h): x_out (N, C) += the dense MLP of
// a.h2, or the routed experts + shared expert of a.h2 routed by rp (the caller sets its output buffers, bias and
// aux_coef as for route(); a.logits, a.plan and the MoE buffers are used); tmp (N, C) is scratch.
template <class Backend, class T, class S, class Weights>
void ffn_layer_forward(const Backend& be, const Weights& lw, const LayerActs<T, S>& a, T* x_out, T* tmp,
                       const RouterParams<T, S>& rp, const Step3Config& cfg, int64_t N) {
  const T* h2 = a.h2;
  if (!lw.moe) {
    dense_ffn_forward(be, lw, h2, x_out, a.gate, a.up, a.act, tmp, cfg, N);
    return;
  }
  route(be, lw, h2, a.logits, rp, cfg, N);
  moe_ffn_forward(be, lw, a.plan, h2, x_out, moe_ffn_buffers(a, tmp), cfg.hidden_size, cfg.moe_intermediate_size,
                  cfg.share_expert_dim);
}

}  // namespace stepwise
