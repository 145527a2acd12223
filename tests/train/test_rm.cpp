// Stage rm: the score head's gradient through Step3Model<double> against central differences (with and without the
// LM term), the Bradley-Terry pass through the model likewise, 100% pairwise accuracy on a separable toy set, and
// through the real binary: a reward model trained from a tiny SFT checkpoint is saved with score.weight and scores
// answers through RewardModel exactly as training read them.
#include <gtest/gtest.h>

#include <cmath>

#include "ckpt/safetensors.h"
#include "core/error.h"
#include "preference_fixture.h"
#include "train/optimizer.h"
#include "train/rm.h"

namespace stepwise {
namespace {

using namespace stepwise::test;

TrainBatch view(const TokenBatch& b) { return {b.tokens.data(), b.targets.data(), b.pos.data(), b.seg.data(), b.B, b.T}; }

// Central differences of `objective` against the accumulated gradient, 4 elements of every tensor.
void expect_gradients(ParamTable<double>& params, const std::function<double()>& objective, bool lm_head_free) {
  std::mt19937_64 rng(2);
  const double h = 1e-5;
  for (const ParamSpec& s : params.specs()) {
    double worst = 0;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(s.count));
      double* p = params.value(s) + i;
      const double saved = *p;
      *p = saved + h;
      const double lp = objective();
      *p = saved - h;
      const double lm = objective();
      *p = saved;
      const double numeric = (lp - lm) / (2 * h), analytic = params.grad(s)[i];
      worst = std::max(worst, std::abs(numeric - analytic) / std::max(1e-4, std::abs(numeric) + std::abs(analytic)));
    }
    EXPECT_LT(worst, 1e-5) << s.name;
    if (lm_head_free && s.name == "lm_head.weight") {
      for (int64_t i = 0; i < s.count; ++i) ASSERT_EQ(params.grad(s)[i], 0.0);
    }
  }
}

TEST(ScoreHead, ParamTableHasScoreWeightOnlyWhenEnabled) {
  Step3Model<float> plain(toy_config()), scored(toy_config(), ModelOptions{0, false, true});
  EXPECT_EQ(plain.params().find(kScoreHeadName), nullptr);
  const ParamSpec* s = scored.params().find(kScoreHeadName);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->shape, (std::vector<int64_t>{1, 16}));
  EXPECT_EQ(scored.params().num_params(), plain.params().num_params() + 16);
  EXPECT_THROW(plain.scores(), Error);
}

TEST(ScoreHead, GradientMatchesFiniteDifferences) {
  Step3Model<double> model(toy_config(), ModelOptions{0.05, false, true});
  randomize(model.params(), 4);
  const TokenBatch batch = preference_pair_batch(toy_examples(2, 3), 9, 0);
  const size_t N = batch.tokens.size();
  std::vector<double> w(N), u(N);
  std::mt19937_64 rng(8);
  for (size_t i = 0; i < N; ++i) {
    w[i] = std::uniform_real_distribution<double>(0.2, 1.0)(rng);
    u[i] = std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
  }
  for (bool with_lm : {true, false}) {
    auto objective = [&] {
      model.forward(view(batch));
      double total = model.aux_loss();
      for (size_t n = 0; n < N; ++n) {
        if (with_lm && batch.targets[n] != kIgnoreTarget) total += w[n] * model.token_loss()[n];
        total += u[n] * model.scores()[n];
      }
      return total;
    };
    objective();
    model.params().zero_grad();
    model.backward(with_lm ? w.data() : nullptr, 1.0, u.data());
    expect_gradients(model.params(), objective, !with_lm);
  }
}

TEST(RewardLoss, BradleyTerryThroughModelMatchesFiniteDifferences) {
  Step3Model<double> model(toy_config(), ModelOptions{0.0, false, true});
  randomize(model.params(), 6);
  const TokenBatch batch = preference_pair_batch(toy_examples(3, 4), 9, 0);
  const std::vector<int64_t> at = last_target_positions(batch);
  auto direct = [&] {   // mean over pairs of -log sigmoid(rc - rr) + 0.1 (rc + rr)^2, from the raw head output
    model.forward(view(batch));
    double total = 0;
    for (size_t i = 0; i < 3; ++i) {
      const double rc = model.scores()[at[i]], rr = model.scores()[at[3 + i]];
      total += std::log1p(std::exp(-(rc - rr))) + 0.1 * (rc + rr) * (rc + rr);
    }
    return total / 3;
  };
  model.params().zero_grad();
  const auto pairs = reward_forward_backward(model, batch, 0.1, 1.0 / 3, 1.0);
  double loss = 0;
  for (const auto& p : pairs) loss += p.loss.loss / 3;
  EXPECT_NEAR(loss, direct(), 1e-12);
  expect_gradients(model.params(), direct, true);
}

