// One decoder layer's weight handles and their binding to the HF parameter names (REFERENCE.md), shared by the CPU
// model (Handle = TensorRef) and the CUDA model (Handle = CudaWeight): `ref(name)` -> handle.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/step3_config.h"

namespace stepwise {

// A handle has `.w` (the weight) and `.g` (its gradient, or null).
template <class Handle>
struct DecoderLayerWeights {
  bool moe = false;
  int64_t moe_index = -1;                              // index into the MoE-layer lists, -1 for dense
  Handle input_norm, q_proj, k_proj, v_proj, inter_norm, wq, o_proj, post_norm;
  Handle mlp_gate, mlp_up, mlp_down;                   // dense: (F, C), (F, C), (C, F)
  Handle router;                                       // MoE: (E, C)
  Handle moe_gate, moe_up, moe_down;                   // (E, Fm, C), (E, Fm, C), (E, C, Fm)
  Handle share_gate, share_up, share_down;             // (Fs, C), (Fs, C), (C, Fs)
};

// Fills embed / final_norm / lm_head and layers[l] for every decoder layer (dense or MoE per cfg).
template <class Layer, class Handle, class Ref>
void bind_decoder_weights(const Step3Config& cfg, const Ref& ref, Handle& embed, Handle& final_norm, Handle& lm_head,
                          std::vector<Layer>& layers) {
  embed = ref("model.embed_tokens.weight");
  final_norm = ref("model.norm.weight");
  lm_head = ref("lm_head.weight");
  const std::vector<bool> moe = cfg.moe_layer_mask();
  layers.resize(static_cast<size_t>(cfg.num_hidden_layers));
  int64_t moe_count = 0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    Layer& lw = layers[static_cast<size_t>(l)];
    const std::string p = cat("model.layers.", l, ".");
    lw.input_norm = ref(p + "input_layernorm.weight");
    lw.q_proj = ref(p + "self_attn.q_proj.weight");
    lw.k_proj = ref(p + "self_attn.k_proj.weight");
    lw.v_proj = ref(p + "self_attn.v_proj.weight");
    lw.inter_norm = ref(p + "self_attn.inter_norm.weight");
    lw.wq = ref(p + "self_attn.wq.weight");
    lw.o_proj = ref(p + "self_attn.o_proj.weight");
    lw.post_norm = ref(p + "post_attention_layernorm.weight");
    lw.moe = moe[static_cast<size_t>(l)];
    if (!lw.moe) {
      lw.mlp_gate = ref(p + "mlp.gate_proj.weight");
      lw.mlp_up = ref(p + "mlp.up_proj.weight");
      lw.mlp_down = ref(p + "mlp.down_proj.weight");
    } else {
      lw.moe_index = moe_count++;
      lw.router = ref(p + "moe.gate.weight");
      lw.moe_gate = ref(p + "moe.gate_proj.weight");
      lw.moe_up = ref(p + "moe.up_proj.weight");
      lw.moe_down = ref(p + "moe.down_proj.weight");
      lw.share_gate = ref(p + "share_expert.gate_proj.weight");
      lw.share_up = ref(p + "share_expert.up_proj.weight");
      lw.share_down = ref(p + "share_expert.down_proj.weight");
    }
  }
}

}  // namespace stepwise
