// Implementation of the preference and reward losses (see losses.h).
#include "train/losses.h"

#include <cmath>

#include "core/error.h"

namespace stepwise {

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }

PreferenceLossKind parse_preference_loss(const std::string& name, const std::string& where) {
  if (name == "dpo") return PreferenceLossKind::dpo;
  if (name == "ipo") return PreferenceLossKind::ipo;
  if (name == "simpo") return PreferenceLossKind::simpo;
  fail(where, ": unknown preference loss '", name, "' (expected dpo, ipo or simpo)");
}

namespace {

// L(h) = -(1 - ls) log sigmoid(h) - ls log sigmoid(-h) and dL/dh.
std::pair<double, double> smoothed_sigmoid_loss(double h, double ls) {
  const double loss = -(1.0 - ls) * log_sigmoid(h) - ls * log_sigmoid(-h);
  const double dh = -(1.0 - ls) * sigmoid(-h) + ls * sigmoid(h);
  return {loss, dh};
}

}  // namespace

PairLoss preference_loss(const PreferenceLossConfig& cfg, const PairLogps& p) {
  PairLoss out;
  const double log_ratio_chosen = p.policy_chosen - p.ref_chosen;
  const double log_ratio_rejected = p.policy_rejected - p.ref_rejected;
  switch (cfg.kind) {
    case PreferenceLossKind::dpo: {
      const double h = cfg.beta * (log_ratio_chosen - log_ratio_rejected);
      auto [loss, dh] = smoothed_sigmoid_loss(h, cfg.label_smoothing);
      out.loss = loss;
      out.d_chosen = cfg.beta * dh;
      out.d_rejected = -cfg.beta * dh;
      out.reward_chosen = cfg.beta * log_ratio_chosen;
      out.reward_rejected = cfg.beta * log_ratio_rejected;
      break;
    }
    case PreferenceLossKind::ipo: {
      const double h = log_ratio_chosen - log_ratio_rejected;
      const double gap = h - 1.0 / (2.0 * cfg.beta);
      out.loss = gap * gap;
      out.d_chosen = 2.0 * gap;
      out.d_rejected = -2.0 * gap;
      out.reward_chosen = cfg.beta * log_ratio_chosen;
      out.reward_rejected = cfg.beta * log_ratio_rejected;
      break;
    }
    case PreferenceLossKind::simpo: {
      if (p.len_chosen <= 0 || p.len_rejected <= 0) fail("simpo loss: reply lengths must be positive");
      const double lc = static_cast<double>(p.len_chosen), lr = static_cast<double>(p.len_rejected);
      out.reward_chosen = cfg.beta * p.policy_chosen / lc;
      out.reward_rejected = cfg.beta * p.policy_rejected / lr;
      const double h = out.reward_chosen - out.reward_rejected - cfg.gamma;
      auto [loss, dh] = smoothed_sigmoid_loss(h, cfg.label_smoothing);
      out.loss = loss;
      out.d_chosen = cfg.beta / lc * dh;
      out.d_rejected = -cfg.beta / lr * dh;
      break;
    }
  }
  return out;
}

RewardPairLoss bradley_terry_loss(double r_chosen, double r_rejected, double center_coef) {
  RewardPairLoss out;
  const double diff = r_chosen - r_rejected, sum = r_chosen + r_rejected;
  out.loss = -log_sigmoid(diff) + center_coef * sum * sum;
  const double d_diff = -sigmoid(-diff);
  out.d_chosen = d_diff + 2.0 * center_coef * sum;
  out.d_rejected = -d_diff + 2.0 * center_coef * sum;
  return out;
}

}  // namespace stepwise
