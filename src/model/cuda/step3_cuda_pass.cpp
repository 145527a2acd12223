// The Step-3 layers on the device in activation type T (float or bf16): the same pieces, order and saved tensors as
// Step3Model's training path (step3_model.cpp), each op a stepwise::cuda launch on the model's stream. Statistics
// (rstd, lse), routing probabilities/weights, losses and parameter gradients are fp32 (S = float) in both modes.
// Glossary: N tokens, C hidden, Q share_q_dim, H heads, D head_dim, F dense FFN, E experts, K top_k, R = N*K,
// Fm expert FFN, Fs shared-expert FFN, V vocabulary.
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "cuda/ops_cuda.h"
#include "model/cuda/cuda_backend.h"
#include "model/cuda/cuda_layer_weights.h"
#include "model/cuda/cuda_model_state.h"
#include "model/ffn_backward.h"
#include "model/moe_ffn_forward.h"
#include "model/op_params.h"
#include "model/step3_model_impl.h"   // Carver

namespace stepwise {

namespace {

// One layer's saved forward tensors (device). The router's load and aux loss go to the state's output buffer.
template <class T>
struct CudaLayerActs {
  T* x_mid = nullptr;      // (N, C) residual stream after attention
  T* h1 = nullptr;         // (N, C) input_layernorm output
  float* rstd1 = nullptr;  // (N)
  T* cq_raw = nullptr;     // (N, Q) q_proj output
  float* rstd_q = nullptr; // (N)
  T* cq = nullptr;         // (N, Q) inter_norm output
  T* q = nullptr;          // (N, H, D) rotated
  T* k = nullptr;          // (N, D)    rotated
  T* v = nullptr;          // (N, D)
  T* att = nullptr;        // (N, H, D)
  float* lse = nullptr;    // (B, H, T)
  T* h2 = nullptr;         // (N, C) post_attention_layernorm output
  float* rstd2 = nullptr;  // (N)
  // dense FFN
  T* gate = nullptr;       // (N, F)
  T* up = nullptr;         // (N, F)
  T* act = nullptr;        // (N, F)
  // MoE FFN
  T* logits = nullptr;     // (N, E)
  float* probs = nullptr;  // (N, E)
  float* weights = nullptr;// (N, K)
  int32_t* idx = nullptr;  // (N, K)
  RoutePlan plan;          // device arrays: offsets (E + 1), row_token (R), row_of_slot (R)
  T* xp = nullptr;         // (R, C)
  T* gate_p = nullptr;     // (R, Fm)
  T* up_p = nullptr;       // (R, Fm)
  T* act_p = nullptr;      // (R, Fm)
  T* yp = nullptr;         // (R, C)
  T* s_gate = nullptr;     // (N, Fs)
  T* s_up = nullptr;       // (N, Fs)
  T* s_act = nullptr;      // (N, Fs)
};

// Backward scratch shared by all layers (overwritten layer by layer).
template <class T>
struct CudaGradScratch {
  T *dx = nullptr, *dh = nullptr;                        // (N, C)
  T *datt = nullptr, *dq = nullptr;                      // (N, H*D)
  T *dk = nullptr, *dv = nullptr;                        // (N, D)
  T *dcq = nullptr, *dcq_raw = nullptr;                  // (N, Q)
  T *dact = nullptr, *dgate = nullptr, *dup = nullptr;   // (N, F)
  T* dyp = nullptr;                                      // (R, C)
  float* dweights = nullptr;                             // (N, K)
  T *dact_p = nullptr, *dgate_p = nullptr, *dup_p = nullptr;   // (R, Fm)
  T *dxp = nullptr, *dxp2 = nullptr;                     // (R, C)
  T* dlogits = nullptr;                                  // (N, E)
  T *dact_s = nullptr, *dgate_s = nullptr, *dup_s = nullptr;   // (N, Fs)
  T* dhf = nullptr;                                      // (N, C)
};

// RoPE on q (N, H, D) and the shared k (N, 1, D) at positions pos: forward rotates in place; backward rotates the
// gradients dq, dk back in place.
template <class T>
void rope_qk(T* q, T* k, const int32_t* pos, int64_t N, int64_t H, int64_t D, double theta, bool backward,
             cudaStream_t stream) {
  RopeParams<T> p;
  p.pos = pos;
  p.N = N;
  p.D = D;
  p.theta = theta;
  for (auto [x, heads] : {std::pair<T*, int64_t>{q, H}, std::pair<T*, int64_t>{k, 1}}) {
    p.x = x;
    p.H = heads;
    if (backward)
      cuda::rope_backward(p, stream);
    else
      cuda::rope_forward(p, stream);
  }
}

// The backward ops the layer walk calls most, over the op_params.h builders (parameter gradients fp32).
template <class T>
void linear_back(T* dinp, bool accumulate, const T* dout, const T* inp, const CudaWeight<T>& w, int64_t N, int64_t I,
                 int64_t O, cudaStream_t stream) {
  cuda::linear_backward(linear_backward_params(dinp, accumulate, dout, inp, w, N, I, O), stream);
}

template <class T>
void rmsnorm_back(T* dinp, bool accumulate, const T* dout, const T* inp, const float* rstd, const CudaWeight<T>& w,
                  int64_t N, int64_t C, double eps, cudaStream_t stream) {
  cuda::rmsnorm_backward(rmsnorm_backward_params(dinp, accumulate, dout, inp, rstd, w, N, C, eps), stream);
}

template <class T>
void swiglu_back(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t N, int64_t F,
                 cudaStream_t stream) {
  cuda::swiglu_backward(swiglu_backward_params(dgate, dup, dout, gate, up, N, F), stream);
}

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
  void attention_inputs(const Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a, const T* x_in);
  void attention_core(const Step3CudaState& s, CudaLayerActs<T>& a);
  // The forward fields of the layer's causal (segment-masked) attention over the batch; backward adds the gradients.
  AttentionParams<T, float> attention_params(const Step3CudaState& s, const CudaLayerActs<T>& a) const;
  void attention_output_and_ffn(Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a,
                                const T* x_in, T* x_out);
  void attention_backward(const Step3CudaState& s, const CudaLayerWeights<T>& lw, const CudaLayerActs<T>& a,
                          const T* x_in);

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
  const int64_t N = s.N, L = cfg_.num_hidden_layers, C = cfg_.hidden_size, Q = cfg_.share_q_dim;
  const int64_t H = cfg_.num_attention_heads, D = cfg_.head_dim, HD = H * D, F = cfg_.intermediate_size;
  const int64_t E = cfg_.moe_num_experts, K = cfg_.moe_top_k, R = N * K;
  const int64_t Fm = cfg_.moe_intermediate_size, Fs = cfg_.share_expert_dim;
  auto carve_all = [&](Carver<T>& t, Carver<float>& f, Carver<int32_t>& i32, Carver<int64_t>& i64) {
    acts_.assign(static_cast<size_t>(L), CudaLayerActs<T>{});
    resid_.assign(static_cast<size_t>(L + 1), nullptr);
    for (auto& r : resid_) r = t.take(N * C);
    for (int64_t l = 0; l < L; ++l) {
      CudaLayerActs<T>& a = acts_[static_cast<size_t>(l)];
      a.x_mid = t.take(N * C);
      a.h1 = t.take(N * C);
      a.rstd1 = f.take(N);
      a.cq_raw = t.take(N * Q);
      a.rstd_q = f.take(N);
      a.cq = t.take(N * Q);
      a.q = t.take(N * HD);
      a.k = t.take(N * D);
      a.v = t.take(N * D);
      a.att = t.take(N * HD);
      a.lse = f.take(s.B * H * s.T_len);
      a.h2 = t.take(N * C);
      a.rstd2 = f.take(N);
      if (!layers_[static_cast<size_t>(l)].moe) {
        a.gate = t.take(N * F);
        a.up = t.take(N * F);
        a.act = t.take(N * F);
        continue;
      }
      a.logits = t.take(N * E);
      a.probs = f.take(N * E);
      a.weights = f.take(N * K);
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
  const int64_t N = s.N, C = cfg_.hidden_size, Q = cfg_.share_q_dim, D = cfg_.head_dim;
  const int64_t HD = cfg_.num_attention_heads * D, F = cfg_.intermediate_size;
  const int64_t E = cfg_.moe_num_experts, K = cfg_.moe_top_k, R = N * K;
  const int64_t Fm = cfg_.moe_intermediate_size, Fs = cfg_.share_expert_dim;
  auto carve_all = [&](Carver<T>& t, Carver<float>& f) {
    CudaGradScratch<T>& g = gs_;
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
    g.dweights = f.take(N * K);
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
  };
  Carver<T> t;
  Carver<float> f;
  carve_all(t, f);
  grad_t_ = cuda::DeviceBuffer<T>(t.used);
  grad_f_ = cuda::DeviceBuffer<float>(std::max<int64_t>(f.used, 1));
  t = Carver<T>{grad_t_.data(), 0};
  f = Carver<float>{grad_f_.data(), 0};
  carve_all(t, f);
}

// ---------------------------------------------------------------- forward

// input_layernorm, q_proj, inter_norm, wq, k_proj, v_proj, RoPE on q (H heads) and k (one head).
template <class T>
void CudaPassT<T>::attention_inputs(const Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a,
                                    const T* x_in) {
  const int64_t N = s.N, C = cfg_.hidden_size, Q = cfg_.share_q_dim, H = cfg_.num_attention_heads;
  const int64_t D = cfg_.head_dim;
  const double eps = cfg_.rms_norm_eps;
  cudaStream_t st = s.stream;
  cuda::rmsnorm_forward(rmsnorm_params(a.h1, a.rstd1, x_in, lw.input_norm, N, C, eps), st);
  cuda::linear_forward(linear_params(a.cq_raw, a.h1, lw.q_proj, N, C, Q), st);
  cuda::rmsnorm_forward(rmsnorm_params(a.cq, a.rstd_q, a.cq_raw, lw.inter_norm, N, Q, eps), st);
  cuda::linear_forward(linear_params(a.q, a.cq, lw.wq, N, Q, H * D), st);
  cuda::linear_forward(linear_params(a.k, a.h1, lw.k_proj, N, C, D), st);
  cuda::linear_forward(linear_params(a.v, a.h1, lw.v_proj, N, C, D), st);
  rope_qk(a.q, a.k, s.pos(), N, H, D, cfg_.rope_theta, false, st);
}

template <class T>
AttentionParams<T, float> CudaPassT<T>::attention_params(const Step3CudaState& s, const CudaLayerActs<T>& a) const {
  AttentionParams<T, float> ap;
  ap.out = a.att;
  ap.lse = a.lse;
  ap.q = a.q;
  ap.k = a.k;
  ap.v = a.v;
  ap.seg = s.seg();
  ap.B = s.B;
  ap.Tq = s.T_len;
  ap.Tk = s.T_len;
  ap.H = cfg_.num_attention_heads;
  ap.D = cfg_.head_dim;
  return ap;
}

template <class T>
void CudaPassT<T>::attention_core(const Step3CudaState& s, CudaLayerActs<T>& a) {
  cuda::attention_forward(attention_params(s, a), s.stream);
}

// o_proj, residual + post_attention_layernorm (fused), FFN, residual: x_out = x_mid + ffn(h2).
template <class T>
void CudaPassT<T>::attention_output_and_ffn(Step3CudaState& s, const CudaLayerWeights<T>& lw, CudaLayerActs<T>& a,
                                            const T* x_in, T* x_out) {
  const int64_t N = s.N, C = cfg_.hidden_size, HD = cfg_.num_attention_heads * cfg_.head_dim;
  const size_t row_bytes = sizeof(T) * static_cast<size_t>(N * C);
  cudaStream_t st = s.stream;
  cuda::linear_forward(linear_params(tmp_, a.att, lw.o_proj, N, HD, C), st);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(a.x_mid, x_in, row_bytes, cudaMemcpyDeviceToDevice, st));
  cuda::add_rmsnorm_forward(a.x_mid, static_cast<const T*>(tmp_),
                            rmsnorm_params(a.h2, a.rstd2, static_cast<const T*>(nullptr), lw.post_norm, N, C,
                                    cfg_.rms_norm_eps),
                            st);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(x_out, a.x_mid, row_bytes, cudaMemcpyDeviceToDevice, st));

