// Step3Model inference paths: prefill / decode over a contiguous KV cache per sequence (the dense parts run over all
// new tokens of all sequences at once; attention runs per sequence over its cache), and the per-layer pieces of the
// attention / FFN split the AFD server composes. Nothing is saved for backward; expert-load statistics are untouched.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops.h"
#include "model/cpu_backend.h"
#include "model/layer_forward.h"
#include "model/op_params.h"
#include "model/step3_model_impl.h"

namespace stepwise {

template <class T>
std::vector<T> Step3Model<T>::infer(const std::vector<InferSeq<T>>& seqs, bool all_positions) {
  s_->require_weights(std::nullopt, "infer");
  Step3ModelState<T>& s = *s_;
  const int64_t C = s.cfg.hidden_size, L = s.cfg.num_hidden_layers, H = s.cfg.num_attention_heads;
  const int64_t D = s.cfg.head_dim, V = s.cfg.vocab_size;
  int64_t N = 0;
  for (const InferSeq<T>& q : seqs) {
    if (!q.cache || q.n <= 0 || !q.tokens) fail("Step3Model::infer: every sequence needs a cache and n > 0 tokens");
    if (static_cast<int64_t>(q.cache->k.size()) != L) fail("Step3Model::infer: KV cache built for another model");
    if (q.cache->length + q.n > s.cfg.max_position_embedding)
      fail("Step3Model::infer: sequence length ", q.cache->length + q.n, " exceeds max_position_embedding ",
           s.cfg.max_position_embedding);
    s.check_tokens(q.tokens, q.n, "tokens");
    N += q.n;
  }
  if (N == 0) return {};

  // rows of every new token, in order of seqs; positions continue each cache
  std::vector<int32_t> ids(static_cast<size_t>(N)), pos(static_cast<size_t>(N));
  {
    int64_t r = 0;
    for (const InferSeq<T>& q : seqs)
      for (int64_t i = 0; i < q.n; ++i, ++r) {
        ids[static_cast<size_t>(r)] = q.tokens[i];
        pos[static_cast<size_t>(r)] = static_cast<int32_t>(q.cache->length + i);
      }
  }

  // scratch: the residual stream (two buffers), one set of layer activations, a branch buffer
  auto carve = [&](Carver<T>& f, Carver<int32_t>& i32, Carver<int64_t>& i64, LayerActs<T>& dense_acts,
                   LayerActs<T>& moe_acts, T*& x0, T*& x1, T*& tmp) {
    x0 = f.take(N * C);
    x1 = f.take(N * C);
    tmp = f.take(N * C);
    const int64_t start = f.used, start32 = i32.used, start64 = i64.used;
    carve_layer_acts(dense_acts, s.cfg, false, N, N * H, true, f, f, i32, i64);
    // the MoE layout reuses the same memory as the dense one (one layer at a time)
    const int64_t dense_end = f.used;
    f.used = start;
    i32.used = start32;
    i64.used = start64;
    carve_layer_acts(moe_acts, s.cfg, true, N, N * H, true, f, f, i32, i64);
    f.used = std::max(f.used, dense_end);
  };
  LayerActs<T> dense_acts, moe_acts;
  T *x0 = nullptr, *x1 = nullptr, *tmp = nullptr;
  Carver<T> f;
  Carver<int32_t> i32;
  Carver<int64_t> i64;
  carve(f, i32, i64, dense_acts, moe_acts, x0, x1, tmp);
  std::vector<T> arena(static_cast<size_t>(f.used));
  std::vector<int32_t> ints(static_cast<size_t>(i32.used));
  std::vector<int64_t> offs(static_cast<size_t>(i64.used));
  f = Carver<T>{arena.data(), 0};
  i32 = Carver<int32_t>{ints.data(), 0};
  i64 = Carver<int64_t>{offs.data(), 0};
  carve(f, i32, i64, dense_acts, moe_acts, x0, x1, tmp);

  EmbeddingParams<T> ep;
  ep.out = x0;
  ep.table = s.embed.w;
  ep.ids = ids.data();
  ep.N = N;
  ep.C = C;
  ep.V = V;
  cpu::embedding_forward(ep);
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights<T>& lw = s.layers[static_cast<size_t>(l)];
    LayerActs<T>& a = lw.moe ? moe_acts : dense_acts;
    attention_inputs(CpuBackend{}, lw, attention_inputs_of(a), static_cast<const T*>(x0), pos.data(), s.cfg, N);
    int64_t r = 0;
    for (const InferSeq<T>& q : seqs) {
      // append this sequence's rotated keys and values, then attend over the whole cache
      std::vector<T>& kc = q.cache->k[static_cast<size_t>(l)];
      std::vector<T>& vc = q.cache->v[static_cast<size_t>(l)];
      const int64_t cached = q.cache->length;
      kc.resize(static_cast<size_t>((cached + q.n) * D));
      vc.resize(static_cast<size_t>((cached + q.n) * D));
      std::memcpy(kc.data() + cached * D, a.k + r * D, sizeof(T) * static_cast<size_t>(q.n * D));
      std::memcpy(vc.data() + cached * D, a.v + r * D, sizeof(T) * static_cast<size_t>(q.n * D));
      AttentionParams<T> ap;
      ap.out = a.att + r * H * D;
      ap.lse = a.lse + r * H;
      ap.q = a.q + r * H * D;
      ap.k = kc.data();
      ap.v = vc.data();
      ap.B = 1;
      ap.Tq = q.n;
      ap.Tk = cached + q.n;
      ap.H = H;
      ap.D = D;
      ap.q_offset = cached;
      cpu::attention_forward(ap);
      r += q.n;
    }
    s.attention_output_and_ffn(lw, a, x0, x1, tmp, N, false);
    std::swap(x0, x1);
  }
  for (const InferSeq<T>& q : seqs) q.cache->length += q.n;

