// The preference and reward losses as pure functions: gradients against central differences (in double) for every
// loss kind, DPO = log 2 with zero rewards when policy == reference, and the IPO / SimPO / Bradley-Terry formulas
// against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "train/losses.h"

namespace stepwise {
namespace {

PairLogps sample_pair() {
  PairLogps p;
  p.policy_chosen = -41.3;
  p.policy_rejected = -37.9;
  p.ref_chosen = -43.0;
  p.ref_rejected = -36.2;
  p.len_chosen = 17;
  p.len_rejected = 11;
  return p;
}

void expect_gradients_match(const PreferenceLossConfig& cfg, PairLogps p) {
  const PairLoss analytic = preference_loss(cfg, p);
  const double h = 1e-6;
  for (double PairLogps::*field : {&PairLogps::policy_chosen, &PairLogps::policy_rejected}) {
    PairLogps plus = p, minus = p;
    plus.*field += h;
    minus.*field -= h;
    const double numeric = (preference_loss(cfg, plus).loss - preference_loss(cfg, minus).loss) / (2 * h);
    const double got = field == &PairLogps::policy_chosen ? analytic.d_chosen : analytic.d_rejected;
    EXPECT_NEAR(got, numeric, 1e-7 * std::max(1.0, std::abs(numeric)));
  }
}

TEST(PreferenceLoss, GradientsMatchFiniteDifferences) {
  for (PreferenceLossKind kind : {PreferenceLossKind::dpo, PreferenceLossKind::ipo, PreferenceLossKind::simpo})
    for (double ls : {0.0, 0.1})
      for (double beta : {0.1, 0.5}) {
        PreferenceLossConfig cfg{kind, beta, ls, 0.7};
        expect_gradients_match(cfg, sample_pair());
        PairLogps flipped = sample_pair();
        std::swap(flipped.policy_chosen, flipped.policy_rejected);
        expect_gradients_match(cfg, flipped);
      }
}

TEST(PreferenceLoss, DpoIsLog2WithZeroRewardsWhenPolicyIsReference) {
  PairLogps p = sample_pair();
  p.ref_chosen = p.policy_chosen;
  p.ref_rejected = p.policy_rejected;
  for (double ls : {0.0, 0.2}) {
    const PairLoss l = preference_loss({PreferenceLossKind::dpo, 0.1, ls, 0}, p);
    EXPECT_DOUBLE_EQ(l.loss, std::log(2.0));
    EXPECT_EQ(l.reward_chosen, 0.0);
    EXPECT_EQ(l.reward_rejected, 0.0);
    EXPECT_NEAR(l.d_chosen, -0.1 * (1 - ls) * 0.5 + 0.1 * ls * 0.5, 1e-15);
    EXPECT_DOUBLE_EQ(l.d_rejected, -l.d_chosen);
  }
}

TEST(PreferenceLoss, DpoMatchesTheFormula) {
  const PairLogps p = sample_pair();
  // ratios: chosen -41.3 + 43.0 = 1.7, rejected -37.9 + 36.2 = -1.7; h = 0.1 * 3.4 = 0.34
  const PairLoss l = preference_loss({PreferenceLossKind::dpo, 0.1, 0.0, 0}, p);
  EXPECT_NEAR(l.loss, std::log(1 + std::exp(-0.34)), 1e-12);
  EXPECT_NEAR(l.reward_chosen, 0.17, 1e-12);
  EXPECT_NEAR(l.reward_rejected, -0.17, 1e-12);
}

TEST(PreferenceLoss, IpoMatchesTheFormula) {
  const PairLogps p = sample_pair();
  // h = 3.4, target 1 / (2 * 0.25) = 2: loss (3.4 - 2)^2 = 1.96
  const PairLoss l = preference_loss({PreferenceLossKind::ipo, 0.25, 0.0, 0}, p);
  EXPECT_NEAR(l.loss, 1.96, 1e-12);
  EXPECT_NEAR(l.d_chosen, 2.8, 1e-12);
  EXPECT_NEAR(l.d_rejected, -2.8, 1e-12);
  EXPECT_NEAR(l.reward_chosen, 0.25 * 1.7, 1e-12);
}

TEST(PreferenceLoss, SimpoIsLengthNormalisedWithMarginAndNoReference) {
  PairLogps p = sample_pair();
  const double beta = 2.0, gamma = 0.5;
  const double h = beta * (-41.3 / 17 - -37.9 / 11) - gamma;
  const PairLoss l = preference_loss({PreferenceLossKind::simpo, beta, 0.0, gamma}, p);
  EXPECT_NEAR(l.loss, std::log(1 + std::exp(-h)), 1e-12);
  EXPECT_NEAR(l.reward_chosen, beta * -41.3 / 17, 1e-12);
  EXPECT_NEAR(l.reward_rejected, beta * -37.9 / 11, 1e-12);
  p.ref_chosen = 123;   // the reference does not enter
  EXPECT_EQ(preference_loss({PreferenceLossKind::simpo, beta, 0.0, gamma}, p).loss, l.loss);
}

TEST(BradleyTerry, LossGradientsAndCentering) {
  EXPECT_DOUBLE_EQ(bradley_terry_loss(0.3, 0.3).loss, std::log(2.0));
  EXPECT_NEAR(bradley_terry_loss(2.0, -1.0).loss, std::log(1 + std::exp(-3.0)), 1e-12);
  for (double coef : {0.0, 0.05}) {
    const double rc = 0.8, rr = 1.9, h = 1e-6;
    const RewardPairLoss l = bradley_terry_loss(rc, rr, coef);
    EXPECT_NEAR(l.loss, std::log(1 + std::exp(1.1)) + coef * 2.7 * 2.7, 1e-12);
    EXPECT_NEAR(l.d_chosen, (bradley_terry_loss(rc + h, rr, coef).loss - bradley_terry_loss(rc - h, rr, coef).loss) / (2 * h), 1e-8);
    EXPECT_NEAR(l.d_rejected, (bradley_terry_loss(rc, rr + h, coef).loss - bradley_terry_loss(rc, rr - h, coef).loss) / (2 * h), 1e-8);
  }
}

TEST(LogSigmoid, StableForLargeArguments) {
  EXPECT_NEAR(log_sigmoid(1000.0), 0.0, 1e-300);
  EXPECT_NEAR(log_sigmoid(-1000.0), -1000.0, 1e-9);
  EXPECT_TRUE(std::isfinite(bradley_terry_loss(-800, 800).loss));
  EXPECT_NEAR(bradley_terry_loss(-800, 800).d_chosen, -1.0, 1e-12);
}

TEST(PreferenceLoss, UnknownKindNamesWhere) {
  try {
    parse_preference_loss("kto", "r.yaml: dpo.loss");
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("r.yaml: dpo.loss: unknown preference loss 'kto'"), std::string::npos);
  }
}

}  // namespace
}  // namespace stepwise
