// Training recipes: YAML files (recipes/medical/*.yaml) read into a typed, validated RecipeConfig.
// Every key is known: a misspelled key is an error naming it and the closest valid key. `key=value` overrides use
// dotted paths (train.lr=1e-3). Relative paths are relative to the current working directory.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

struct RecipeConfig {
  fs::path file;                  // the recipe file
  std::string stage = "pretrain"; // pretrain | sft | dpo | rm | grpo
  fs::path model;                 // model config: recipes/models/*.yaml or an HF config.json
  fs::path init_from;             // checkpoint to start from (empty: fresh initialisation)
  std::string resume = "none";    // none | auto (newest complete checkpoint in output.dir) | a checkpoint directory

  struct Data {
    fs::path train;               // canonical JSONL for the stage
    fs::path tokenizer;           // tokenizer directory (tokenizer.model)
    fs::path cache_dir = "runs/cache";  // token shards
    int64_t seq_len = 256;
    int64_t eval_samples = 64;    // held-out slice (last samples of the file) for eval loss
  } data;

  struct Train {
    std::string device = "cpu";   // cpu | cuda
    std::string dtype = "fp32";   // fp32 | bf16
    uint64_t seed = 1234;
    int64_t micro_batch = 8;
    int64_t grad_accum = 1;
    int64_t max_steps = 200;
    int64_t warmup_steps = 10;
    std::string schedule = "cosine";  // cosine | linear | constant (after warmup)
    double lr = 1e-3, min_lr = 1e-4;
    double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double grad_clip = 1.0;       // global-norm clipping; 0 disables
    int64_t max_bad_steps = 5;    // consecutive NaN/Inf steps tolerated before the run stops
    int64_t eval_every = 50;
    int64_t eval_batches = 4;
    int64_t log_every = 1;
  } train;

  struct Moe {
    std::string balance = "aux";  // aux (Switch/GShard loss) | bias (DeepSeek-V3 loss-free bias) | none
    double aux_loss_coef = 0.01;
    double bias_update_rate = 1e-3;
  } moe;

  struct Dpo {                    // stage dpo (init_from required: the policy starts there and it is the reference)
    std::string loss = "dpo";     // dpo (sigmoid) | ipo | simpo (no reference, length-normalised)
    double beta = 0.1;
    double label_smoothing = 0.0; // dpo / simpo: probability a preference label is flipped, in [0, 0.5)
    std::string reference = "precompute";  // precompute (reference log-probs once per pair, cached) | frozen
  } dpo;

  struct Simpo {
    double gamma = 0.5;           // target reward margin
  } simpo;

  struct Rm {                     // stage rm: Bradley-Terry reward model (decoder + scalar head)
    double center_coef = 0.0;     // adds center_coef * (r_chosen + r_rejected)^2 to keep rewards near zero
  } rm;

  struct Output {
    fs::path dir = "runs/pretrain";
    int64_t save_every = 100;
    int64_t keep_last = 2;
  } output;

  YAML::Node resolved;            // the recipe with overrides applied (saved beside every checkpoint)
};

// Loads and validates a recipe, applying `overrides` ("a.b=value") first. Throws Error naming file and key.
RecipeConfig load_recipe(const fs::path& file, const std::vector<std::string>& overrides = {});

// Parses a YAML file; Error("FILE:LINE: invalid YAML: ...") when it does not parse. (Recipes and pipelines.)
YAML::Node load_yaml_file(const fs::path& file);

// Every valid dotted key of a recipe (for help texts and suggestions).
std::vector<std::string> recipe_keys();

}  // namespace stepwise
