// The Step-3 training pass on the device in activation type T (float or bf16): device arenas carved in the shared
// layer layout (model/layer_acts.h), and the layer math of model/layer_forward.h / layer_backward.h (the code the CPU
// model runs and gradient-checks) queued through CudaBackend on the model's stream. Statistics (rstd, lse), routing
// probabilities/weights, losses and parameter gradients are fp32 (S = float) in both modes.
// Glossary: N tokens, C hidden, Q share_q_dim, H heads, D head_dim, F dense FFN, E experts, K top_k, R = N*K,
// Fm expert FFN, Fs shared-expert FFN, V vocabulary.
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "cuda/ops_cuda.h"
#include "model/cuda/cuda_backend.h"
#include "model/cuda/cuda_layer_weights.h"
#include "model/cuda/cuda_model_state.h"
#include "model/layer_acts.h"
#include "model/layer_backward.h"
#include "model/layer_forward.h"
#include "model/op_params.h"

namespace stepwise {

namespace {

// One layer's saved forward tensors and the backward scratch (device): the CPU model's layout with fp32 statistics
// and routing. The router's load and aux loss go to the state's output buffer instead.
template <class T>
using CudaLayerActs = LayerActs<T, float>;
template <class T>
using CudaGradScratch = GradScratch<T, float>;

template <class T>
class CudaPassT final : public CudaPass {
 public:
  explicit CudaPassT(Step3CudaState& s);
  void forward(Step3CudaState& s) override;
  void backward(Step3CudaState& s, double aux_weight) override;
  int64_t device_bytes() const override;

 private:
  void carve(const Step3CudaState& s);
  void carve_grads(const Step3CudaState& s);
  // The forward fields of the layer's causal (segment-masked) attention over the batch; backward adds the gradients.
  AttentionParams<T, float> attention_params(const Step3CudaState& s, const CudaLayerActs<T>& a) const;
  void attention_output_and_ffn(Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a,
                                const T* x_in, T* x_out);

  Step3Config cfg_;
  std::vector<CudaLayerWeights<T>> layers_;
  CudaWeight<T> embed_, final_norm_, lm_head_;

