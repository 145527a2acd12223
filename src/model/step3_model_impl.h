// Internal to src/model: the Step3Model state (per-layer weight views, activation and scratch arenas) and the layer
// pieces shared by the training path (step3_model.cpp) and the KV-cache inference path (step3_inference.cpp).
// Glossary: N tokens, C hidden, Q share_q_dim, H heads, D head_dim, F dense FFN, E experts, K top_k, R = N*K,
// Fm expert FFN, Fs shared-expert FFN, V vocabulary.
#pragma once
#include <cstdint>
#include <vector>

#include "model/layer_acts.h"
#include "model/layer_binding.h"
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
using LayerWeights = DecoderLayerWeights<TensorRef<T>>;

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

  void check_tokens(const int32_t* ids, int64_t n, const char* what) const;
  // Error unless this model holds the weights `what` needs: side's (nullopt: all; see ModelOptions::only_side).
  void require_weights(std::optional<ParamSide> side, const char* what) const;

  // Layer pieces (the attention inputs are model/layer_forward.h's attention_inputs). attention_output_and_ffn:
  // o_proj, residual, post_attention_layernorm, FFN, residual: x_out = x_mid + ffn(h2). record_load: copy router load.
  void attention_output_and_ffn(const LayerWeights<T>& lw, LayerActs<T>& a, const T* x_in, T* x_out, T* tmp,
                                int64_t N, bool record_load);
  AttentionParams<T> attention_params(const LayerActs<T>& a) const;   // the training batch's (B, T_len, seg)
};

}  // namespace stepwise
