// The MoE FFN's forward once the router has run, one sequence of ops for every backend (the CPU training forward and
// inference, the CUDA training pass and decode step): the route plan, the routed experts over the permuted rows
// (grouped gate / up GEMMs, SwiGLU, grouped down GEMM, combine with the routing weights into x_out) and the shared
// expert (added into x_out). `Backend` forwards each op to cpu:: or cuda:: (model/cpu_backend.h,
// model/cuda/cuda_backend.h). The caller owns every buffer, so the training paths keep what their backward reads.
#pragma once
#include <cstdint>
#include <type_traits>

#include "model/op_params.h"
#include "ops.h"

namespace stepwise {

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

}  // namespace stepwise