  if (!lw.moe) {
    const int64_t F = cfg_.intermediate_size;
    cuda::linear_forward(linear_params(a.gate, a.h2, lw.mlp_gate, N, C, F), st);
    cuda::linear_forward(linear_params(a.up, a.h2, lw.mlp_up, N, C, F), st);
    cuda::swiglu_forward(swiglu_params(a.act, a.gate, a.up, N, F), st);
    cuda::linear_forward(linear_params(tmp_, a.act, lw.mlp_down, N, F, C), st);
    cuda::add_inplace(x_out, static_cast<const T*>(tmp_), N * C, st);
    return;
  }

  const int64_t E = cfg_.moe_num_experts, K = cfg_.moe_top_k;
  const int64_t Fm = cfg_.moe_intermediate_size, Fs = cfg_.share_expert_dim;
  // router: softmax over all experts, top-k (selection steered by the loss-free bias when enabled)
  cuda::linear_forward(linear_params(a.logits, a.h2, lw.router, N, C, E), st);
  RouterParams<T, float> rp;
  rp.probs = a.probs;
  rp.idx = a.idx;
  rp.weights = a.weights;
  rp.load = s.load_slot(lw.moe_index);
  rp.aux_loss = s.aux_slot(lw.moe_index);
  rp.logits = a.logits;
  rp.bias = s.opts.expert_bias ? s.bias_of(lw.moe_index) : nullptr;
  rp.N = N;
  rp.E = E;
  rp.K = K;
  rp.renormalize = cfg_.norm_expert_weight;
  rp.aux_coef = s.opts.aux_loss_coef;
  cuda::router_forward(rp, st);
  // routed experts over the permuted rows, then the shared expert
  moe_ffn_forward(CudaBackend{st}, lw, a.plan, static_cast<const T*>(a.h2), x_out, moe_ffn_buffers(a, tmp_), C, Fm, Fs);
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
  for (int64_t l = 0; l < L; ++l) {
    const CudaLayerWeights<T>& lw = layers_[static_cast<size_t>(l)];
    CudaLayerActs<T>& a = acts_[static_cast<size_t>(l)];
    attention_inputs(s, lw, a, resid_[static_cast<size_t>(l)]);
    attention_core(s, a);
    attention_output_and_ffn(s, lw, a, resid_[static_cast<size_t>(l)], resid_[static_cast<size_t>(l + 1)]);
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

// In: gs.dx = d(x_mid). Out: gs.dx = d(x_in).
template <class T>
void CudaPassT<T>::attention_backward(const Step3CudaState& s, const CudaLayerWeights<T>& lw,
                                      const CudaLayerActs<T>& a, const T* x_in) {
  const int64_t N = s.N, C = cfg_.hidden_size, Q = cfg_.share_q_dim, H = cfg_.num_attention_heads;
  const int64_t D = cfg_.head_dim;
  CudaGradScratch<T>& gs = gs_;
  cudaStream_t st = s.stream;
  linear_back(gs.datt, false, gs.dx, a.att, lw.o_proj, N, H * D, C, st);
  AttentionParams<T, float> ap = attention_params(s, a);
  ap.dq = gs.dq;
  ap.dk = gs.dk;
  ap.dv = gs.dv;
  ap.dout = gs.datt;
  cuda::attention_backward(ap, st);
  rope_qk(gs.dq, gs.dk, s.pos(), N, H, D, cfg_.rope_theta, true, st);
  linear_back(gs.dcq, false, gs.dq, a.cq, lw.wq, N, Q, H * D, st);
  rmsnorm_back(gs.dcq_raw, false, gs.dcq, a.cq_raw, a.rstd_q, lw.inter_norm, N, Q, cfg_.rms_norm_eps, st);
  linear_back(gs.dh, false, gs.dcq_raw, a.h1, lw.q_proj, N, C, Q, st);
  linear_back(gs.dh, true, gs.dk, a.h1, lw.k_proj, N, C, D, st);
  linear_back(gs.dh, true, gs.dv, a.h1, lw.v_proj, N, C, D, st);
  rmsnorm_back(gs.dx, true, gs.dh, x_in, a.rstd1, lw.input_norm, N, C, cfg_.rms_norm_eps, st);
}

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
  rmsnorm_back(gs_.dx, false, gs_.dhf, resid_[static_cast<size_t>(L)], rstd_f_, final_norm_, N, C,
               cfg_.rms_norm_eps, st);
  for (int64_t l = L - 1; l >= 0; --l) {
    const CudaLayerWeights<T>& lw = layers_[static_cast<size_t>(l)];
    const CudaLayerActs<T>& a = acts_[static_cast<size_t>(l)];
    float* load = lw.moe ? s.load_slot(lw.moe_index) : nullptr;
    ffn_backward(CudaBackend{s.stream}, lw, a, gs_, a.plan, load, cfg_, s.N, s.opts.aux_loss_coef * aux_weight);
    attention_backward(s, lw, a, resid_[static_cast<size_t>(l)]);
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