  int64_t N_ = 0, B_ = 0, T_ = 0;   // shape the activation arenas were carved for
  cuda::DeviceBuffer<T> act_t_;
  cuda::DeviceBuffer<float> act_f_;
  cuda::DeviceBuffer<int32_t> act_i_;
  cuda::DeviceBuffer<int64_t> act_l_;
  std::vector<CudaLayerActs<T>> acts_;   // [layer]
  std::vector<T*> resid_;                // [layer + 1] (N, C)
  T* tmp_ = nullptr;                     // (N, C) branch output before it is added
  T* hf_ = nullptr;                      // (N, C) final norm output
  float* rstd_f_ = nullptr;              // (N)
  float* lse_f_ = nullptr;               // (N)
  cuda::DeviceBuffer<T> grad_t_;
  cuda::DeviceBuffer<float> grad_f_;
  CudaGradScratch<T> gs_;
};

template <class T>
CudaPassT<T>::CudaPassT(Step3CudaState& s) : cfg_(s.cfg) {
  const T* wbase = nullptr;
  if constexpr (std::is_same_v<T, float>)
    wbase = s.master.data();
  else
    wbase = s.weights_bf16.data();
  CudaDecoderWeights<T> bound = bind_cuda_weights(cfg_, s.specs, wbase, s.grad.data());
  embed_ = bound.embed;
  final_norm_ = bound.final_norm;
  lm_head_ = bound.lm_head;
  layers_ = std::move(bound.layers);
}

template <class T>
int64_t CudaPassT<T>::device_bytes() const {
  return (act_t_.size() + grad_t_.size()) * static_cast<int64_t>(sizeof(T)) +
         (act_f_.size() + grad_f_.size()) * static_cast<int64_t>(sizeof(float)) +
         act_i_.size() * static_cast<int64_t>(sizeof(int32_t)) + act_l_.size() * static_cast<int64_t>(sizeof(int64_t));
}

// Activation arenas sized from (B, T), carved in a counting pass and then for real; re-carved when the shape changes.
template <class T>
void CudaPassT<T>::carve(const Step3CudaState& s) {
  if (s.N == N_ && s.B == B_ && act_t_.size() > 0) return;
  const int64_t N = s.N, L = cfg_.num_hidden_layers, C = cfg_.hidden_size;
  auto carve_all = [&](Carver<T>& t, Carver<float>& f, Carver<int32_t>& i32, Carver<int64_t>& i64) {
    acts_.assign(static_cast<size_t>(L), CudaLayerActs<T>{});
    resid_.assign(static_cast<size_t>(L + 1), nullptr);
    for (auto& r : resid_) r = t.take(N * C);
    for (int64_t l = 0; l < L; ++l)
      carve_layer_acts(acts_[static_cast<size_t>(l)], cfg_, layers_[static_cast<size_t>(l)].moe, N,
                       s.B * cfg_.num_attention_heads * s.T_len, false, t, f, i32, i64);
    tmp_ = t.take(N * C);
    hf_ = t.take(N * C);
    rstd_f_ = f.take(N);
    lse_f_ = f.take(N);
  };
  Carver<T> t;
  Carver<float> f;
  Carver<int32_t> i32;
  Carver<int64_t> i64;
  carve_all(t, f, i32, i64);
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(s.stream));   // the old arenas may still be in use
  act_t_ = cuda::DeviceBuffer<T>();
  act_f_ = cuda::DeviceBuffer<float>();
  grad_t_ = cuda::DeviceBuffer<T>();   // re-carved at the next backward
  grad_f_ = cuda::DeviceBuffer<float>();
  act_t_ = cuda::DeviceBuffer<T>(t.used);
  act_f_ = cuda::DeviceBuffer<float>(f.used);
  act_i_ = cuda::DeviceBuffer<int32_t>(i32.used);
  act_l_ = cuda::DeviceBuffer<int64_t>(i64.used);
  t = Carver<T>{act_t_.data(), 0};
  f = Carver<float>{act_f_.data(), 0};
  i32 = Carver<int32_t>{act_i_.data(), 0};
  i64 = Carver<int64_t>{act_l_.data(), 0};
  carve_all(t, f, i32, i64);
  N_ = s.N;
  B_ = s.B;
  T_ = s.T_len;
}

template <class T>
void CudaPassT<T>::carve_grads(const Step3CudaState& s) {
  if (grad_t_.size() > 0) return;
  Carver<T> t;
  Carver<float> f;
  carve_grad_scratch(gs_, cfg_, s.N, t, f);
  grad_t_ = cuda::DeviceBuffer<T>(t.used);
  grad_f_ = cuda::DeviceBuffer<float>(std::max<int64_t>(f.used, 1));
  t = Carver<T>{grad_t_.data(), 0};
  f = Carver<float>{grad_f_.data(), 0};
  carve_grad_scratch(gs_, cfg_, s.N, t, f);
}

// ---------------------------------------------------------------- forward

template <class T>
AttentionParams<T, float> CudaPassT<T>::attention_params(const Step3CudaState& s, const CudaLayerActs<T>& a) const {
  return batch_attention_params(a, s.seg(), s.B, s.T_len, cfg_);
}

// o_proj, residual + post_attention_layernorm (fused), FFN, residual: x_out = x_mid + ffn(h2).
template <class T>
void CudaPassT<T>::attention_output_and_ffn(Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a,
                                            const T* x_in, T* x_out) {
  const int64_t N = s.N;
  const size_t row_bytes = sizeof(T) * static_cast<size_t>(N * cfg_.hidden_size);
  const CudaBackend be{s.stream};
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(a.x_mid, x_in, row_bytes, cudaMemcpyDeviceToDevice, s.stream));
  attention_output(be, lw, static_cast<const T*>(a.att), a.x_mid, a.h2, a.rstd2, tmp_, cfg_, N);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(x_out, a.x_mid, row_bytes, cudaMemcpyDeviceToDevice, s.stream));
  // MoE router: softmax over all experts, top-k (selection steered by the loss-free bias when enabled); its load and
  // aux loss go to the state's output buffer
  RouterParams<T, float> rp;
  rp.probs = a.probs;
  rp.idx = a.idx;
  rp.weights = a.weights;
  if (lw.moe) {
    rp.load = s.load_slot(lw.moe_index);
    rp.aux_loss = s.aux_slot(lw.moe_index);
    rp.bias = s.opts.expert_bias ? s.bias_of(lw.moe_index) : nullptr;
  }
  rp.aux_coef = s.opts.aux_loss_coef;
  ffn_layer_forward(be, lw, a, x_out, tmp_, rp, cfg_, N);
}

