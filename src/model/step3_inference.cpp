// Step3Model inference path: prefill / decode over a KV cache per sequence. The dense parts (norms, projections, FFN,
// MoE) run over all new tokens of all sequences at once; attention runs per sequence over its cache. Nothing is
// saved for backward and the training statistics (expert load) are left untouched.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops.h"
#include "model/step3_model_impl.h"

namespace stepwise {

template <class T>
std::vector<T> Step3Model<T>::infer(const std::vector<InferSeq<T>>& seqs, bool all_positions) {
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
    LayerWeights<T> dense_shape, moe_shape;
    moe_shape.moe = true;
    const int64_t start = f.used, start32 = i32.used, start64 = i64.used;
    s.carve_layer(dense_acts, dense_shape, N, N * H, f, i32, i64);
    // the MoE layout reuses the same memory as the dense one (one layer at a time)
    const int64_t dense_end = f.used;
    f.used = start;
    i32.used = start32;
    i64.used = start64;
    s.carve_layer(moe_acts, moe_shape, N, N * H, f, i32, i64);
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
    s.attention_inputs(lw, a, x0, pos.data(), N);
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
  RmsNormParams<T> np;
  np.out = tmp;
  np.rstd = dense_acts.rstd1;   // scratch (N >= M)
  np.inp = x1;
  np.weight = s.final_norm.w;
  np.N = M;
  np.C = C;
  np.eps = static_cast<T>(s.cfg.rms_norm_eps);
  cpu::rmsnorm_forward(np);
  std::vector<T> logits(static_cast<size_t>(M * V));
  LinearParams<T> hp;
  hp.out = logits.data();
  hp.inp = tmp;
  hp.weight = s.lm_head.w;
  hp.N = M;
  hp.I = C;
  hp.O = V;
  cpu::linear_forward(hp);
  return logits;
}

template <class T>
std::vector<T> Step3Model<T>::infer(KvCache<T>& cache, const int32_t* tokens, int64_t n, bool all_positions) {
  return infer(std::vector<InferSeq<T>>{InferSeq<T>{&cache, tokens, n}}, all_positions);
}

template std::vector<float> Step3Model<float>::infer(const std::vector<InferSeq<float>>&, bool);
template std::vector<double> Step3Model<double>::infer(const std::vector<InferSeq<double>>&, bool);
template std::vector<float> Step3Model<float>::infer(KvCache<float>&, const int32_t*, int64_t, bool);
template std::vector<double> Step3Model<double>::infer(KvCache<double>&, const int32_t*, int64_t, bool);

}  // namespace stepwise
