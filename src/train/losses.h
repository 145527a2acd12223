// Preference losses (DPO, IPO, SimPO) and the reward model's Bradley-Terry loss as pure functions of sequence-level
// scalars, each with its gradient with respect to the policy's sequence log-probs (or the rewards). No model, no
// batches: the training loops turn these gradients into per-token weights for Step3Model::backward.
#pragma once
#include <cstdint>
#include <string>

namespace stepwise {

enum class PreferenceLossKind { dpo, ipo, simpo };

// "dpo" | "ipo" | "simpo"; Error naming `where` otherwise.
PreferenceLossKind parse_preference_loss(const std::string& name, const std::string& where);

struct PreferenceLossConfig {
  PreferenceLossKind kind = PreferenceLossKind::dpo;
  double beta = 0.1;             // inverse temperature (dpo, simpo); IPO's target margin is 1 / (2 beta)
  double label_smoothing = 0.0;  // dpo, simpo: assumed probability that a label is flipped (conservative DPO)
  double gamma = 0.5;            // simpo: target reward margin
};

// One pair's sequence log-probs: sums of token log-probs over the reply tokens.
struct PairLogps {
  double policy_chosen = 0, policy_rejected = 0;
  double ref_chosen = 0, ref_rejected = 0;   // reference model (unused by simpo)
  int64_t len_chosen = 1, len_rejected = 1;  // reply tokens (simpo's length normalisation)
};

struct PairLoss {
  double loss = 0;
  double d_chosen = 0, d_rejected = 0;            // dL / d policy_chosen, dL / d policy_rejected
  double reward_chosen = 0, reward_rejected = 0;  // implicit rewards
};

// dpo:   h = beta * ((pc - rc) - (pr - rr)),  L = -(1 - ls) log sigmoid(h) - ls log sigmoid(-h)
//        rewards beta * (pc - rc), beta * (pr - rr)
// ipo:   h = (pc - rc) - (pr - rr),           L = (h - 1 / (2 beta))^2;  rewards as dpo
// simpo: h = beta * (pc / |yc| - pr / |yr|) - gamma,  L as dpo;  rewards beta * pc / |yc|, beta * pr / |yr|
PairLoss preference_loss(const PreferenceLossConfig& cfg, const PairLogps& p);

struct RewardPairLoss {
  double loss = 0;
  double d_chosen = 0, d_rejected = 0;  // dL / d r_chosen, dL / d r_rejected
};

// Bradley-Terry: L = -log sigmoid(rc - rr) + center_coef * (rc + rr)^2 (the second term keeps rewards near zero).
RewardPairLoss bradley_terry_loss(double r_chosen, double r_rejected, double center_coef = 0.0);

// log sigmoid(x) without overflow for large |x|.
double log_sigmoid(double x);
double sigmoid(double x);

}  // namespace stepwise
