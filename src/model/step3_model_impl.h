// Internal to src/model: the Step3Model state (per-layer weight views, activation and scratch arenas) and the layer
// pieces shared by the training path (step3_model.cpp) and the KV-cache inference path (step3_inference.cpp).
// Glossary: N tokens, C hidden, Q share_q_dim, H heads, D head_dim, F dense FFN, E experts, K top_k, R = N*K,
// Fm expert FFN, Fs shared-expert FFN, V vocabulary.
#pragma once
#include <cstdint>
#include <vector>

#include "model/step3_model.h"
#include "ops.h"

namespace stepwise {

// A parameter tensor's value and gradient (gradient null without a gradient arena).
template <class T>
struct TensorRef {
  T* w = nullptr;
  T* g = nullptr;
};

template <class T>
struct LayerWeights {
  bool moe = false;
  int64_t moe_index = -1;                                  // index into the MoE-layer lists, -1 for dense
  TensorRef<T> input_norm, q_proj, k_proj, v_proj, inter_norm, wq, o_proj, post_norm;
  TensorRef<T> mlp_gate, mlp_up, mlp_down;                 // dense: (F, C), (F, C), (C, F)
  TensorRef<T> router;                                     // MoE: (E, C)
  TensorRef<T> moe_gate, moe_up, moe_down;                 // (E, Fm, C), (E, Fm, C), (E, C, Fm)
  TensorRef<T> share_gate, share_up, share_down;           // (Fs, C), (Fs, C), (C, Fs)
};

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
template <class T>
struct LayerActs {
  T* x_mid = nullptr;    // (N, C)  residual stream after attention
  T* h1 = nullptr;       // (N, C)  input_layernorm output
  T* rstd1 = nullptr;    // (N)
  T* cq_raw = nullptr;   // (N, Q)  q_proj output
  T* rstd_q = nullptr;   // (N)
  T* cq = nullptr;       // (N, Q)  inter_norm output
  T* q = nullptr;        // (N, H, D) rotated
  T* k = nullptr;        // (N, D)    rotated
  T* v = nullptr;        // (N, D)
  T* att = nullptr;      // (N, H, D) attention output
  T* lse = nullptr;      // (B, H, T) attention log-sum-exp
  T* h2 = nullptr;       // (N, C)  post_attention_layernorm output
  T* rstd2 = nullptr;    // (N)
  // dense FFN
  T* gate = nullptr;     // (N, F)
  T* up = nullptr;       // (N, F)
  T* act = nullptr;      // (N, F)
  // MoE FFN
  T* logits = nullptr;   // (N, E)
  T* probs = nullptr;    // (N, E)
  T* weights = nullptr;  // (N, K)
  T* load = nullptr;     // (E)
  T* aux = nullptr;      // (1)
  int32_t* idx = nullptr;          // (N, K)
  int64_t* offsets = nullptr;      // (E + 1)
  int32_t* row_token = nullptr;    // (R)
  int32_t* row_of_slot = nullptr;  // (R)
  T* xp = nullptr;       // (R, C)  permuted h2
  T* gate_p = nullptr;   // (R, Fm)
  T* up_p = nullptr;     // (R, Fm)
  T* act_p = nullptr;    // (R, Fm)
  T* yp = nullptr;       // (R, C)
  T* s_gate = nullptr;   // (N, Fs)
  T* s_up = nullptr;     // (N, Fs)
  T* s_act = nullptr;    // (N, Fs)
};

// The route plan over a layer's saved routing (idx) and plan arrays.
template <class T>
RoutePlan route_plan_of(const LayerActs<T>& a, int64_t N, int64_t E, int64_t K) {
  RoutePlan plan;
  plan.offsets = a.offsets;
  plan.row_token = a.row_token;
  plan.row_of_slot = a.row_of_slot;
  plan.idx = a.idx;
  plan.N = N;
  plan.E = E;
  plan.K = K;
  return plan;
}

// Backward scratch over N rows, shared by all layers (overwritten layer by layer).
template <class T>
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
  T* dweights = nullptr; // (N, K)
  T* dact_p = nullptr;   // (R, Fm)
  T* dgate_p = nullptr;  // (R, Fm)
  T* dup_p = nullptr;    // (R, Fm)
  T* dxp = nullptr;      // (R, C)
  T* dxp2 = nullptr;     // (R, C)
  T* dlogits = nullptr;  // (N, E)
  T* dact_s = nullptr;   // (N, Fs)
  T* dgate_s = nullptr;  // (N, Fs)
  T* dup_s = nullptr;    // (N, Fs)
  T* dhf = nullptr;      // (N, C)
};

template <class T>
struct Step3ModelState {
  Step3Config cfg;
  ModelOptions opts;
  ParamTable<T> params;
  std::vector<LayerWeights<T>> layers;
  TensorRef<T> embed, final_norm, lm_head;
  TensorRef<T> score;                               // (1, C) score head; null without ModelOptions::score_head
  std::vector<int64_t> moe_layers;
  std::vector<std::vector<float>> expert_bias;    // [moe layer] (E)
  std::vector<std::vector<double>> expert_load;   // [moe layer] (E)

  // last training forward
  int64_t B = 0, T_len = 0, N = 0, num_targets = 0;
  std::vector<int32_t> tokens, targets, pos, seg;   // copies of the batch (N each; seg empty when absent)
  std::vector<T> act_arena;
  std::vector<int32_t> act_ints;
  std::vector<int64_t> act_offsets;
  std::vector<LayerActs<T>> acts;                   // [layer]
  std::vector<T*> resid;                            // [layer + 1] (N, C) residual stream between layers
  T* tmp = nullptr;                                 // (N, C) branch output before it is added
  T* hf = nullptr;                                  // (N, C) final norm output
  T* rstd_f = nullptr;                              // (N)
  T* lse_f = nullptr;                               // (N)
  T* loss = nullptr;                                // (N)
  T* score_out = nullptr;                           // (N) score head output
  bool has_forward = false;
  std::vector<T> grad_arena;
  GradScratch<T> gs;

  Step3ModelState(const Step3Config& c, ModelOptions o, bool with_grad);

  // Carves one layer's activations for N rows (R = N*K) from the three carvers.
  void carve_layer(LayerActs<T>& a, const LayerWeights<T>& lw, int64_t N, int64_t lse_count, Carver<T>& f,
                   Carver<int32_t>& i32, Carver<int64_t>& i64) const;
  void check_tokens(const int32_t* ids, int64_t n, const char* what) const;

  // Layer pieces. attention_inputs: input_layernorm .. rope (a.h1 .. a.v). attention_output_and_ffn: o_proj,
  // residual, post_attention_layernorm, FFN, residual: x_out = x_mid + ffn(h2). record_load: copy router load.
  void attention_inputs(const LayerWeights<T>& lw, LayerActs<T>& a, const T* x_in, const int32_t* pos, int64_t N);
  void attention_output_and_ffn(const LayerWeights<T>& lw, LayerActs<T>& a, const T* x_in, T* x_out, T* tmp,
                                int64_t N, bool record_load);
  void attention_backward(const LayerWeights<T>& lw, const LayerActs<T>& a, const T* x_in, int64_t N);
};

}  // namespace stepwise
