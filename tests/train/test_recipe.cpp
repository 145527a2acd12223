// Tests of recipe loading: values bind to fields, overrides apply by dotted path, and every bad recipe fails with
// a message naming the file, the key and (for typos) the closest valid key.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/recipe.h"

using namespace stepwise;

namespace {
fs::path write_recipe(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("stepwise_recipe_" + name + ".yaml");
  write_file_atomic(p, text);
  return p;
}

const char* kGood = R"(stage: pretrain
model: recipes/models/step3-tiny.yaml
data:
  train: data/medical-zh/pretrain.jsonl
  tokenizer: runs/tokenizer
  seq_len: 128
train:
  lr: 3.0e-3
  max_steps: 50
  schedule: linear
moe:
  balance: bias
output:
  dir: runs/x
)";

std::string error_of(const fs::path& p, const std::vector<std::string>& overrides = {}) {
  try {
    load_recipe(p, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Recipe, LoadsValuesAndDefaults) {
  RecipeConfig c = load_recipe(write_recipe("good", kGood));
  EXPECT_EQ(c.stage, "pretrain");
  EXPECT_EQ(c.data.seq_len, 128);
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-3);
  EXPECT_EQ(c.train.schedule, "linear");
  EXPECT_EQ(c.moe.balance, "bias");
  EXPECT_EQ(c.output.dir, fs::path("runs/x"));
  EXPECT_EQ(c.train.micro_batch, 8);  // default
}

TEST(Recipe, OverridesByDottedPath) {
  RecipeConfig c = load_recipe(write_recipe("ov", kGood), {"train.lr=1e-4", "train.min_lr=0", "output.keep_last=5",
                                                           "train.micro_batch=2"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-4);
  EXPECT_EQ(c.output.keep_last, 5);
  EXPECT_EQ(c.train.micro_batch, 2);
  EXPECT_EQ(c.resolved["train"]["lr"].as<double>(), 1e-4);
}

TEST(Recipe, TypoSuggestsClosestKey) {
  std::string e = error_of(write_recipe("typo", std::string(kGood) + "train_steps: 3\n"));
  EXPECT_NE(e.find("unknown key 'train_steps'"), std::string::npos) << e;
  e = error_of(write_recipe("typo2", std::string(kGood) + "optimizer:\n  lr: 1\n"));
  EXPECT_NE(e.find("unknown key 'optimizer'"), std::string::npos) << e;
  e = error_of(write_recipe("typo3", kGood), {"train.warmup_step=3"});
  EXPECT_NE(e.find("did you mean 'train.warmup_steps'"), std::string::npos) << e;
  e = error_of(write_recipe("typo4", std::string(kGood) + "resum: auto\n"));
  EXPECT_NE(e.find("did you mean 'resume'"), std::string::npos) << e;
}

TEST(Recipe, BadValuesNameTheKey) {
  fs::path p = write_recipe("bad", kGood);
  EXPECT_NE(error_of(p, {"train.lr=fast"}).find("'train.lr': 'fast' is not a valid number"), std::string::npos);
  EXPECT_NE(error_of(p, {"train.schedule=step"}).find("'train.schedule': 'step' is not one of"), std::string::npos);
  EXPECT_NE(error_of(p, {"stage=pretrian"}).find("'stage'"), std::string::npos);
  EXPECT_NE(error_of(p, {"data.seq_len=0"}).find("'data.seq_len' must be > 0"), std::string::npos);
  EXPECT_NE(error_of(p, {"noequals"}).find("expected key=value"), std::string::npos);
  std::string e = error_of(write_recipe("badyaml", "stage: [unclosed\n"));
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
  e = error_of(write_recipe("nomodel", "stage: pretrain\n"));
  EXPECT_NE(e.find("'model' is required"), std::string::npos) << e;
  EXPECT_EQ(error_of(p), "");
}
