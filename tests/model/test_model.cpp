// The whole Step-3 decoder on a tiny config (dense + MoE layers): finite-difference gradients of the weighted loss
// (with aux loss and packed segments, renormalised and not) in double, float/double agreement, packed segments equal
// separate rows, KV-cache decoding equal to full recomputation and to the training loss, loss-free expert bias, and
// overfitting one batch with AdamW.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "adamw_for_tests.h"
#include "core/error.h"
#include "model/step3_model.h"
#include "ops.h"

namespace stepwise {
namespace {

Step3Config tiny_config(bool renormalize) {
  Step3Config c = Step3Config::from_yaml_string(
      "{hidden_size: 16, num_hidden_layers: 3, num_attention_heads: 2, head_dim: 8, share_q_dim: 12,"
      " intermediate_size: 20, moe_layers_enum: '1,2', moe_num_experts: 4, moe_top_k: 2, moe_intermediate_size: 8,"
      " share_expert_dim: 6, vocab_size: 23, rope_theta: 10000}",
      "tiny");
  c.norm_expert_weight = renormalize;
  return c;
}

// Random values large enough that every nonlinearity matters: matrices U(-0.5, 0.5), norm weights U(0.5, 1.5).
template <class T>
void randomize(ParamTable<T>& t, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  for (const ParamSpec& s : t.specs())
    for (int64_t i = 0; i < s.count; ++i)
      t.value(s)[i] = static_cast<T>(s.init == ParamInit::ones ? 1.0 + u(rng) : u(rng));
}

// Two rows of T tokens; row 1 packs two documents (segments, positions restarting), some targets ignored.
struct TinyBatch {
  int64_t B = 2, T = 7;
  std::vector<int32_t> tokens, targets, pos, seg;
  explicit TinyBatch(int64_t vocab, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        tokens.push_back(static_cast<int32_t>(rng() % vocab));
        targets.push_back(static_cast<int32_t>(rng() % vocab));
        const bool second_doc = b == 1 && t >= 3;
        seg.push_back(second_doc ? 1 : 0);
        pos.push_back(static_cast<int32_t>(second_doc ? t - 3 : t));
      }
    targets[0] = -100;
    targets[9] = -100;
  }
  TrainBatch view() const { return TrainBatch{tokens.data(), targets.data(), pos.data(), seg.data(), B, T}; }
};

// d/dp of  sum_n w[n] loss[n] + aux_loss  against central differences, on a sample of elements of every tensor.
void check_gradients(bool renormalize) {
  Step3Model<double> model(tiny_config(renormalize), ModelOptions{0.05, false});
  ParamTable<double>& params = model.params();
  randomize(params, 11);
  const TinyBatch batch(23, 5);
  std::vector<double> w(batch.tokens.size());
  std::mt19937_64 rng(3);
  for (auto& x : w) x = std::uniform_real_distribution<double>(0.2, 1.0)(rng);
  auto objective = [&] {
    model.forward(batch.view());
    double total = model.aux_loss();
    for (size_t n = 0; n < w.size(); ++n)
      if (batch.targets[n] != -100) total += w[n] * model.token_loss()[n];
    return total;
  };
  objective();
  ASSERT_GT(model.aux_loss(), 0.0);
  params.zero_grad();
  model.backward(w.data());

  const double h = 1e-5;
  for (const ParamSpec& s : params.specs()) {
    double grad_norm = 0;
    for (int64_t i = 0; i < s.count; ++i) grad_norm += std::abs(params.grad(s)[i]);
    EXPECT_GT(grad_norm, 0.0) << s.name << " receives no gradient";
    double worst = 0;
    int64_t worst_i = 0;
    for (int k = 0; k < 5; ++k) {
      const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(s.count));
      double* p = params.value(s) + i;
      const double saved = *p;
      *p = saved + h;
      const double lp = objective();
      *p = saved - h;
      const double lm = objective();
      *p = saved;
      const double numeric = (lp - lm) / (2 * h);
      const double analytic = params.grad(s)[i];
      const double err = std::abs(numeric - analytic) / std::max(1e-3, std::abs(numeric) + std::abs(analytic));
      if (err > worst) {
        worst = err;
        worst_i = i;
      }
    }
    EXPECT_LT(worst, 1e-5) << s.name << " element " << worst_i << " analytic " << params.grad(s)[worst_i];
  }
}

TEST(Step3Model, FiniteDifferenceGradientsTopKWeights) { check_gradients(false); }
TEST(Step3Model, FiniteDifferenceGradientsRenormalisedWeights) { check_gradients(true); }