  // final norm and logits of the requested rows
  std::vector<int64_t> rows;
  if (all_positions) {
    for (int64_t r = 0; r < N; ++r) rows.push_back(r);
  } else {
    int64_t r = 0;
    for (const InferSeq<T>& q : seqs) {
      r += q.n;
      rows.push_back(r - 1);
    }
  }
  const int64_t M = static_cast<int64_t>(rows.size());
  for (int64_t i = 0; i < M; ++i)   // gather the requested rows into x1
    std::memcpy(x1 + i * C, x0 + rows[static_cast<size_t>(i)] * C, sizeof(T) * static_cast<size_t>(C));
  cpu::rmsnorm_forward(rmsnorm_params(tmp, dense_acts.rstd1, static_cast<const T*>(x1), s.final_norm, M, C,
                                      s.cfg.rms_norm_eps));   // rstd1: scratch (N >= M)
  std::vector<T> logits(static_cast<size_t>(M * V));
  cpu::linear_forward(linear_params(logits.data(), static_cast<const T*>(tmp), s.lm_head, M, C, V));
  return logits;
}

template <class T>
std::vector<T> Step3Model<T>::infer(KvCache<T>& cache, const int32_t* tokens, int64_t n, bool all_positions) {
  return infer(std::vector<InferSeq<T>>{InferSeq<T>{&cache, tokens, n}}, all_positions);
}

// ---------------------------------------------------------------- per-layer pieces (AFD)

namespace {

void check_layer(const Step3Config& cfg, int64_t layer, const char* what) {
  if (layer < 0 || layer >= cfg.num_hidden_layers)
    fail("Step3Model::", what, ": layer ", layer, " outside [0, ", cfg.num_hidden_layers, ")");
}

}  // namespace

