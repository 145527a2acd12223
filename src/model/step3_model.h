// The Step-3 decoder (MFA attention + dense/MoE SwiGLU FFN, REFERENCE.md) on the CPU op catalogue, in T = float
// (training, serving) or T = double (finite-difference checks). Training: forward over a packed batch saving only what
// backward needs (attention keeps only its log-sum-exp; memory linear in T), backward with caller-given per-token loss
// weights. Inference: prefill / decode with a per-sequence KV cache. Owns its ParamTable; knows nothing of optimizers.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "model/param_table.h"
#include "model/step3_config.h"

namespace stepwise {

// A packed training batch. Rows are sequences; several documents may share a row, separated by seg ids.
struct TrainBatch {
  const int32_t* tokens = nullptr;    // (B, T) input ids in [0, vocab)
  const int32_t* targets = nullptr;   // (B, T) next-token ids, or -100 = ignore (prompt, padding)
  const int32_t* pos = nullptr;       // (B, T) RoPE positions (restart at 0 for each packed document)
  const int32_t* seg = nullptr;       // (B, T) document id per position, or null (whole row is one document)
  int64_t B = 0, T = 0;
};

struct ModelOptions {
  double aux_loss_coef = 0;   // Switch-style load-balancing loss per MoE layer: coef * E * sum_e f_e * P_e
  bool expert_bias = false;   // DeepSeek-V3 loss-free balancing: per-layer selection bias, see update_expert_bias
  bool score_head = false;    // reward models: scalar head "score.weight" [1, C] in the ParamTable (construction only)
  // Attention-FFN disaggregation across processes: hold only this side's weights (construction only). Such a model
  // runs only its side's per-layer calls (infer_embed / _attention_qkv / _attention_out / _logits, or infer_ffn);
  // training, infer() and the other side's calls fail with an Error.
  std::optional<ParamSide> only_side = std::nullopt;
};

// Per-sequence KV cache: per layer the rotated keys and the values of every token seen so far.
template <class T>
struct KvCache {
  std::vector<std::vector<T>> k;   // [layer] (length, head_dim)
  std::vector<std::vector<T>> v;   // [layer] (length, head_dim)
  int64_t length = 0;              // tokens cached = position of the next token

  KvCache() = default;
  explicit KvCache(const Step3Config& cfg)
      : k(static_cast<size_t>(cfg.num_hidden_layers)), v(static_cast<size_t>(cfg.num_hidden_layers)) {}
  void clear() {
    for (auto& x : k) x.clear();
    for (auto& x : v) x.clear();
    length = 0;
  }
};

// One sequence's new tokens for a batched inference call.
template <class T>
struct InferSeq {
  KvCache<T>* cache = nullptr;      // appended to: cache->length grows by n
  const int32_t* tokens = nullptr;  // (n)
  int64_t n = 0;
};

template <class T>
struct Step3ModelState;   // activations, scratch and layer views (step3_model_impl.h)

template <class T>
class Step3Model {
 public:
  // Parameters start at zero: call params().init(seed) or load a checkpoint into params().
  explicit Step3Model(const Step3Config& cfg, ModelOptions opts = {}, bool with_grad = true);
  ~Step3Model();
  Step3Model(const Step3Model&) = delete;
  Step3Model& operator=(const Step3Model&) = delete;

  const Step3Config& config() const;
  ParamTable<T>& params();
  const ParamTable<T>& params() const;
  ModelOptions& options();   // may be changed between steps

  // ---- training ----
  // Forward over the batch; returns the mean cross-entropy over non-ignored targets (0 when there are none).
  // Saves activations for backward(); sizes its arena from B, T (reused while they do not grow).
  double forward(const TrainBatch& batch);
  int64_t num_target_tokens() const;           // non-ignored targets in the last forward
  const T* token_loss() const;                 // (B*T) per-token cross-entropy of the last forward, 0 where ignored
  std::vector<double> token_logprobs() const;  // (B*T) log p(target | prefix), 0 where ignored (for DPO / RM / GRPO)
  double aux_loss() const;                     // sum over MoE layers of the auxiliary loss (coefficient applied)
  // (B*T) per-position scalar r[n] = score.weight . final_norm(h[n]) of the last forward (score_head models only).
  const T* scores() const;

  // Accumulates (+=) into params().grad_data() the gradient of
  //   sum_n dloss[n] * loss[n] + aux_weight * aux_loss() + sum_n dscore[n] * scores()[n]
  // for the last forward. dloss: (B*T), entries at ignored targets are not used; null = no LM-loss term (the LM head
  // is skipped). dscore: (B*T) or null; needs a score head.
  void backward(const T* dloss, double aux_weight = 1.0, const T* dscore = nullptr);
  // backward() with dloss[n] = 1 / num_target_tokens(): the gradient of forward()'s return value + aux_loss().
  void backward_mean();

  // ---- MoE balancing ----
  const std::vector<int64_t>& moe_layers() const;                 // decoder layer index of each MoE layer
  const std::vector<std::vector<double>>& expert_load() const;    // [moe layer][expert]: fraction of routed slots
                                                                  // in the last training forward (sums to 1)
  std::vector<float>& expert_bias(size_t moe_index);              // (E) selection bias of a MoE layer
  // Loss-free balancing step after an optimizer step: b_e += rate * sign(mean_load - load_e) (mean_load = 1/E).
  void update_expert_bias(double rate);

  // ---- inference (no gradients, no saved activations) ----
  // Appends each sequence's tokens to its cache (prefill: n > 1; decode: n == 1) and returns logits:
  // (num_seqs, V) of each sequence's last new token, or (sum n, V) of every new token when all_positions.
  std::vector<T> infer(const std::vector<InferSeq<T>>& seqs, bool all_positions = false);
  std::vector<T> infer(KvCache<T>& cache, const int32_t* tokens, int64_t n, bool all_positions = false);
  KvCache<T> new_cache() const { return KvCache<T>(config()); }

  // ---- per-layer inference for Attention-FFN disaggregation (step3_inference.cpp) ----
  // The same weights split by ParamSpec::side: the attention side runs embed / attention_qkv / attention_out /
  // logits, the FFN side runs ffn. The caller owns the KV cache and the attention core in between. Each call uses
  // only its own scratch, so the two sides may run on different threads at once. Rows: n tokens.
  void infer_embed(const int32_t* tokens, int64_t n, T* x) const;                     // x (n, C)
  // input_layernorm, q_proj, inter_norm, wq, k_proj, v_proj, RoPE at `pos`: q (n, H, D), k (n, D), v (n, D).
  void infer_attention_qkv(int64_t layer, const T* x, const int32_t* pos, int64_t n, T* q, T* k, T* v) const;
  // x += o_proj(att); h = post_attention_layernorm(x); MoE layers also route h: ids (n, K), weights (n, K)
  // (ids / weights untouched on dense layers). att (n, H, D), x (n, C), h (n, C).
  void infer_attention_out(int64_t layer, const T* att, int64_t n, T* x, T* h, int32_t* ids, T* weights) const;
  // FFN side: out (n, C) = dense MLP(h), or routed experts (ids, weights) + shared expert of h.
  void infer_ffn(int64_t layer, const T* h, const int32_t* ids, const T* weights, int64_t n, T* out) const;
  // Attention side: logits (n, V) = lm_head(final norm(x)).
  void infer_logits(const T* x, int64_t n, T* logits) const;

 private:
  std::unique_ptr<Step3ModelState<T>> s_;
};

extern template class Step3Model<float>;
extern template class Step3Model<double>;

}  // namespace stepwise
