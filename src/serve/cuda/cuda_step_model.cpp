// CudaStepModel: the host plan of a step (token rows, positions, KV destination rows, block tables, logit rows, all
// checked on the host), one upload of it through pinned staging, the layer stack as stepwise::cuda launches on the
// model's stream, and one download of the fp32 logits. Activation type T = float or bf16; routing and norms keep fp32
// statistics. Glossary: N new tokens, S sequences, R logit rows, C hidden, Q share_q_dim, H heads, D head_dim,
// F dense FFN, E experts, K top_k, Fm expert FFN, Fs shared-expert FFN, V vocabulary.
#include "serve/cuda/cuda_step_model.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "cuda/ops_cuda.h"
#include "model/cuda/cuda_backend.h"
#include "model/cuda/cuda_layer_weights.h"
#include "model/cuda/cuda_model_state.h"   // PinnedBuffer
#include "model/layer_acts.h"   // Carver
#include "model/layer_forward.h"
#include "model/op_params.h"
#include "serve/cuda/kv_write.h"

namespace stepwise {

struct CudaStepModel::Impl {
  explicit Impl(CudaComputeType t) : type(t) {}
  virtual ~Impl() = default;
  virtual std::vector<float> forward(const std::vector<StepSeq>& seqs) = 0;
  virtual int64_t device_bytes() const = 0;
  CudaComputeType type;
  bool poison = false;   // set_poison_step_buffers
};

namespace {

// The host side of one step, laid out as it is uploaded: ints = tokens (N) | pos (N) | kv_rows (N) | logit_rows (R)
// | block_table (S, max_blocks); longs = q_start (S + 1) | pos0 (S).
struct StepPlan {
  int64_t N = 0, S = 0, R = 0, max_blocks = 0;
  std::vector<int32_t> ints;
  std::vector<int64_t> longs;
};

StepPlan plan_step(const std::vector<StepSeq>& seqs, const KvPool& pool, int64_t V) {
  StepPlan p;
  p.S = static_cast<int64_t>(seqs.size());
  const int64_t bs = pool.block_size();
  if (pool.num_blocks() * bs > int64_t{0x7fffffff})
    fail("CudaStepModel: ", pool.num_blocks(), " blocks of ", bs, " tokens exceed the 2^31 rows of the device pool");
  for (const StepSeq& s : seqs) {
    if (s.n <= 0 || !s.tokens || !s.blocks) fail("CudaStepModel: a step sequence needs tokens and blocks");
    const int64_t need = pool.blocks_for(s.pos0 + s.n);
    if (s.pos0 < 0 || static_cast<int64_t>(s.blocks->size()) < need)
      fail("CudaStepModel: a sequence at length ", s.pos0 + s.n, " holds only ", s.blocks->size(), " blocks");
    p.N += s.n;
    p.R += s.all_logits ? s.n : 1;
    p.max_blocks = std::max(p.max_blocks, need);
  }
  std::vector<int32_t> tokens, pos, kv_rows, logit_rows, table;
  int64_t row = 0;
  p.longs.push_back(0);
  for (const StepSeq& s : seqs) {
    const std::vector<int32_t>& blocks = *s.blocks;
    for (int64_t i = 0; i < s.n; ++i) {
      const int32_t t = s.tokens[i];
      if (t < 0 || t >= V) fail("CudaStepModel: token ", t, " is outside the vocabulary [0, ", V, ")");
      const int64_t at = s.pos0 + i;
      const int64_t block = blocks[static_cast<size_t>(at / bs)];
      tokens.push_back(t);
      pos.push_back(static_cast<int32_t>(at));
      kv_rows.push_back(static_cast<int32_t>(block * bs + at % bs));
      if (s.all_logits || i == s.n - 1) logit_rows.push_back(static_cast<int32_t>(row + i));
    }
    row += s.n;
    p.longs.push_back(row);
    const int64_t need = pool.blocks_for(s.pos0 + s.n);
    for (int64_t b = 0; b < need; ++b)
      if (blocks[static_cast<size_t>(b)] < 0 || blocks[static_cast<size_t>(b)] >= pool.num_blocks())
        fail("CudaStepModel: block id ", blocks[static_cast<size_t>(b)], " outside the pool [0, ", pool.num_blocks(),
             ")");
    for (int64_t b = 0; b < p.max_blocks; ++b)   // padding entries are never read (beyond the sequence)
      table.push_back(blocks[static_cast<size_t>(std::min(b, need - 1))]);
  }
  for (const StepSeq& s : seqs) p.longs.push_back(s.pos0);
  for (const auto* part : {&tokens, &pos, &kv_rows, &logit_rows, &table})
    p.ints.insert(p.ints.end(), part->begin(), part->end());
  return p;
}

template <class T>
constexpr cuda::GemmType gemm_type() {
  return std::is_same_v<T, float> ? cuda::GemmType::f32 : cuda::GemmType::bf16;
}

// Scratch of one step over at most N token rows and R logit rows, reused by every layer.
template <class T>
struct StepActs {
  T *x = nullptr, *h = nullptr, *tmp = nullptr;          // (N, C)
  T *cq_raw = nullptr, *cq = nullptr;                    // (N, Q)
  T *q = nullptr, *att = nullptr;                        // (N, H, D)
  T *k = nullptr, *v = nullptr;                          // (N, D)
  T *gate = nullptr, *up = nullptr, *act = nullptr;      // (N, F) dense FFN
  T* router_logits = nullptr;                            // (N, E)
  T *xp = nullptr, *yp = nullptr;                        // (N K, C)
  T *gate_p = nullptr, *up_p = nullptr, *act_p = nullptr;   // (N K, Fm)
  T *s_gate = nullptr, *s_up = nullptr, *s_act = nullptr;   // (N, Fs)
  T *x_rows = nullptr, *h_rows = nullptr;                // (R, C) rows whose logits are wanted
  float* rstd = nullptr;                                 // (N)
  float *probs = nullptr, *weights = nullptr;            // (N, E), (N, K)
  float* load = nullptr;                                 // (E) router statistics (unused here)
  float* logits = nullptr;                               // (R, V)
  int32_t* idx = nullptr;                                // (N, K)
  RoutePlan plan;                                        // offsets (E + 1), row_token (N K), row_of_slot (N K)
};

template <class T>
class CudaStepModelT final : public CudaStepModel::Impl {
 public:
  CudaStepModelT(Step3Model<float>& model, const KvPool& pool, CudaComputeType type);
  ~CudaStepModelT() override;
  std::vector<float> forward(const std::vector<StepSeq>& seqs) override;
  int64_t device_bytes() const override;

