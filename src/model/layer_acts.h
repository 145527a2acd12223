// A decoder layer's saved forward tensors and the backward scratch, one layout for every backend (the CPU model:
// S = T = float in host arenas; the CUDA pass: T = float or bf16, S = float statistics and routing in device arenas),
// and the carving of both from arenas. Read and written by model/layer_forward.h and model/layer_backward.h.
// Glossary: N tokens, C hidden, Q share_q_dim, H heads, D head_dim, F dense FFN, E experts, K top_k, R = N*K,
// Fm expert FFN, Fs shared-expert FFN.
#pragma once
#include <cstdint>

#include "model/step3_config.h"
#include "ops.h"

namespace stepwise {

// Hands out consecutive, aligned pieces of one buffer; with a null base it only counts (the sizing pass).
template <class U>
struct Carver {
  U* base = nullptr;
  int64_t used = 0;
  U* take(int64_t n) {
    U* p = base ? base + used : nullptr;
    used += (n + 15) / 16 * 16;
    return p;
  }
};

// The forward activations of one layer over N rows (what backward reads; inference reuses one set as scratch).
template <class T, class S = T>
struct LayerActs {
  T* x_mid = nullptr;    // (N, C)  residual stream after attention
  T* h1 = nullptr;       // (N, C)  input_layernorm output
  S* rstd1 = nullptr;    // (N)
  T* cq_raw = nullptr;   // (N, Q)  q_proj output
  S* rstd_q = nullptr;   // (N)
  T* cq = nullptr;       // (N, Q)  inter_norm output
  T* q = nullptr;        // (N, H, D) rotated
  T* k = nullptr;        // (N, D)    rotated
  T* v = nullptr;        // (N, D)
  T* att = nullptr;      // (N, H, D) attention output
  S* lse = nullptr;      // (B, H, T) attention log-sum-exp
  T* h2 = nullptr;       // (N, C)  post_attention_layernorm output
  S* rstd2 = nullptr;    // (N)
  // dense FFN
  T* gate = nullptr;     // (N, F)
  T* up = nullptr;       // (N, F)
  T* act = nullptr;      // (N, F)
  // MoE FFN
  T* logits = nullptr;   // (N, E)
  S* probs = nullptr;    // (N, E)
  S* weights = nullptr;  // (N, K)
  S* load = nullptr;     // (E)  router statistics, when carved here (the CUDA pass keeps them in its output buffer)
  S* aux = nullptr;      // (1)
  int32_t* idx = nullptr;  // (N, K)
  RoutePlan plan;        // offsets (E + 1), row_token (R), row_of_slot (R) over idx, N, E, K
  T* xp = nullptr;       // (R, C)  permuted h2
  T* gate_p = nullptr;   // (R, Fm)
  T* up_p = nullptr;     // (R, Fm)
  T* act_p = nullptr;    // (R, Fm)
  T* yp = nullptr;       // (R, C)
  T* s_gate = nullptr;   // (N, Fs)
  T* s_up = nullptr;     // (N, Fs)
  T* s_act = nullptr;    // (N, Fs)
};

// Backward scratch over N rows, shared by all layers (overwritten layer by layer).
template <class T, class S = T>
struct GradScratch {
  T* dx = nullptr;       // (N, C) gradient of the residual stream
  T* dh = nullptr;       // (N, C) gradient of a norm output
  T* datt = nullptr;     // (N, H*D)
  T* dq = nullptr;       // (N, H*D)
  T* dk = nullptr;       // (N, D)
  T* dv = nullptr;       // (N, D)
  T* dcq = nullptr;      // (N, Q)
  T* dcq_raw = nullptr;  // (N, Q)
  T* dact = nullptr;     // (N, F)
  T* dgate = nullptr;    // (N, F)
  T* dup = nullptr;      // (N, F)
  T* dyp = nullptr;      // (R, C)
  S* dweights = nullptr; // (N, K)
  T* dact_p = nullptr;   // (R, Fm)
  T* dgate_p = nullptr;  // (R, Fm)
  T* dup_p = nullptr;    // (R, Fm)
  T* dxp = nullptr;      // (R, C)
  T* dxp2 = nullptr;     // (R, C)
  T* dlogits = nullptr;  // (N, E)
  T* dact_s = nullptr;   // (N, Fs)
  T* dgate_s = nullptr;  // (N, Fs)
  T* dup_s = nullptr;    // (N, Fs)
  T* dhf = nullptr;      // (N, C) gradient of the final norm output
};

// Carves one layer's activations for N rows: T tensors from t, S tensors from s (the same carver when T == S),
// int32 / int64 routing arrays from i32 / i64. lse_count: the attention log-sum-exp entries (B * H * T);
// router_stats: also carve load and aux (else they stay null).
template <class T, class S>
void carve_layer_acts(LayerActs<T, S>& a, const Step3Config& cfg, bool moe, int64_t N, int64_t lse_count,
                      bool router_stats, Carver<T>& t, Carver<S>& s, Carver<int32_t>& i32, Carver<int64_t>& i64) {
  const int64_t C = cfg.hidden_size, Q = cfg.share_q_dim, D = cfg.head_dim, HD = cfg.num_attention_heads * D;
  a.x_mid = t.take(N * C);
  a.h1 = t.take(N * C);
  a.rstd1 = s.take(N);
  a.cq_raw = t.take(N * Q);
  a.rstd_q = s.take(N);
  a.cq = t.take(N * Q);
  a.q = t.take(N * HD);
  a.k = t.take(N * D);
  a.v = t.take(N * D);
  a.att = t.take(N * HD);
  a.lse = s.take(lse_count);
  a.h2 = t.take(N * C);
  a.rstd2 = s.take(N);
  if (!moe) {
    const int64_t F = cfg.intermediate_size;
    a.gate = t.take(N * F);
    a.up = t.take(N * F);
    a.act = t.take(N * F);
    return;
  }
  const int64_t E = cfg.moe_num_experts, K = cfg.moe_top_k, R = N * K;
  const int64_t Fm = cfg.moe_intermediate_size, Fs = cfg.share_expert_dim;
  a.logits = t.take(N * E);
  a.probs = s.take(N * E);
  a.weights = s.take(N * K);
  if (router_stats) {
    a.load = s.take(E);
    a.aux = s.take(1);
  }
  a.idx = i32.take(N * K);
  a.plan.offsets = i64.take(E + 1);
  a.plan.row_token = i32.take(R);
  a.plan.row_of_slot = i32.take(R);
  a.plan.idx = a.idx;
  a.plan.N = N;
  a.plan.E = E;
  a.plan.K = K;
  a.xp = t.take(R * C);
  a.gate_p = t.take(R * Fm);
  a.up_p = t.take(R * Fm);
  a.act_p = t.take(R * Fm);
  a.yp = t.take(R * C);
  a.s_gate = t.take(N * Fs);
  a.s_up = t.take(N * Fs);
  a.s_act = t.take(N * Fs);
}

// Carves the backward scratch for N rows (T tensors from t, S from s).
template <class T, class S>
void carve_grad_scratch(GradScratch<T, S>& g, const Step3Config& cfg, int64_t N, Carver<T>& t, Carver<S>& s) {
  const int64_t C = cfg.hidden_size, Q = cfg.share_q_dim, D = cfg.head_dim, HD = cfg.num_attention_heads * D;
  const int64_t F = cfg.intermediate_size, E = cfg.moe_num_experts, K = cfg.moe_top_k, R = N * K;
  const int64_t Fm = cfg.moe_intermediate_size, Fs = cfg.share_expert_dim;
  g.dx = t.take(N * C);
  g.dh = t.take(N * C);
  g.datt = t.take(N * HD);
  g.dq = t.take(N * HD);
  g.dk = t.take(N * D);
  g.dv = t.take(N * D);
  g.dcq = t.take(N * Q);
  g.dcq_raw = t.take(N * Q);
  g.dact = t.take(N * F);
  g.dgate = t.take(N * F);
  g.dup = t.take(N * F);
  g.dyp = t.take(R * C);
  g.dweights = s.take(N * K);
  g.dact_p = t.take(R * Fm);
  g.dgate_p = t.take(R * Fm);
  g.dup_p = t.take(R * Fm);
  g.dxp = t.take(R * C);
  g.dxp2 = t.take(R * C);
  g.dlogits = t.take(N * E);
  g.dact_s = t.take(N * Fs);
  g.dgate_s = t.take(N * Fs);
  g.dup_s = t.take(N * Fs);
  g.dhf = t.take(N * C);
}

}  // namespace stepwise
