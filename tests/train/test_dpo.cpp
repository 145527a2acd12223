// Stage dpo: the loss and its gradient through Step3Model<double> against central differences of a direct
// computation (DPO and SimPO), policy == reference gives log 2 and zero rewards, and through the real binary on a
// slice of the committed corpus: held-out reward accuracy rises from a tiny SFT checkpoint, frozen and precomputed
// references agree, IPO / SimPO run, and bad recipes fail before training naming the problem.
#include <gtest/gtest.h>

#include <cmath>

#include "preference_fixture.h"
#include "train/dpo.h"

namespace stepwise {
namespace {

using namespace stepwise::test;

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// The objective computed directly from the model's per-token losses: scale * sum over pairs of the loss.
double direct_objective(Step3Model<double>& model, const TokenBatch& batch,
                        const std::vector<std::pair<double, double>>& ref, PreferenceLossKind kind, double beta,
                        double gamma, double scale) {
  model.forward(TrainBatch{batch.tokens.data(), batch.targets.data(), batch.pos.data(), batch.seg.data(), batch.B,
                           batch.T});
  const int64_t n = batch.B / 2;
  std::vector<double> logp(static_cast<size_t>(batch.B), 0.0), len(static_cast<size_t>(batch.B), 0.0);
  for (int64_t i = 0; i < batch.B * batch.T; ++i)
    if (batch.targets[static_cast<size_t>(i)] != kIgnoreTarget) {
      logp[static_cast<size_t>(i / batch.T)] -= model.token_loss()[i];
      len[static_cast<size_t>(i / batch.T)] += 1;
    }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = static_cast<size_t>(i), r = static_cast<size_t>(n + i);
    const double h = kind == PreferenceLossKind::simpo
                         ? beta * (logp[c] / len[c] - logp[r] / len[r]) - gamma
                         : beta * ((logp[c] - ref[c].first) - (logp[r] - ref[c].second));
    total += softplus(-h);   // -log sigmoid(h)
  }
  return scale * total;
}

void check_gradients_through_model(PreferenceLossKind kind) {
  Step3Model<double> model(toy_config(), ModelOptions{0.0, false});
  randomize(model.params(), 7);
  const auto examples = toy_examples(3, 5);
  const TokenBatch batch = preference_pair_batch(examples, 9, 0);
  const std::vector<std::pair<double, double>> ref = {{-9.0, -8.5}, {-7.25, -10.0}, {-12.0, -6.0}};
  const PreferenceLossConfig cfg{kind, 0.5, 0.0, 0.3};
  const double scale = 1.0 / 3.0;
  model.params().zero_grad();
  const auto pairs = dpo_forward_backward(model, batch, ref, cfg, scale, 1.0);
  double loss_sum = 0;
  for (const auto& p : pairs) loss_sum += p.loss.loss * scale;
  EXPECT_NEAR(loss_sum, direct_objective(model, batch, ref, kind, 0.5, 0.3, scale), 1e-12);

  std::mt19937_64 rng(1);
  const double h = 1e-5;
  ParamTable<double>& params = model.params();
  for (const ParamSpec& s : params.specs()) {
    double worst = 0;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(s.count));
      double* p = params.value(s) + i;
      const double saved = *p;
      *p = saved + h;
      const double lp = direct_objective(model, batch, ref, kind, 0.5, 0.3, scale);
      *p = saved - h;
      const double lm = direct_objective(model, batch, ref, kind, 0.5, 0.3, scale);
      *p = saved;
      const double numeric = (lp - lm) / (2 * h), analytic = params.grad(s)[i];
      worst = std::max(worst, std::abs(numeric - analytic) / std::max(1e-4, std::abs(numeric) + std::abs(analytic)));
    }
    EXPECT_LT(worst, 1e-5) << s.name;
  }
}

TEST(DpoLoss, GradientThroughModelMatchesFiniteDifferences) { check_gradients_through_model(PreferenceLossKind::dpo); }
TEST(DpoLoss, SimpoGradientThroughModelMatchesFiniteDifferences) {
  check_gradients_through_model(PreferenceLossKind::simpo);
}