 private:
  void poison_step_buffers();
  void reserve(int64_t N, int64_t R);   // (re)carves the step buffers for at least N rows and R logit rows
  void attention(int64_t layer, const StepPlan& plan);
  void ffn(int64_t layer, int64_t N);
  T* k_pool(int64_t layer) { return kv_.data() + (2 * layer) * pool_elems_; }
  T* v_pool(int64_t layer) { return kv_.data() + (2 * layer + 1) * pool_elems_; }

  Step3Config cfg_;
  const KvPool& pool_;
  int64_t pool_elems_ = 0;                 // num_blocks * block_size * D per K or V pool
  cudaStream_t stream_ = nullptr;
  cuda::DeviceBuffer<T> weights_;          // (arena) ParamTable layout
  cuda::DeviceBuffer<float> bias_;         // (M, E) loss-free selection biases; empty when disabled
  cuda::DeviceBuffer<T> kv_;               // (L, 2, num_blocks, block_size, D)
  CudaDecoderWeights<T> w_;

  int64_t cap_n_ = 0, cap_r_ = 0;          // rows the step buffers hold
  cuda::DeviceBuffer<T> act_t_;
  cuda::DeviceBuffer<float> act_f_;
  cuda::DeviceBuffer<int32_t> act_i_;
  cuda::DeviceBuffer<int64_t> act_l_;
  StepActs<T> a_;
  cuda::DeviceBuffer<int32_t> step_ints_;  // StepPlan::ints
  cuda::DeviceBuffer<int64_t> step_longs_; // StepPlan::longs
  PinnedBuffer<int32_t> staging_ints_;
  PinnedBuffer<int64_t> staging_longs_;
  PinnedBuffer<float> logits_host_;
};

template <class T>
CudaStepModelT<T>::CudaStepModelT(Step3Model<float>& model, const KvPool& pool, CudaComputeType type)
    : CudaStepModel::Impl(type), cfg_(model.config()), pool_(pool) {
  if (cuda::device_count() == 0) fail("--device cuda: no CUDA device available");
  const int64_t L = cfg_.num_hidden_layers, D = cfg_.head_dim, E = cfg_.moe_num_experts;
  STEPWISE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  // weights: the host arena once (fp32), converted on the device for bf16; copies on the model's stream (a
  // non-blocking stream does not order itself after the legacy default stream)
  const ParamTable<float>& host = model.params();
  const size_t arena_bytes = sizeof(float) * static_cast<size_t>(host.arena_size());
  if constexpr (std::is_same_v<T, float>) {
    weights_ = cuda::DeviceBuffer<float>(host.arena_size());
    STEPWISE_CUDA_CHECK(cudaMemcpyAsync(weights_.data(), host.data(), arena_bytes, cudaMemcpyHostToDevice, stream_));
  } else {
    cuda::DeviceBuffer<float> fp32(host.arena_size());
    STEPWISE_CUDA_CHECK(cudaMemcpyAsync(fp32.data(), host.data(), arena_bytes, cudaMemcpyHostToDevice, stream_));
    weights_ = cuda::DeviceBuffer<T>(host.arena_size());
    cuda::convert(fp32.data(), weights_.data(), host.arena_size(), stream_);
    STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream_));   // before fp32 is freed
  }
  w_ = bind_cuda_weights<T>(cfg_, host.specs(), weights_.data(), nullptr);
  if (model.options().expert_bias && cfg_.num_moe_layers() > 0) {
    std::vector<float> bias;
    for (size_t m = 0; m < static_cast<size_t>(cfg_.num_moe_layers()); ++m) {
      const std::vector<float>& b = model.expert_bias(m);
      if (static_cast<int64_t>(b.size()) != E) fail("CudaStepModel: expert bias ", m, " has ", b.size(), " values");
      bias.insert(bias.end(), b.begin(), b.end());
    }
    bias_ = cuda::DeviceBuffer<float>(bias);
  }
  pool_elems_ = pool.num_blocks() * pool.block_size() * D;
  kv_ = cuda::DeviceBuffer<T>(2 * L * pool_elems_);
  // zeroed so that a never-written slot reads as 0, not NaN (only reachable through a bad block table)
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(kv_.data(), 0, sizeof(T) * static_cast<size_t>(kv_.size()), stream_));
  cuda::device_synchronize();   // also the bias upload, made on the default stream
}