TEST(Step3Model, FloatMatchesDouble) {
  const Step3Config cfg = tiny_config(false);
  Step3Model<double> md(cfg, ModelOptions{0.01, false});
  Step3Model<float> mf(cfg, ModelOptions{0.01, false});
  randomize(md.params(), 21);
  mf.params().copy_values_from(md.params());
  const TinyBatch batch(23, 8);
  const double ld = md.forward(batch.view());
  const double lf = mf.forward(batch.view());
  EXPECT_NEAR(lf, ld, 1e-5 * std::abs(ld));
  EXPECT_NEAR(mf.aux_loss(), md.aux_loss(), 1e-6);
  md.backward_mean();
  mf.backward_mean();
  for (const ParamSpec& s : md.params().specs()) {
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < s.count; ++i) {
      const double d = md.params().grad(s)[i];
      diff += (mf.params().grad(s)[i] - d) * (mf.params().grad(s)[i] - d);
      ref += d * d;
    }
    EXPECT_LT(std::sqrt(diff / std::max(ref, 1e-30)), 1e-4) << s.name;
  }
}

TEST(Step3Model, PackedSegmentsEqualSeparateRows) {
  Step3Model<double> model(tiny_config(true));
  randomize(model.params(), 4);
  const TinyBatch packed(23, 9);
  model.forward(packed.view());
  const std::vector<double> packed_lp = model.token_logprobs();
  // row 1 holds documents [0, 3) and [3, 7): run each alone as its own batch
  for (auto [start, len] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}}) {
    std::vector<int32_t> tok(packed.tokens.begin() + 7 + start, packed.tokens.begin() + 7 + start + len);
    std::vector<int32_t> tgt(packed.targets.begin() + 7 + start, packed.targets.begin() + 7 + start + len);
    std::vector<int32_t> pos(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    model.forward(TrainBatch{tok.data(), tgt.data(), pos.data(), nullptr, 1, len});
    const std::vector<double> alone = model.token_logprobs();
    for (int64_t i = 0; i < len; ++i)
      EXPECT_NEAR(alone[static_cast<size_t>(i)], packed_lp[static_cast<size_t>(7 + start + i)], 1e-12);
  }
}

TEST(Step3Model, KvCacheDecodingMatchesFullRecompute) {
  const Step3Config cfg = tiny_config(false);
  Step3Model<float> model(cfg, {}, false);
  randomize(model.params(), 17);
  const int64_t n = 12, V = cfg.vocab_size;
  std::vector<int32_t> seq(n);
  for (int64_t i = 0; i < n; ++i) seq[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % V);

  KvCache<float> full = model.new_cache();
  const std::vector<float> ref = model.infer(full, seq.data(), n, true);   // (n, V)
  ASSERT_EQ(static_cast<int64_t>(ref.size()), n * V);
  EXPECT_EQ(full.length, n);

  KvCache<float> inc = model.new_cache();
  std::vector<float> got = model.infer(inc, seq.data(), 5, true);         // prefill 5
  for (int64_t i = 5; i < n; ++i) {                                        // then one token at a time
    const std::vector<float> step = model.infer(inc, seq.data() + i, 1);
    got.insert(got.end(), step.begin(), step.end());
  }
  ASSERT_EQ(got.size(), ref.size());
  float worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - ref[i]) / std::max(1.0f, std::abs(ref[i])));
  EXPECT_LT(worst, 1e-5f);

  // batched decode of two sequences at different lengths equals decoding each alone
  KvCache<float> a = model.new_cache(), b = model.new_cache();
  model.infer(a, seq.data(), 4);
  model.infer(b, seq.data(), 9);
  const std::vector<float> both =
      model.infer({InferSeq<float>{&a, seq.data() + 4, 1}, InferSeq<float>{&b, seq.data() + 9, 2}});
  ASSERT_EQ(static_cast<int64_t>(both.size()), 2 * V);
  for (int64_t v = 0; v < V; ++v) {
    EXPECT_NEAR(both[static_cast<size_t>(v)], ref[static_cast<size_t>(4 * V + v)], 1e-5);
    EXPECT_NEAR(both[static_cast<size_t>(V + v)], ref[static_cast<size_t>(10 * V + v)], 1e-5);
  }

  // the training path's per-token loss is lse(logits) - logits[target] of the same logits
  std::vector<int32_t> pos(n), tgt(n);
  for (int64_t i = 0; i < n; ++i) {
    pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    tgt[static_cast<size_t>(i)] = seq[static_cast<size_t>((i + 1) % n)];
  }
  Step3Model<float> trainer(cfg);
  trainer.params().copy_values_from(model.params());
  trainer.forward(TrainBatch{seq.data(), tgt.data(), pos.data(), nullptr, 1, n});
  for (int64_t i = 0; i < n; ++i) {
    const float* row = ref.data() + i * V;
    double mx = row[0], sum = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
    const double loss = mx + std::log(sum) - row[tgt[static_cast<size_t>(i)]];
    EXPECT_NEAR(trainer.token_loss()[i], loss, 1e-4);
  }
}