TEST(DpoLoss, PolicyEqualToReferenceGivesLog2AndZeroRewards) {
  Step3Model<float> model(toy_config());
  randomize(model.params(), 3);
  const auto examples = toy_examples(4, 9);
  const TokenBatch batch = preference_pair_batch(examples, 10, 0);
  const auto ref = pair_sequence_logps(model, batch);
  const auto pairs = dpo_forward_backward(model, batch, ref, {PreferenceLossKind::dpo, 0.1, 0.0, 0.0}, 0.0, 0.0);
  ASSERT_EQ(pairs.size(), 4u);
  for (const auto& p : pairs) {
    EXPECT_DOUBLE_EQ(p.loss.loss, std::log(2.0));
    EXPECT_EQ(p.loss.reward_chosen, 0.0);
    EXPECT_EQ(p.loss.reward_rejected, 0.0);
    EXPECT_LT(p.logps.policy_chosen, 0.0);
  }
}

PreferenceFixture& fixture() {
  static PreferenceFixture f("stepwise_dpo_test", 224);
  return f;
}

fs::path write_recipe(const std::string& name, const std::string& text) {
  const fs::path p = fixture().dir / name;
  write_file_atomic(p, text);
  return p;
}

fs::path dpo_recipe() {
  return write_recipe("dpo.yaml", fixture().recipe("dpo", "preference.jsonl", fixture().sft_checkpoint.string()) +
                                      "dpo:\n  beta: 0.1\ntrain:\n  micro_batch: 8\n  max_steps: 10\n"
                                      "  warmup_steps: 3\n  lr: 3.0e-3\n  min_lr: 3.0e-4\n  weight_decay: 0\n"
                                      "  eval_every: 5\noutput:\n  save_every: 5\n");
}

TEST(DpoStage, HeldOutRewardAccuracyRises) {
  const fs::path run = fixture().dir / "dpo";
  const CommandResult r = PreferenceFixture::train(dpo_recipe(), {"output.dir=" + run.string()});
  ASSERT_EQ(r.status, 0) << r.output;
  const std::vector<double> acc = metric(run, "eval_accuracy"), loss = metric(run, "loss");
  ASSERT_EQ(acc.size(), 3u) << r.output;   // steps 0, 5, 10
  EXPECT_NEAR(acc.front(), 0.5, 0.1) << "policy == reference: implicit rewards tie";
  EXPECT_GT(acc.back(), acc.front() + 0.1) << r.output;
  EXPECT_NEAR(loss.front(), std::log(2.0), 0.02);
  for (const auto& rec : read_metrics(run / "metrics.jsonl"))
    if (rec.value("step", 0) > 0) {
      for (const char* key : {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracy", "rewards/margin", "lr",
                              "grad_norm"})
        EXPECT_TRUE(rec.contains(key)) << key;
    }
  EXPECT_TRUE(fs::exists(run / "reference_logps.json"));
  EXPECT_TRUE(fs::exists(run / "checkpoint-10" / "model.safetensors"));
  EXPECT_NE(r.output.find("held-out pair accuracy"), std::string::npos) << r.output;
}

TEST(DpoStage, FrozenReferenceMatchesPrecomputed) {
  const fs::path a = fixture().dir / "pre", b = fixture().dir / "frozen";
  const std::vector<std::string> common = {"train.max_steps=3", "train.eval_every=100", "data.eval_samples=8"};
  auto args = [&](const fs::path& out, const std::string& ref) {
    std::vector<std::string> v = common;
    v.push_back("output.dir=" + out.string());
    v.push_back("dpo.reference=" + ref);
    return v;
  };
  const CommandResult ra = PreferenceFixture::train(dpo_recipe(), args(a, "precompute"));
  const CommandResult rb = PreferenceFixture::train(dpo_recipe(), args(b, "frozen"));
  ASSERT_EQ(ra.status, 0) << ra.output;
  ASSERT_EQ(rb.status, 0) << rb.output;
  const auto la = metric(a, "loss"), lb = metric(b, "loss");
  ASSERT_EQ(la.size(), 3u);
  ASSERT_EQ(lb.size(), 3u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-4) << "step " << i + 1;
  EXPECT_FALSE(fs::exists(b / "reference_logps.json"));
}