template <class T>
void Step3Model<T>::infer_embed(const int32_t* tokens, int64_t n, T* x) const {
  const Step3ModelState<T>& s = *s_;
  s.require_weights(ParamSide::attention, "infer_embed");
  s.check_tokens(tokens, n, "tokens");
  EmbeddingParams<T> ep;
  ep.out = x;
  ep.table = s.embed.w;
  ep.ids = tokens;
  ep.N = n;
  ep.C = s.cfg.hidden_size;
  ep.V = s.cfg.vocab_size;
  cpu::embedding_forward(ep);
}

template <class T>
void Step3Model<T>::infer_attention_qkv(int64_t layer, const T* x, const int32_t* pos, int64_t n, T* q, T* k,
                                        T* v) const {
  const Step3ModelState<T>& s = *s_;
  s.require_weights(ParamSide::attention, "infer_attention_qkv");
  check_layer(s.cfg, layer, "infer_attention_qkv");
  const LayerWeights<T>& lw = s.layers[static_cast<size_t>(layer)];
  const int64_t C = s.cfg.hidden_size, Q = s.cfg.share_q_dim;
  std::vector<T> h1(static_cast<size_t>(n * C)), cq_raw(static_cast<size_t>(n * Q)), cq(static_cast<size_t>(n * Q));
  std::vector<T> rstd(static_cast<size_t>(n));
  AttentionInputs<T, T> b;
  b.h = h1.data();
  b.rstd = rstd.data();
  b.cq_raw = cq_raw.data();
  b.rstd_q = rstd.data();
  b.cq = cq.data();
  b.q = q;
  b.k = k;
  b.v = v;
  attention_inputs(CpuBackend{}, lw, b, x, pos, s.cfg, n);
}

template <class T>
void Step3Model<T>::infer_attention_out(int64_t layer, const T* att, int64_t n, T* x, T* h, int32_t* ids,
                                        T* weights) const {
  const Step3ModelState<T>& s = *s_;
  s.require_weights(ParamSide::attention, "infer_attention_out");
  check_layer(s.cfg, layer, "infer_attention_out");
  const LayerWeights<T>& lw = s.layers[static_cast<size_t>(layer)];
  const int64_t C = s.cfg.hidden_size;
  const CpuBackend be;
  std::vector<T> tmp(static_cast<size_t>(n * C)), rstd(static_cast<size_t>(n));
  attention_output(be, lw, att, x, h, rstd.data(), tmp.data(), s.cfg, n);
  if (!lw.moe) return;
  const int64_t E = s.cfg.moe_num_experts;
  std::vector<T> logits(static_cast<size_t>(n * E)), probs(static_cast<size_t>(n * E)), load(static_cast<size_t>(E));
  RouterParams<T> rp;
  rp.probs = probs.data();
  rp.idx = ids;
  rp.weights = weights;
  rp.load = load.data();
  rp.bias = s.opts.expert_bias ? s.expert_bias[static_cast<size_t>(lw.moe_index)].data() : nullptr;
  route(be, lw, static_cast<const T*>(h), logits.data(), rp, s.cfg, n);
}

template <class T>
void Step3Model<T>::infer_ffn(int64_t layer, const T* h, const int32_t* ids, const T* weights, int64_t n,
                              T* out) const {
  const Step3ModelState<T>& s = *s_;
  s.require_weights(ParamSide::ffn, "infer_ffn");
  check_layer(s.cfg, layer, "infer_ffn");
  const LayerWeights<T>& lw = s.layers[static_cast<size_t>(layer)];
  const int64_t C = s.cfg.hidden_size;
  std::fill(out, out + n * C, T(0));
  if (!lw.moe) {
    const int64_t F = s.cfg.intermediate_size;
    std::vector<T> gate(static_cast<size_t>(n * F)), up(static_cast<size_t>(n * F)), act(static_cast<size_t>(n * F));
    std::vector<T> tmp(static_cast<size_t>(n * C));
    dense_ffn_forward(CpuBackend{}, lw, h, out, gate.data(), up.data(), act.data(), tmp.data(), s.cfg, n);
    return;
  }
  const int64_t E = s.cfg.moe_num_experts, K = s.cfg.moe_top_k, R = n * K, Fm = s.cfg.moe_intermediate_size;
  if (!ids || !weights) fail("Step3Model::infer_ffn: MoE layer ", layer, " needs routing ids and weights");
  for (int64_t i = 0; i < R; ++i)
    if (ids[i] < 0 || ids[i] >= E) fail("Step3Model::infer_ffn: expert id ", ids[i], " outside [0, ", E, ")");
  const int64_t Fs = s.cfg.share_expert_dim;
  std::vector<int64_t> offsets(static_cast<size_t>(E + 1));
  std::vector<int32_t> row_token(static_cast<size_t>(R)), row_of_slot(static_cast<size_t>(R));
  RoutePlan plan;
  plan.offsets = offsets.data();
  plan.row_token = row_token.data();
  plan.row_of_slot = row_of_slot.data();
  plan.idx = ids;
  plan.N = n;
  plan.E = E;
  plan.K = K;
  std::vector<T> xp(static_cast<size_t>(R * C)), yp(static_cast<size_t>(R * C));
  std::vector<T> gate(static_cast<size_t>(R * Fm)), up(static_cast<size_t>(R * Fm)), act(static_cast<size_t>(R * Fm));
  std::vector<T> s_gate(static_cast<size_t>(n * Fs)), s_up(static_cast<size_t>(n * Fs));
  std::vector<T> s_act(static_cast<size_t>(n * Fs));
  std::vector<T> tmp(static_cast<size_t>(n * C));
  MoeFfnBuffers<T, T> b;
  b.xp = xp.data();
  b.yp = yp.data();
  b.gate_p = gate.data();
  b.up_p = up.data();
  b.act_p = act.data();
  b.s_gate = s_gate.data();
  b.s_up = s_up.data();
  b.s_act = s_act.data();
  b.tmp = tmp.data();
  b.weights = weights;
  moe_ffn_forward(CpuBackend{}, lw, plan, h, out, b, C, Fm, Fs);
}

template <class T>
void Step3Model<T>::infer_logits(const T* x, int64_t n, T* logits) const {
  const Step3ModelState<T>& s = *s_;
  s.require_weights(ParamSide::attention, "infer_logits");
  const int64_t C = s.cfg.hidden_size;
  std::vector<T> hf(static_cast<size_t>(n * C)), rstd(static_cast<size_t>(n));
  cpu::rmsnorm_forward(rmsnorm_params(hf.data(), rstd.data(), x, s.final_norm, n, C, s.cfg.rms_norm_eps));
  cpu::linear_forward(linear_params(logits, static_cast<const T*>(hf.data()), s.lm_head, n, C, s.cfg.vocab_size));
}

#define STEPWISE_INFER_PIECES(T)                                                                               \
  template void Step3Model<T>::infer_embed(const int32_t*, int64_t, T*) const;                                 \
  template void Step3Model<T>::infer_attention_qkv(int64_t, const T*, const int32_t*, int64_t, T*, T*, T*) const; \
  template void Step3Model<T>::infer_attention_out(int64_t, const T*, int64_t, T*, T*, int32_t*, T*) const;    \
  template void Step3Model<T>::infer_ffn(int64_t, const T*, const int32_t*, const T*, int64_t, T*) const;      \
  template void Step3Model<T>::infer_logits(const T*, int64_t, T*) const;
STEPWISE_INFER_PIECES(float)
STEPWISE_INFER_PIECES(double)
#undef STEPWISE_INFER_PIECES

template std::vector<float> Step3Model<float>::infer(const std::vector<InferSeq<float>>&, bool);
template std::vector<double> Step3Model<double>::infer(const std::vector<InferSeq<double>>&, bool);
template std::vector<float> Step3Model<float>::infer(KvCache<float>&, const int32_t*, int64_t, bool);
template std::vector<double> Step3Model<double>::infer(KvCache<double>&, const int32_t*, int64_t, bool);

}  // namespace stepwise
