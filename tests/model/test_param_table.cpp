// ParamTable and model arithmetic: HF names and shapes, non-overlapping aligned offsets, flags (weight decay, AFD
// side), seeded init, and `model info` numbers for the full Step-3 configuration (~316B total, ~38B active).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "model/model_info.h"
#include "model/param_table.h"

namespace stepwise {
namespace {

Step3Config small_config() {
  return Step3Config::from_yaml_string(
      "{hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, head_dim: 4, share_q_dim: 8,"
      " intermediate_size: 24, moe_layers_enum: '1', moe_num_experts: 4, moe_top_k: 2, moe_intermediate_size: 12,"
      " share_expert_dim: 10, vocab_size: 30}",
      "small");
}

TEST(ParamTable, NamesShapesOffsetsAndFlags) {
  ParamTable<float> t(small_config());
  EXPECT_EQ(t.specs().front().name, "model.embed_tokens.weight");
  EXPECT_EQ(t.specs().back().name, "lm_head.weight");
  EXPECT_EQ(t.spec("model.layers.0.self_attn.q_proj.weight").shape, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(t.spec("model.layers.0.self_attn.wq.weight").shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(t.spec("model.layers.0.self_attn.o_proj.weight").shape, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(t.spec("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{16, 24}));
  EXPECT_EQ(t.spec("model.layers.1.moe.gate_proj.weight").shape, (std::vector<int64_t>{4, 12, 16}));
  EXPECT_EQ(t.spec("model.layers.1.moe.down_proj.weight").shape, (std::vector<int64_t>{4, 16, 12}));
  EXPECT_EQ(t.spec("model.layers.1.share_expert.up_proj.weight").shape, (std::vector<int64_t>{10, 16}));
  EXPECT_EQ(t.find("model.layers.1.mlp.gate_proj.weight"), nullptr);   // MoE layer has no dense MLP
  EXPECT_THROW(t.spec("model.layers.9.self_attn.q_proj.weight"), Error);

  int64_t end = 0, total = 0;
  for (const ParamSpec& s : t.specs()) {
    EXPECT_EQ(s.offset % kParamAlign, 0) << s.name;
    EXPECT_GE(s.offset, end) << s.name;   // ordered, non-overlapping
    end = s.offset + s.count;
    total += s.count;
    const bool is_norm = s.name.find("norm") != std::string::npos;
    EXPECT_EQ(s.init == ParamInit::ones, is_norm) << s.name;
    EXPECT_EQ(s.weight_decay, !is_norm && s.name != "model.embed_tokens.weight") << s.name;
    const bool ffn = s.name.find(".mlp.") != std::string::npos || s.name.find("share_expert") != std::string::npos ||
                     (s.name.find(".moe.") != std::string::npos && s.name.find("moe.gate.weight") == std::string::npos);
    EXPECT_EQ(s.side == ParamSide::ffn, ffn) << s.name;
  }
  EXPECT_LE(end, t.arena_size());
  EXPECT_EQ(total, t.num_params());
}

TEST(ParamTable, SeededInitIsDeterministicAndPrecisionIndependent) {
  ParamTable<float> a(small_config()), b(small_config());
  ParamTable<double> d(small_config());
  a.init(7);
  b.init(7);
  d.init(7);
  for (int64_t i = 0; i < a.arena_size(); ++i) {
    ASSERT_EQ(a.data()[i], b.data()[i]);
    ASSERT_EQ(a.data()[i], static_cast<float>(d.data()[i]));
  }
  EXPECT_EQ(a.value("model.norm.weight")[3], 1.0f);
  const ParamSpec& e = a.spec("model.embed_tokens.weight");
  double sq = 0;
  for (int64_t i = 0; i < e.count; ++i) sq += double(a.value(e)[i]) * a.value(e)[i];
  EXPECT_NEAR(std::sqrt(sq / double(e.count)), 0.02, 0.004);
  b.init(8);
  EXPECT_NE(a.value(e)[0], b.value(e)[0]);
  ASSERT_TRUE(a.has_grad());
  EXPECT_EQ(a.grad(e)[0], 0.0f);
  ParamTable<float> no_grad(small_config(), false);
  EXPECT_FALSE(no_grad.has_grad());
  EXPECT_EQ(no_grad.grad(e), nullptr);
}

TEST(ParamTable, AfdSideTablesHoldOnlyTheirSidePacked) {
  const ParamTable<float> full(small_config(), false);
  int64_t held_total = 0;
  for (ParamSide side : {ParamSide::attention, ParamSide::ffn}) {
    ParamTable<float> t(small_config(), true, false, side);
    EXPECT_EQ(t.only_side(), side);
    ASSERT_EQ(t.specs().size(), full.specs().size());   // every tensor stays listed
    int64_t end = 0, count = 0;
    for (const ParamSpec& s : t.specs()) {
      EXPECT_EQ(ParamTable<float>::holds(s), s.side == side) << s.name;
      if (!ParamTable<float>::holds(s)) {
        EXPECT_EQ(t.value(s), nullptr) << s.name;
        EXPECT_EQ(t.grad(s), nullptr) << s.name;
        continue;
      }
      EXPECT_EQ(s.offset % kParamAlign, 0) << s.name;
      EXPECT_GE(s.offset, end) << s.name;   // packed in order, non-overlapping
      end = s.offset + s.count;
      count += s.count;
      ASSERT_NE(t.grad(s), nullptr) << s.name;
    }
    EXPECT_LE(end, t.arena_size());
    EXPECT_LT(t.arena_size(), full.arena_size());
    EXPECT_EQ(t.num_params(), count);
    held_total += count;
    t.init(3);   // initialises only what it holds
    const char* own = side == ParamSide::attention ? "model.norm.weight" : "model.layers.0.mlp.up_proj.weight";
    EXPECT_NE(t.value(own), nullptr);
  }
  EXPECT_EQ(held_total, full.num_params());   // the two sides split the model exactly
  ParamTable<float> attention(small_config(), false, false, ParamSide::attention);
  EXPECT_THROW(attention.copy_values_from(full), Error);
}

TEST(ModelInfo, Step3FullConfiguration) {
  const Step3Config c = Step3Config::load(std::string(STEPWISE_SOURCE_DIR) + "/recipes/models/step3.yaml");
  const ModelInfo info = compute_model_info(c, 4096);
  // REFERENCE.md: ~316B total, ~38B active per token
  EXPECT_NEAR(double(info.total_params) / 1e9, 316.0, 1.5);
  EXPECT_NEAR(double(info.active_params) / 1e9, 38.5, 1.0);
  EXPECT_EQ(info.embedding_params, 128815LL * 7168);
  EXPECT_EQ(info.lm_head_params, 128815LL * 7168);
  EXPECT_EQ(info.kv_bytes_per_token_fp8, 2 * 256 * 61);   // ~31 KB/token
  EXPECT_EQ(info.kv_bytes_per_token_bf16, 2 * 256 * 61 * 2);
  const double expected = 6.0 * double(info.active_non_embedding) + 6.0 * double(info.lm_head_params) +
                          6.0 * 61 * 64 * 256 * 4096;
  EXPECT_DOUBLE_EQ(info.train_flops_per_token, expected);
  const std::string text = format_model_info(c, info);
  EXPECT_NE(text.find("316."), std::string::npos) << text;
}

TEST(ModelInfo, ActiveCountsTopKOfEachExpertTensor) {
  const Step3Config c = small_config();
  const ModelInfo info = compute_model_info(c, 16);
  const int64_t routed = 3 * 4 * 12 * 16;   // gate, up, down of 4 experts in the one MoE layer
  EXPECT_EQ(info.routed_expert_params, routed);
  EXPECT_EQ(info.total_params - info.active_params, routed / 2);   // top-2 of 4 experts active
}

}  // namespace
}  // namespace stepwise