TEST(DpoStage, ResumedRunMatchesStraightRun) {
  // Constant lr, so a 3-step run continued to 6 steps follows the same schedule as a straight 6-step run.
  const fs::path straight = fixture().dir / "straight", resumed = fixture().dir / "resumed";
  const std::vector<std::string> common = {"train.schedule=constant", "train.warmup_steps=0", "train.eval_every=100",
                                           "data.eval_samples=8", "output.save_every=3", "resume=auto"};
  auto args = [&](const fs::path& out, int steps) {
    std::vector<std::string> v = common;
    v.push_back("output.dir=" + out.string());
    v.push_back("train.max_steps=" + std::to_string(steps));
    return v;
  };
  const CommandResult a = PreferenceFixture::train(dpo_recipe(), args(straight, 6));
  ASSERT_EQ(a.status, 0) << a.output;
  const CommandResult b1 = PreferenceFixture::train(dpo_recipe(), args(resumed, 3));
  ASSERT_EQ(b1.status, 0) << b1.output;
  const CommandResult b2 = PreferenceFixture::train(dpo_recipe(), args(resumed, 6));
  ASSERT_EQ(b2.status, 0) << b2.output;
  EXPECT_NE(b2.output.find("resuming from"), std::string::npos) << b2.output;
  const auto la = metric(straight, "loss"), lb = metric(resumed, "loss");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;
  // A dpo run directory does not resume as another stage.
  const CommandResult c = PreferenceFixture::train(
      write_recipe("rm_here.yaml", fixture().recipe("rm", "preference.jsonl", fixture().sft_checkpoint.string())),
      {"output.dir=" + resumed.string(), "resume=auto"});
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.output.find("is from stage 'dpo', not 'rm'"), std::string::npos) << c.output;
}

TEST(DpoStage, IpoAndSimpoRun) {
  for (const std::string loss : {"ipo", "simpo"}) {
    const fs::path run = fixture().dir / loss;
    const CommandResult r = PreferenceFixture::train(
        dpo_recipe(), {"output.dir=" + run.string(), "dpo.loss=" + loss, "train.max_steps=4", "train.eval_every=4", "data.eval_samples=8"});
    ASSERT_EQ(r.status, 0) << r.output;
    const auto losses = metric(run, "loss");
    ASSERT_EQ(losses.size(), 4u);
    for (double l : losses) EXPECT_TRUE(std::isfinite(l));
    if (loss == "ipo") {
      EXPECT_NEAR(losses.front(), 1.0 / (4 * 0.1 * 0.1), 1.0);   // (0 - 1 / (2 beta))^2 = 25
    }
    EXPECT_EQ(fs::exists(run / "reference_logps.json"), loss == "ipo");
  }
}

TEST(DpoStage, BadRecipesFailBeforeTraining) {
  const fs::path no_init = write_recipe("no_init.yaml", fixture().recipe("dpo", "preference.jsonl", ""));
  CommandResult r = PreferenceFixture::train(no_init, {});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("stage 'dpo' needs 'init_from'"), std::string::npos) << r.output;

  r = PreferenceFixture::train(dpo_recipe(), {"init_from=/nonexistent/ckpt", "output.dir=" + (fixture().dir / "x").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("init_from: no checkpoint at '/nonexistent/ckpt'"), std::string::npos) << r.output;

  // SFT conversations given to the dpo stage: the error names the file and line.
  r = PreferenceFixture::train(dpo_recipe(), {"data.train=" + (fixture().dir / "sft.jsonl").string(),
                                              "output.dir=" + (fixture().dir / "y").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find((fixture().dir / "sft.jsonl").string() + ":1: preference prompt must end with a user turn"),
            std::string::npos)
      << r.output;

  // A record without 'rejected' on line 3.
  std::string text = corpus_head("preference.jsonl", 4);
  const size_t line3 = text.find('\n', text.find('\n') + 1) + 1;
  const size_t field = text.find("\"rejected\"", line3);
  text.replace(field, 10, "\"rejectd\"");
  write_file_atomic(fixture().dir / "broken.jsonl", text);
  r = PreferenceFixture::train(dpo_recipe(), {"data.train=" + (fixture().dir / "broken.jsonl").string(),
                                              "output.dir=" + (fixture().dir / "z").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("broken.jsonl:3: missing field 'rejected'"), std::string::npos) << r.output;

  r = PreferenceFixture::train(dpo_recipe(), {"dpo.loss=kto"});
  EXPECT_NE(r.output.find("'dpo.loss': 'kto' is not one of: dpo, ipo, simpo"), std::string::npos) << r.output;
  r = PreferenceFixture::train(dpo_recipe(), {"dpo.bta=0.2"});
  EXPECT_NE(r.output.find("did you mean 'dpo.beta'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace stepwise
