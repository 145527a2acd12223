// In-context copying, the skill behind reading a prompt: on fresh random sequences that repeat their first half,
// step3-shaped models (MFA attention with one shared K/V head, RoPE, MoE) must learn to predict the second half from
// the first (an induction head). Catches attention, RoPE or backward bugs that the per-op gradient checks cannot:
// a model with such a bug still memorises fixed text but cannot look things up in its context.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "adamw_for_tests.h"
#include "model/step3_model.h"
#include "ops.h"

namespace stepwise {
namespace {

double train_copy_task(const char* yaml, int steps) {
  Step3Config cfg = Step3Config::from_yaml_string(yaml, "copy");
  Step3Model<float> model(cfg, ModelOptions{0.01, false});
  model.params().init(3);
  const int64_t B = 8, half = 24, T = 2 * half, V = cfg.vocab_size;
  std::vector<int32_t> tokens(B * T), targets(B * T), pos(B * T);
  ParamTable<float>& p = model.params();
  test::AdamWMoments moments(p);
  std::mt19937_64 rng(5);
  double last = 0;
  for (int step = 1; step <= steps; ++step) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const size_t i = static_cast<size_t>(b * T + t);
        tokens[i] = t < half ? static_cast<int32_t>(rng() % V) : tokens[i - half];
        pos[i] = static_cast<int32_t>(t);
      }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const size_t i = static_cast<size_t>(b * T + t);
        targets[i] = t >= half && t + 1 < T ? tokens[i + 1] : -100;
      }
    last = model.forward(TrainBatch{tokens.data(), targets.data(), pos.data(), nullptr, B, T});
    p.zero_grad();
    model.backward_mean();
    test::adamw_step(p, moments, step, 3e-3f);
  }
  return last;
}

TEST(Step3Model, LearnsToCopyFromContext) {
  const double loss = train_copy_task(
      "{hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, head_dim: 32, share_q_dim: 32,"
      " intermediate_size: 128, moe_layers_enum: '1', moe_num_experts: 4, moe_top_k: 2, moe_intermediate_size: 64,"
      " share_expert_dim: 64, vocab_size: 32, rope_theta: 10000}",
      250);
  EXPECT_LT(loss, 0.1 * std::log(32.0));
}

}  // namespace
}  // namespace stepwise