template <class T>
CudaStepModelT<T>::~CudaStepModelT() {
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

template <class T>
int64_t CudaStepModelT<T>::device_bytes() const {
  return (weights_.size() + kv_.size() + act_t_.size()) * static_cast<int64_t>(sizeof(T)) +
         (bias_.size() + act_f_.size()) * static_cast<int64_t>(sizeof(float)) +
         (act_i_.size() + step_ints_.size()) * static_cast<int64_t>(sizeof(int32_t)) +
         (act_l_.size() + step_longs_.size()) * static_cast<int64_t>(sizeof(int64_t));
}

// All-ones bytes are NaN in fp32 and in bf16.
template <class T>
void CudaStepModelT<T>::poison_step_buffers() {
  auto fill = [&](void* p, int64_t count, size_t element) {
    if (count > 0) STEPWISE_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, element * static_cast<size_t>(count), stream_));
  };
  fill(act_t_.data(), act_t_.size(), sizeof(T));
  fill(act_f_.data(), act_f_.size(), sizeof(float));
}

// Carved in a counting pass and then for real (as the training pass does); grows only, to the next multiple of 64.
template <class T>
void CudaStepModelT<T>::reserve(int64_t N, int64_t R) {
  if (N <= cap_n_ && R <= cap_r_) return;
  const int64_t n = std::max(cap_n_, (N + 63) / 64 * 64), r = std::max(cap_r_, (R + 63) / 64 * 64);
  const int64_t C = cfg_.hidden_size, Q = cfg_.share_q_dim, HD = cfg_.num_attention_heads * cfg_.head_dim;
  const int64_t D = cfg_.head_dim, F = cfg_.intermediate_size, E = cfg_.moe_num_experts, K = cfg_.moe_top_k;
  const int64_t Fm = cfg_.moe_intermediate_size, Fs = cfg_.share_expert_dim, V = cfg_.vocab_size, NK = n * K;
  const bool has_moe = cfg_.num_moe_layers() > 0, has_dense = cfg_.num_moe_layers() < cfg_.num_hidden_layers;
  auto carve_all = [&](Carver<T>& t, Carver<float>& f, Carver<int32_t>& i32, Carver<int64_t>& i64) {
    StepActs<T>& a = a_;
    a.x = t.take(n * C);
    a.h = t.take(n * C);
    a.tmp = t.take(n * C);
    a.cq_raw = t.take(n * Q);
    a.cq = t.take(n * Q);
    a.q = t.take(n * HD);
    a.att = t.take(n * HD);
    a.k = t.take(n * D);
    a.v = t.take(n * D);
    a.x_rows = t.take(r * C);
    a.h_rows = t.take(r * C);
    a.rstd = f.take(n);
    a.logits = f.take(r * V);
    if (has_dense) {
      a.gate = t.take(n * F);
      a.up = t.take(n * F);
      a.act = t.take(n * F);
    }
    if (has_moe) {
      a.router_logits = t.take(n * E);
      a.xp = t.take(NK * C);
      a.yp = t.take(NK * C);
      a.gate_p = t.take(NK * Fm);
      a.up_p = t.take(NK * Fm);
      a.act_p = t.take(NK * Fm);
      a.s_gate = t.take(n * Fs);
      a.s_up = t.take(n * Fs);
      a.s_act = t.take(n * Fs);
      a.probs = f.take(n * E);
      a.weights = f.take(n * K);
      a.load = f.take(E);
      a.idx = i32.take(n * K);
      a.plan.offsets = i64.take(E + 1);
      a.plan.row_token = i32.take(NK);
      a.plan.row_of_slot = i32.take(NK);
    }
  };
  Carver<T> t;
  Carver<float> f;
  Carver<int32_t> i32;
  Carver<int64_t> i64;
  carve_all(t, f, i32, i64);
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream_));   // the old buffers may still be in use
  act_t_ = cuda::DeviceBuffer<T>();                       // freed before the larger ones are taken
  act_f_ = cuda::DeviceBuffer<float>();
  act_t_ = cuda::DeviceBuffer<T>(t.used);
  act_f_ = cuda::DeviceBuffer<float>(f.used);
  act_i_ = cuda::DeviceBuffer<int32_t>(std::max<int64_t>(i32.used, 1));
  act_l_ = cuda::DeviceBuffer<int64_t>(std::max<int64_t>(i64.used, 1));
  t = Carver<T>{act_t_.data(), 0};
  f = Carver<float>{act_f_.data(), 0};
  i32 = Carver<int32_t>{act_i_.data(), 0};
  i64 = Carver<int64_t>{act_l_.data(), 0};
  carve_all(t, f, i32, i64);
  logits_host_ = PinnedBuffer<float>(r * V);
  cap_n_ = n;
  cap_r_ = r;
}

// input_layernorm, q_proj, inter_norm, wq, k_proj, v_proj, RoPE; the new K/V rows into the pool; paged attention over
// each sequence's cache; o_proj; x += o; h = post_attention_layernorm(x).
template <class T>
void CudaStepModelT<T>::attention(int64_t layer, const StepPlan& plan) {
  const CudaLayerWeights<T>& lw = w_.layers[static_cast<size_t>(layer)];
  const int64_t N = plan.N, H = cfg_.num_attention_heads, D = cfg_.head_dim;
  const int32_t* pos = step_ints_.data() + N;
  const int32_t* kv_rows = step_ints_.data() + 2 * N;
  const int32_t* table = step_ints_.data() + 3 * N + plan.R;
  StepActs<T>& a = a_;
  cudaStream_t st = stream_;
  const CudaBackend be{st};
  AttentionInputs<T, float> in;   // one rstd buffer serves both norms: backward never reads it here
  in.h = a.h;
  in.rstd = a.rstd;
  in.cq_raw = a.cq_raw;
  in.rstd_q = a.rstd;
  in.cq = a.cq;
  in.q = a.q;
  in.k = a.k;
  in.v = a.v;
  attention_inputs(be, lw, in, static_cast<const T*>(a.x), pos, cfg_, N);
  const int64_t pool_rows = pool_.num_blocks() * pool_.block_size();
  cuda::kv_write(k_pool(layer), v_pool(layer), static_cast<const T*>(a.k), static_cast<const T*>(a.v), kv_rows, N, D,
                 pool_rows, st);
  PagedAttentionParams<T> pp;
  pp.out = a.att;
  pp.q = a.q;
  pp.k_pool = k_pool(layer);
  pp.v_pool = v_pool(layer);
  pp.block_table = table;
  pp.q_start = step_longs_.data();
  pp.pos0 = step_longs_.data() + plan.S + 1;
  pp.S = plan.S;
  pp.max_blocks = plan.max_blocks;
  pp.block_size = pool_.block_size();
  pp.num_blocks = pool_.num_blocks();
  pp.H = H;
  pp.D = D;
  cuda::paged_attention_forward(pp, st);
  attention_output(be, lw, static_cast<const T*>(a.att), a.x, a.h, a.rstd, a.tmp, cfg_, N);
}

