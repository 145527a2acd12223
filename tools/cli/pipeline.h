// `stepwise run PIPELINE.yaml`: the whole medical path as one command — tokenizer -> training stages (pretrain, sft,
// dpo, ...) each starting from the previous stage's checkpoint -> conversion to serving checkpoints -> evaluation by
// decoding -> one comparison report. Every step skips when its output is already complete, so a re-run resumes where
// the last one stopped.
#pragma once
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

struct PipelineStage {
  std::string name;                    // also the output folder and the report's model label
  fs::path recipe;                     // a training recipe (its stage key says pretrain | sft | dpo | rm)
  std::vector<std::string> overrides;  // key=value applied to the recipe
  bool evaluate = true;                // evaluate this stage's model (false for reward models)
};

struct PipelineConfig {
  fs::path file;
  fs::path output_dir = "runs/pipeline";
  std::vector<fs::path> tokenizer_inputs;
  int64_t tokenizer_vocab_size = 8000;
  std::vector<PipelineStage> stages;
  std::string convert_dtype = "bf16";  // serving checkpoints the evaluation loads
  std::vector<fs::path> benchmarks;    // MCQ / QA files
  int64_t eval_limit = 0;              // first N items of each benchmark (0: all)
  int64_t eval_concurrency = 16;
  fs::path preference;                 // preference pairs for held-out preference accuracy (empty: skip)
  int64_t preference_pairs = 64;       // the last N pairs (the preference stages hold out the same slice)
};

// Reads and validates a pipeline file; overrides are "key=value" for top-level keys (output_dir, eval.limit, ...)
// or "<stage name>.<recipe key>=value" for a stage's recipe. Unknown keys name the closest valid key.
PipelineConfig load_pipeline(const fs::path& file, const std::vector<std::string>& overrides);

// Runs every step (skipping complete ones) and writes OUTPUT/report.md + report.svg; returns the report's path.
fs::path run_pipeline(const PipelineConfig& config);

}  // namespace stepwise