// A model of one AFD side (ModelOptions::only_side) computes its side's per-layer pieces exactly as the full model
// does, and refuses what needs the other side's weights.
TEST(Step3Model, OneAfdSideRunsItsPiecesAndRefusesTheRest) {
  const Step3Config cfg = tiny_config(false);
  const int64_t n = 5, C = cfg.hidden_size, H = cfg.num_attention_heads, D = cfg.head_dim, K = cfg.moe_top_k;
  Step3Model<float> full(cfg, {}, false);
  randomize(full.params(), 23);
  ModelOptions attention_only, ffn_only;
  attention_only.only_side = ParamSide::attention;
  ffn_only.only_side = ParamSide::ffn;
  Step3Model<float> attn(cfg, attention_only, false), ffn(cfg, ffn_only, false);
  for (Step3Model<float>* side : {&attn, &ffn})
    for (const ParamSpec& s : side->params().specs())
      if (ParamTable<float>::holds(s))
        std::copy_n(full.params().value(s.name), s.count, side->params().value(s));
  EXPECT_EQ(attn.params().num_params() + ffn.params().num_params(), full.params().num_params());

  std::vector<int32_t> tokens(n), pos(n);
  for (int64_t i = 0; i < n; ++i) {
    tokens[static_cast<size_t>(i)] = static_cast<int32_t>((5 * i + 2) % cfg.vocab_size);
    pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  }
  auto pieces = [&](const Step3Model<float>& a, const Step3Model<float>& f, int64_t layer) {
    std::vector<float> x(n * C), q(n * H * D), k(n * D), v(n * D), h(n * C), w(n * K), out(n * C);
    std::vector<int32_t> ids(n * K);
    a.infer_embed(tokens.data(), n, x.data());
    a.infer_attention_qkv(layer, x.data(), pos.data(), n, q.data(), k.data(), v.data());
    a.infer_attention_out(layer, q.data(), n, x.data(), h.data(), ids.data(), w.data());   // q stands in for att
    f.infer_ffn(layer, h.data(), ids.data(), w.data(), n, out.data());
    std::vector<float> all = x;
    for (auto* part : {&q, &k, &v, &h, &w, &out}) all.insert(all.end(), part->begin(), part->end());
    return all;
  };
  for (int64_t layer = 0; layer < cfg.num_hidden_layers; ++layer)
    EXPECT_EQ(pieces(attn, ffn, layer), pieces(full, full, layer)) << "layer " << layer;

  std::vector<float> h(n * C, 0.5f), out(n * C);
  EXPECT_THROW(attn.infer_ffn(0, h.data(), nullptr, nullptr, n, out.data()), Error);
  EXPECT_THROW(ffn.infer_embed(tokens.data(), n, h.data()), Error);
  KvCache<float> cache = attn.new_cache();
  try {
    attn.infer(cache, tokens.data(), n);
    FAIL() << "a model holding only the attention side ran the whole forward";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only the attention side"), std::string::npos) << e.what();
  }
}

TEST(Step3Model, ExpertLoadAndLossFreeBias) {
  Step3Model<double> model(tiny_config(false), ModelOptions{0, true});
  randomize(model.params(), 2);
  const TinyBatch batch(23, 1);
  model.forward(batch.view());
  ASSERT_EQ(model.expert_load().size(), 2u);
  for (const auto& load : model.expert_load()) {
    double total = 0;
    for (double f : load) total += f;
    EXPECT_NEAR(total, 1.0, 1e-12);
  }
  const std::vector<double> load0 = model.expert_load()[0];
  model.update_expert_bias(0.01);
  for (size_t e = 0; e < load0.size(); ++e) {
    const double expected = load0[e] < 0.25 ? 0.01 : (load0[e] > 0.25 ? -0.01 : 0.0);
    EXPECT_FLOAT_EQ(model.expert_bias(0)[e], static_cast<float>(expected));
  }
  // a large bias steers selection: every token picks expert 3, so it gets 1/K of the routed slots
  model.expert_bias(1).assign(4, 0.0f);
  model.expert_bias(1)[3] = 10.0f;
  model.forward(batch.view());
  EXPECT_DOUBLE_EQ(model.expert_load()[1][3], 0.5);
}

TEST(Step3Model, OverfitsOneBatchWithAdamW) {
  Step3Config cfg = tiny_config(false);
  cfg.hidden_size = 32;
  cfg.vocab_size = 32;
  Step3Model<float> model(cfg, ModelOptions{0.01, false});
  model.params().init(1);
  const int64_t B = 2, T = 16;
  std::vector<int32_t> tokens(B * T), targets(B * T), pos(B * T);
  std::mt19937_64 rng(9);
  for (int64_t i = 0; i < B * T; ++i) {
    tokens[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % 32);
    pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  }
  for (int64_t i = 0; i < B * T; ++i)
    targets[static_cast<size_t>(i)] = (i + 1) % T == 0 ? -100 : tokens[static_cast<size_t>(i + 1)];
  const TrainBatch batch{tokens.data(), targets.data(), pos.data(), nullptr, B, T};
  ParamTable<float>& p = model.params();
  test::AdamWMoments moments(p);
  double first = 0, last = 0;
  for (int step = 1; step <= 300; ++step) {
    last = model.forward(batch);
    if (step == 1) first = last;
    p.zero_grad();
    model.backward_mean();
    test::adamw_step(p, moments, step, 1e-2f, 0.01f);
  }
  EXPECT_NEAR(first, std::log(32.0), 0.3);
  EXPECT_LT(last, 0.05) << "loss went from " << first << " to " << last;
}

}  // namespace
}  // namespace stepwise