// x += FFN(h): the dense SwiGLU MLP, or the routed experts (softmax + top-k, one grouped GEMM launch per projection)
// plus the shared expert.
template <class T>
void CudaStepModelT<T>::ffn(int64_t layer, int64_t N) {
  const CudaLayerWeights<T>& lw = w_.layers[static_cast<size_t>(layer)];
  StepActs<T>& a = a_;
  const CudaBackend be{stream_};
  const T* h = a.h;
  if (!lw.moe) {
    dense_ffn_forward(be, lw, h, a.x, a.gate, a.up, a.act, a.tmp, cfg_, N);
    return;
  }
  const int64_t E = cfg_.moe_num_experts;
  RouterParams<T, float> rp;
  rp.probs = a.probs;
  rp.idx = a.idx;
  rp.weights = a.weights;
  rp.load = a.load;
  rp.bias = bias_.size() > 0 ? bias_.data() + lw.moe_index * E : nullptr;
  route(be, lw, h, a.router_logits, rp, cfg_, N);
  RoutePlan plan = a.plan;
  plan.idx = a.idx;
  plan.N = N;
  plan.E = E;
  plan.K = cfg_.moe_top_k;
  moe_ffn_forward(be, lw, plan, h, a.x, moe_ffn_buffers(a, a.tmp), cfg_.hidden_size, cfg_.moe_intermediate_size,
                  cfg_.share_expert_dim);
}