template <class T>
void CudaPassT<T>::forward(Step3CudaState& s) {
  carve(s);
  const int64_t N = s.N, C = cfg_.hidden_size, L = cfg_.num_hidden_layers;
  cudaStream_t st = s.stream;
  EmbeddingParams<T, float> ep;
  ep.out = resid_[0];
  ep.table = embed_.w;
  ep.ids = s.tokens();
  ep.N = N;
  ep.C = C;
  ep.V = cfg_.vocab_size;
  cuda::embedding_forward(ep, st);
  const CudaBackend be{st};
  for (int64_t l = 0; l < L; ++l) {
    const CudaLayerWeights<T>& lw = layers_[static_cast<size_t>(l)];
    CudaLayerActs<T>& a = acts_[static_cast<size_t>(l)];
    const T* x_in = resid_[static_cast<size_t>(l)];
    attention_inputs(be, lw, attention_inputs_of(a), x_in, s.pos(), cfg_, N);
    cuda::attention_forward(attention_params(s, a), st);
    attention_output_and_ffn(s, lw, a, x_in, resid_[static_cast<size_t>(l + 1)]);
  }
  const T* x_last = resid_[static_cast<size_t>(L)];
  cuda::rmsnorm_forward(rmsnorm_params(hf_, rstd_f_, x_last, final_norm_, N, C, cfg_.rms_norm_eps), st);
  LmHeadLossParams<T, float> lp;
  lp.loss = s.token_loss();
  lp.lse = lse_f_;
  lp.h = hf_;
  lp.weight = lm_head_.w;
  lp.targets = s.targets();
  lp.N = N;
  lp.C = C;
  lp.V = cfg_.vocab_size;
  cuda::lm_head_loss_forward(lp, st);
}

// ---------------------------------------------------------------- backward

template <class T>
void CudaPassT<T>::backward(Step3CudaState& s, double aux_weight) {
  carve_grads(s);
  const int64_t N = s.N, C = cfg_.hidden_size, L = cfg_.num_hidden_layers;
  cudaStream_t st = s.stream;
  LmHeadLossParams<T, float> lp;
  lp.lse = lse_f_;
  lp.h = hf_;
  lp.weight = lm_head_.w;
  lp.targets = s.targets();
  lp.dh = gs_.dhf;
  lp.dweight = lm_head_.g;
  lp.dloss = s.dloss.data();
  lp.N = N;
  lp.C = C;
  lp.V = cfg_.vocab_size;
  cuda::lm_head_loss_backward(lp, st);
  const CudaBackend be{st};
  be.rmsnorm_backward(rmsnorm_backward_params(gs_.dx, false, static_cast<const T*>(gs_.dhf),
                                              static_cast<const T*>(resid_[static_cast<size_t>(L)]),
                                              static_cast<const float*>(rstd_f_), final_norm_, N, C,
                                              cfg_.rms_norm_eps));
  for (int64_t l = L - 1; l >= 0; --l) {
    const CudaLayerWeights<T>& lw = layers_[static_cast<size_t>(l)];
    const CudaLayerActs<T>& a = acts_[static_cast<size_t>(l)];
    // gs.dx: d(x_out) -> d(x_mid) -> d(x_in)
    float* load = lw.moe ? s.load_slot(lw.moe_index) : nullptr;
    ffn_layer_backward(be, lw, a, gs_, load, cfg_, s.N, s.opts.aux_loss_coef * aux_weight);
    attention_layer_backward(be, lw, a, gs_, attention_params(s, a), s.pos(),
                             static_cast<const T*>(resid_[static_cast<size_t>(l)]), cfg_, s.N);
  }
  EmbeddingParams<T, float> ep;
  ep.dtable = embed_.g;
  ep.dout = gs_.dx;
  ep.ids = s.tokens();
  ep.N = N;
  ep.C = C;
  ep.V = cfg_.vocab_size;
  cuda::embedding_backward(ep, st);
}

}  // namespace

std::unique_ptr<CudaPass> make_cuda_pass(Step3CudaState& s) {
  if (s.type == CudaComputeType::bf16) return std::make_unique<CudaPassT<cuda::bf16>>(s);
  return std::make_unique<CudaPassT<float>>(s);
}

}  // namespace stepwise
