// The MoE FFN's forward once the router has run, shared by the CUDA training pass and the CUDA decode step: the route
// plan, the routed experts over the permuted rows (grouped gate / up GEMMs, SwiGLU, grouped down GEMM, combine with
// the routing weights into x_out) and the shared expert (added into x_out). The caller owns every buffer, so the
// training pass keeps the intermediates its backward reads.
#pragma once
#include "cuda/ops_cuda.h"
#include "model/cuda/cuda_layer_weights.h"
#include "model/op_params.h"

namespace stepwise {

template <class T>
struct MoeFfnBuffers {
  T *xp = nullptr, *yp = nullptr;                           // (NK, C) permuted rows in, expert outputs
  T *gate_p = nullptr, *up_p = nullptr, *act_p = nullptr;   // (NK, Fm)
  T *s_gate = nullptr, *s_up = nullptr, *s_act = nullptr;   // (N, Fs) shared expert
  T* tmp = nullptr;                                         // (N, C) shared expert output
  const float* weights = nullptr;                           // (N, K) routing weights
};

// The buffers of an activation struct that names them alike (the training pass's and the decode step's).
template <class T, class Acts>
MoeFfnBuffers<T> moe_ffn_buffers(const Acts& a, T* tmp) {
  MoeFfnBuffers<T> b;
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

// x_out (N, C) += routed experts (h) + shared expert (h), for h (N, C) routed by `plan` (idx, N, E, K set; built here).
template <class T>
void moe_ffn_forward(const CudaLayerWeights<T>& lw, const RoutePlan& plan, const T* h, T* x_out,
                     const MoeFfnBuffers<T>& b, int64_t N, int64_t C, int64_t Fm, int64_t Fs, cudaStream_t st) {
  const int64_t NK = N * plan.K;
  cuda::route_plan_build(plan, st);
  PermuteParams<T> pp;
  pp.xp = b.xp;
  pp.x = h;
  pp.plan = &plan;
  pp.C = C;
  cuda::permute_forward(pp, st);
  GroupedLinearParams<T, float> g;
  g.offsets = plan.offsets;
  g.E = plan.E;
  g.inp = b.xp;
  g.I = C;
  g.O = Fm;
  g.out = b.gate_p;
  g.weight = lw.moe_gate.w;
  cuda::grouped_linear_forward(g, st);
  g.out = b.up_p;
  g.weight = lw.moe_up.w;
  cuda::grouped_linear_forward(g, st);
  cuda::swiglu_forward(swiglu_params(b.act_p, static_cast<const T*>(b.gate_p), static_cast<const T*>(b.up_p), NK, Fm),
                       st);
  g.inp = b.act_p;
  g.I = Fm;
  g.O = C;
  g.out = b.yp;
  g.weight = lw.moe_down.w;
  cuda::grouped_linear_forward(g, st);
  CombineParams<T, float> cp;
  cp.y = x_out;
  cp.yp = b.yp;
  cp.weights = b.weights;
  cp.plan = &plan;
  cp.C = C;
  cp.accumulate_y = true;
  cuda::combine_forward(cp, st);
  cuda::linear_forward(linear_params(b.s_gate, h, lw.share_gate, N, C, Fs), st);
  cuda::linear_forward(linear_params(b.s_up, h, lw.share_up, N, C, Fs), st);
  cuda::swiglu_forward(swiglu_params(b.s_act, static_cast<const T*>(b.s_gate), static_cast<const T*>(b.s_up), N, Fs),
                       st);
  cuda::linear_forward(linear_params(b.tmp, static_cast<const T*>(b.s_act), lw.share_down, N, Fs, C), st);
  cuda::add_inplace(x_out, static_cast<const T*>(b.tmp), N * C, st);
}

}  // namespace stepwise