template <class T>
std::vector<float> CudaStepModelT<T>::forward(const std::vector<StepSeq>& seqs) {
  if (seqs.empty()) return {};
  const int64_t C = cfg_.hidden_size, V = cfg_.vocab_size, L = cfg_.num_hidden_layers;
  const StepPlan plan = plan_step(seqs, pool_, V);
  const int64_t N = plan.N, R = plan.R;
  reserve(N, R);
  if (poison) poison_step_buffers();
  // the step's integers in one copy each (the previous step finished: forward ends with a synchronisation)
  const int64_t n_ints = static_cast<int64_t>(plan.ints.size()), n_longs = static_cast<int64_t>(plan.longs.size());
  if (staging_ints_.size() < n_ints) {
    staging_ints_ = PinnedBuffer<int32_t>(n_ints * 2);
    step_ints_ = cuda::DeviceBuffer<int32_t>(n_ints * 2);
  }
  if (staging_longs_.size() < n_longs) {
    staging_longs_ = PinnedBuffer<int64_t>(n_longs * 2);
    step_longs_ = cuda::DeviceBuffer<int64_t>(n_longs * 2);
  }
  std::memcpy(staging_ints_.data(), plan.ints.data(), sizeof(int32_t) * plan.ints.size());
  std::memcpy(staging_longs_.data(), plan.longs.data(), sizeof(int64_t) * plan.longs.size());
  cudaStream_t st = stream_;
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(step_ints_.data(), staging_ints_.data(), sizeof(int32_t) * plan.ints.size(),
                                      cudaMemcpyHostToDevice, st));
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(step_longs_.data(), staging_longs_.data(), sizeof(int64_t) * plan.longs.size(),
                                      cudaMemcpyHostToDevice, st));
  StepActs<T>& a = a_;
  EmbeddingParams<T, float> ep;
  ep.out = a.x;
  ep.table = w_.embed.w;
  ep.ids = step_ints_.data();
  ep.N = N;
  ep.C = C;
  ep.V = V;
  cuda::embedding_forward(ep, st);
  for (int64_t l = 0; l < L; ++l) {
    attention(l, plan);
    ffn(l, N);
  }
  // the wanted rows (a row gather: the embedding lookup with x as the table), final norm, LM head in fp32
  ep.out = a.x_rows;
  ep.table = a.x;
  ep.ids = step_ints_.data() + 3 * N;
  ep.N = R;
  ep.V = N;
  cuda::embedding_forward(ep, st);
  cuda::rmsnorm_forward(rmsnorm_params(a.h_rows, a.rstd, static_cast<const T*>(a.x_rows), w_.final_norm, R, C,
                                       cfg_.rms_norm_eps),
                        st);
  cuda::GemmArgs g;
  g.a = a.h_rows;
  g.b = w_.lm_head.w;
  g.c = a.logits;
  g.ab_type = gemm_type<T>();
  g.c_type = cuda::GemmType::f32;
  g.trans_b = true;   // lm_head (V, C)
  g.M = R;
  g.N = V;
  g.K = C;
  cuda::gemm(g, st);
  const size_t logit_count = static_cast<size_t>(R * V);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(logits_host_.data(), a.logits, sizeof(float) * logit_count,
                                      cudaMemcpyDeviceToHost, st));
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(st));
  return std::vector<float>(logits_host_.data(), logits_host_.data() + logit_count);
}

}  // namespace

CudaStepModel::CudaStepModel(Step3Model<float>& model, const KvPool& pool, CudaComputeType type) {
  if (type == CudaComputeType::bf16)
    impl_ = std::make_unique<CudaStepModelT<cuda::bf16>>(model, pool, type);
  else
    impl_ = std::make_unique<CudaStepModelT<float>>(model, pool, type);
}

CudaStepModel::~CudaStepModel() = default;

std::vector<float> CudaStepModel::forward(const std::vector<StepSeq>& seqs) { return impl_->forward(seqs); }
void CudaStepModel::set_poison_step_buffers(bool on) { impl_->poison = on; }
CudaComputeType CudaStepModel::compute_type() const { return impl_->type; }
int64_t CudaStepModel::device_bytes() const { return impl_->device_bytes(); }

}  // namespace stepwise