TEST(RewardLoss, SeparableToySetReachesFullAccuracy) {
  // Chosen replies use tokens 3..9, rejected 12..18: a reward model must learn to tell them apart on new pairs.
  const std::vector<int32_t> good = {3, 4, 5, 6, 7, 8, 9}, bad = {12, 13, 14, 15, 16, 17, 18};
  const auto train = toy_examples(64, 11, good, bad), held_out = toy_examples(32, 12, good, bad);
  Step3Model<float> model(toy_config(), ModelOptions{0.01, false, true});
  model.params().init(5);
  AdamW opt(model.params(), {0.9, 0.95, 1e-8, 0.0});
  auto accuracy = [&] {
    const auto pairs = reward_forward_backward(model, preference_pair_batch(held_out, 10, 0), 0.0, 0.0, 0.0);
    double right = 0;
    for (const auto& p : pairs) right += p.chosen > p.rejected ? 1 : 0;
    return right / static_cast<double>(pairs.size());
  };
  const double before = accuracy();
  for (int step = 0; step < 60; ++step) {
    const std::vector<PreferenceExample> batch(train.begin() + (step % 4) * 16, train.begin() + (step % 4 + 1) * 16);
    model.params().zero_grad();
    reward_forward_backward(model, preference_pair_batch(batch, 10, 0), 0.0, 1.0 / 16, 1.0);
    opt.step(model.params(), 1e-2);
  }
  EXPECT_EQ(accuracy(), 1.0) << "before training: " << before;
}

PreferenceFixture& fixture() {
  static PreferenceFixture f("stepwise_rm_test", 160);
  return f;
}

TEST(RewardStage, TrainsSavesAndScores) {
  const fs::path run = fixture().dir / "rm";
  write_file_atomic(fixture().dir / "rm.yaml",
                    fixture().recipe("rm", "preference.jsonl", fixture().sft_checkpoint.string()) +
                        "train:\n  micro_batch: 8\n  max_steps: 12\n  warmup_steps: 2\n  lr: 3.0e-3\n"
                        "  eval_every: 12\noutput:\n  save_every: 12\n");
  const CommandResult r = PreferenceFixture::train(fixture().dir / "rm.yaml", {"output.dir=" + run.string()});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto acc = metric(run, "eval_accuracy"), loss = metric(run, "loss");
  ASSERT_EQ(acc.size(), 2u);
  ASSERT_EQ(loss.size(), 12u);
  for (double a : acc) EXPECT_TRUE(a >= 0 && a <= 1);
  const fs::path ckpt = run / "checkpoint-12";
  ASSERT_TRUE(SafetensorsFile::open(ckpt / "model.safetensors").find(kScoreHeadName));

  // RewardModel reads the reward where training does: compare with a training-path forward over the same pair.
  RewardModel rm(ckpt);
  auto shard = TokenShard::open(ensure_shard(ShardKind::preference, fixture().dir / "preference.jsonl",
                                             rm.tokenizer(), fixture().dir / "cache"));
  const PreferenceExample ex = preference_example(*shard, 150);
  std::vector<int32_t> chosen = ex.prompt, rejected = ex.prompt;
  chosen.insert(chosen.end(), ex.chosen.begin(), ex.chosen.end());
  rejected.insert(rejected.end(), ex.rejected.begin(), ex.rejected.end());
  const double sc = rm.score(chosen), sr = rm.score(rejected);
  const auto pair = reward_forward_backward(rm.model(), preference_pair_batch({ex}, 512, rm.tokenizer().pad()), 0, 0, 0);
  EXPECT_NEAR(sc, pair[0].chosen, 1e-4);
  EXPECT_NEAR(sr, pair[0].rejected, 1e-4);
  EXPECT_NE(sc, sr);

  try {
    RewardModel not_rm(fixture().sft_checkpoint);
    FAIL() << "an SFT checkpoint loaded as a reward model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a reward-model checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepwise
