// A decoder layer's backward, one sequence of ops for every backend (the CPU model and the CUDA training pass;
// `Backend` as in model/cpu_backend.h, model/cuda/cuda_backend.h). The FFN half: the dense SwiGLU MLP, or the shared
// expert, the routed experts (combine, grouped GEMMs, SwiGLU, permute) and the router (top-k weights and the
// auxiliary loss), then post_attention_layernorm. The attention half: o_proj, attention, RoPE, wq, inter_norm,
// q/k/v projections, input_layernorm. Both read the saved forward tensors and write the backward scratch of
// model/layer_acts.h.
#pragma once
#include <cstdint>

#include "model/layer_acts.h"
#include "model/op_params.h"
#include "model/step3_config.h"
#include "ops.h"

namespace stepwise {

// In: gs.dx = d(x_out) (N, C). Out: gs.dx = d(x_mid); parameter gradients accumulate into lw's handles (.g).
// load: the layer's router load (E) as its forward wrote it (unused on dense layers); aux_coef: the auxiliary loss
// coefficient times this step's aux weight.
template <class Backend, class Weights, class T, class S>
void ffn_layer_backward(const Backend& be, const Weights& lw, const LayerActs<T, S>& a, const GradScratch<T, S>& gs,
                        S* load, const Step3Config& cfg, int64_t N, double aux_coef) {
  const RoutePlan& plan = a.plan;
  const int64_t C = cfg.hidden_size;
  if (!lw.moe) {
    const int64_t F = cfg.intermediate_size;
    be.linear_backward(linear_backward_params(gs.dact, false, gs.dx, a.act, lw.mlp_down, N, F, C));
    be.swiglu_backward(swiglu_backward_params(gs.dgate, gs.dup, gs.dact, a.gate, a.up, N, F));
    be.linear_backward(linear_backward_params(gs.dh, false, gs.dgate, a.h2, lw.mlp_gate, N, C, F));
    be.linear_backward(linear_backward_params(gs.dh, true, gs.dup, a.h2, lw.mlp_up, N, C, F));
  } else {
    const int64_t E = cfg.moe_num_experts, K = cfg.moe_top_k, R = N * K;
    const int64_t Fm = cfg.moe_intermediate_size, Fs = cfg.share_expert_dim;
    // shared expert
    be.linear_backward(linear_backward_params(gs.dact_s, false, gs.dx, a.s_act, lw.share_down, N, Fs, C));
    be.swiglu_backward(swiglu_backward_params(gs.dgate_s, gs.dup_s, gs.dact_s, a.s_gate, a.s_up, N, Fs));
    be.linear_backward(linear_backward_params(gs.dh, false, gs.dgate_s, a.h2, lw.share_gate, N, C, Fs));
    be.linear_backward(linear_backward_params(gs.dh, true, gs.dup_s, a.h2, lw.share_up, N, C, Fs));
    // routed experts
    CombineParams<T, S> cp;
    cp.yp = a.yp;
    cp.weights = a.weights;
    cp.dyp = gs.dyp;
    cp.dweights = gs.dweights;
    cp.dy = gs.dx;
    cp.plan = &plan;
    cp.C = C;
    be.combine_backward(cp);
    GroupedLinearParams<T, S> g;
    g.offsets = plan.offsets;
    g.E = E;
    g.inp = a.act_p;
    g.I = Fm;
    g.O = C;
    g.weight = lw.moe_down.w;
    g.dweight = lw.moe_down.g;
    g.dout = gs.dyp;
    g.dinp = gs.dact_p;
    be.grouped_linear_backward(g);
    be.swiglu_backward(swiglu_backward_params(gs.dgate_p, gs.dup_p, gs.dact_p, a.gate_p, a.up_p, R, Fm));
    g.inp = a.xp;
    g.I = C;
    g.O = Fm;
    g.weight = lw.moe_gate.w;
    g.dweight = lw.moe_gate.g;
    g.dout = gs.dgate_p;
    g.dinp = gs.dxp;
    be.grouped_linear_backward(g);
    g.weight = lw.moe_up.w;
    g.dweight = lw.moe_up.g;
    g.dout = gs.dup_p;
    g.dinp = gs.dxp2;
    be.grouped_linear_backward(g);
    be.add_inplace(gs.dxp, static_cast<const T*>(gs.dxp2), R * C);
    PermuteParams<T> pp;
    pp.dx = gs.dh;
    pp.dxp = gs.dxp;
    pp.plan = &plan;
    pp.C = C;
    pp.accumulate_dx = true;
    be.permute_backward(pp);
    // router (top-k weights and the auxiliary loss)
    RouterParams<T, S> rp;
    rp.probs = a.probs;
    rp.idx = a.idx;
    rp.weights = a.weights;
    rp.load = load;
    rp.logits = a.logits;
    rp.dlogits = gs.dlogits;
    rp.dweights = gs.dweights;
    rp.N = N;
    rp.E = E;
    rp.K = K;
    rp.renormalize = cfg.norm_expert_weight;
    rp.aux_coef = aux_coef;
    be.router_backward(rp);
    be.linear_backward(linear_backward_params(gs.dh, true, gs.dlogits, a.h2, lw.router, N, C, E));
  }
  be.rmsnorm_backward(
      rmsnorm_backward_params(gs.dx, true, gs.dh, a.x_mid, a.rstd2, lw.post_norm, N, C, cfg.rms_norm_eps));
}

// In: gs.dx = d(x_mid) (N, C). Out: gs.dx = d(x_in). ap: the forward's attention params (out, lse, q, k, v, seg and
// the shape); pos: the RoPE positions (N); x_in: the layer's input (N, C).
template <class Backend, class Weights, class T, class S>
void attention_layer_backward(const Backend& be, const Weights& lw, const LayerActs<T, S>& a,
                              const GradScratch<T, S>& gs, AttentionParams<T, S> ap, const int32_t* pos, const T* x_in,
                              const Step3Config& cfg, int64_t N) {
  const int64_t C = cfg.hidden_size, Q = cfg.share_q_dim, H = cfg.num_attention_heads, D = cfg.head_dim;
  const double eps = cfg.rms_norm_eps;
  be.linear_backward(linear_backward_params(gs.datt, false, gs.dx, a.att, lw.o_proj, N, H * D, C));
  ap.dq = gs.dq;
  ap.dk = gs.dk;
  ap.dv = gs.dv;
  ap.dout = gs.datt;
  be.attention_backward(ap);
  RopeParams<T> rp;
  rp.pos = pos;
  rp.N = N;
  rp.D = D;
  rp.theta = cfg.rope_theta;
  rp.x = gs.dq;
  rp.H = H;
  be.rope_backward(rp);
  rp.x = gs.dk;
  rp.H = 1;
  be.rope_backward(rp);
  be.linear_backward(linear_backward_params(gs.dcq, false, gs.dq, a.cq, lw.wq, N, Q, H * D));
  be.rmsnorm_backward(
      rmsnorm_backward_params(gs.dcq_raw, false, gs.dcq, a.cq_raw, a.rstd_q, lw.inter_norm, N, Q, eps));
  be.linear_backward(linear_backward_params(gs.dh, false, gs.dcq_raw, a.h1, lw.q_proj, N, C, Q));
  be.linear_backward(linear_backward_params(gs.dh, true, gs.dk, a.h1, lw.k_proj, N, C, D));
  be.linear_backward(linear_backward_params(gs.dh, true, gs.dv, a.h1, lw.v_proj, N, C, D));
  be.rmsnorm_backward(rmsnorm_backward_params(gs.dx, true, gs.dh, x_in, a.rstd1, lw.input_norm, N, C, eps));
}

}  // namespace stepwise
