// Step3Config: YAML and config.json reading, validation messages (unknown key with suggestion, missing key, bad
// values), config.json round trip, and the recipes/models files.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "model/step3_config.h"

namespace stepwise {
namespace {

const char* kTinyYaml = R"(hidden_size: 32
num_hidden_layers: 3
num_attention_heads: 2
head_dim: 8
share_q_dim: 16
intermediate_size: 48
moe_layers_enum: "1, 2"
moe_num_experts: 4
moe_top_k: 2
moe_intermediate_size: 24
share_expert_dim: 16
norm_expert_weight: true
vocab_size: 50
)";

std::string error_of(const std::string& yaml) {
  try {
    Step3Config::from_yaml_string(yaml, "m.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Step3Config, ReadsYamlWithDefaults) {
  const Step3Config c = Step3Config::from_yaml_string(kTinyYaml, "m.yaml");
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_attention_groups, 1);
  EXPECT_TRUE(c.norm_expert_weight);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.moe_layers(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.moe_layer_mask(), (std::vector<bool>{false, true, true}));
}

TEST(Step3Config, UnknownKeyNamesItAndSuggestsClosest) {
  const std::string e = error_of(std::string(kTinyYaml) + "hiden_size: 3\n");
  EXPECT_NE(e.find("m.yaml:14"), std::string::npos) << e;
  EXPECT_NE(e.find("'hiden_size'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'hidden_size'"), std::string::npos) << e;
  const std::string e2 = error_of(std::string(kTinyYaml) + "moe_topk: 3\n");
  EXPECT_NE(e2.find("did you mean 'moe_top_k'"), std::string::npos) << e2;
}

TEST(Step3Config, MissingAndInvalidValuesNameKeyAndFile) {
  std::string no_vocab = kTinyYaml;
  no_vocab.erase(no_vocab.find("vocab_size"));
  const std::string e = error_of(no_vocab);
  EXPECT_NE(e.find("m.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("missing required model config key 'vocab_size'"), std::string::npos) << e;

  std::string bad = kTinyYaml;
  bad.replace(bad.find("head_dim: 8"), 11, "head_dim: x8");
  const std::string e2 = error_of(bad);
  EXPECT_NE(e2.find("m.yaml:4"), std::string::npos) << e2;
  EXPECT_NE(e2.find("'head_dim'"), std::string::npos) << e2;

  EXPECT_NE(error_of(std::string(kTinyYaml) + "num_attention_groups: 2\n").find("must be 1"), std::string::npos);
  std::string out_of_range = kTinyYaml;
  out_of_range.replace(out_of_range.find("\"1, 2\""), 6, "\"1,7\"");
  EXPECT_NE(error_of(out_of_range).find("layer 7 is outside [0, 3)"), std::string::npos);
  std::string top_k = kTinyYaml;
  top_k.replace(top_k.find("moe_top_k: 2"), 12, "moe_top_k: 9");
  EXPECT_NE(error_of(top_k).find("moe_top_k"), std::string::npos);
  std::string bad_list = kTinyYaml;
  bad_list.replace(bad_list.find("\"1, 2\""), 6, "\"1,,2\"");
  EXPECT_NE(error_of(bad_list).find("moe_layers_enum"), std::string::npos);
}

TEST(Step3Config, JsonRoundTripAndHfMetadata) {
  const Step3Config c = Step3Config::from_yaml_string(kTinyYaml, "m.yaml");
  const std::string json = c.to_json();
  EXPECT_NE(json.find("\"architectures\""), std::string::npos);
  EXPECT_NE(json.find("\"model_type\""), std::string::npos);
  const Step3Config back = Step3Config::from_json_string(json, "config.json");
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(back.moe_layers(), c.moe_layers());

  // nested text_config (as in Step-3's vision-language config.json) and HF metadata keys are accepted
  const std::string nested = "{\"torch_dtype\": \"bfloat16\", \"text_config\": " + json + "}";
  EXPECT_EQ(Step3Config::from_json_string(nested, "config.json").hidden_size, 32);
  // but a misspelled model key is still an error with a suggestion
  std::string typo = json;
  typo.replace(typo.find("\"share_q_dim\""), 13, "\"share_qdim\"");
  try {
    Step3Config::from_json_string(typo, "config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'share_q_dim'"), std::string::npos) << e.what();
  }
}

TEST(Step3Config, CheckpointDirectoryLoadsConfigJson) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "stepwise_test_ckpt_config";
  std::filesystem::create_directories(dir);
  const Step3Config c = Step3Config::from_yaml_string(kTinyYaml, "m.yaml");
  c.save_json(dir / "config.json");
  EXPECT_EQ(Step3Config::load(dir).to_json(), c.to_json());
  std::filesystem::remove_all(dir);
  EXPECT_THROW(Step3Config::load(dir), Error);
}

TEST(Step3Config, RecipeFilesLoad) {
  const std::string dir = std::string(STEPWISE_SOURCE_DIR) + "/recipes/models/";
  const Step3Config tiny = Step3Config::load(dir + "step3-tiny.yaml");
  EXPECT_EQ(tiny.moe_layers(), (std::vector<int64_t>{1, 2, 3}));
  const Step3Config mini = Step3Config::load(dir + "step3-mini.yaml");
  EXPECT_EQ(mini.hidden_size, 1024);
  EXPECT_EQ(mini.num_moe_layers(), 7);
  const Step3Config full = Step3Config::load(dir + "step3.yaml");
  EXPECT_EQ(full.num_moe_layers(), 56);
  EXPECT_FALSE(full.moe_layer_mask()[3]);
  EXPECT_TRUE(full.moe_layer_mask()[4]);
  EXPECT_TRUE(full.moe_layer_mask()[59]);
  EXPECT_FALSE(full.moe_layer_mask()[60]);
}

}  // namespace
}  // namespace stepwise
