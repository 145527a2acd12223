// Checkpoint directories (DESIGN.md rule 2): config.json, model.safetensors, tokenizer files, generation_config.json,
// and for training optimizer.safetensors + trainer_state.json. A checkpoint is built in a temporary directory, every
// file fsynced, then renamed to checkpoint-<step>: a directory with that name is always complete.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ckpt/safetensors.h"
#include "core/fs.h"

namespace stepwise {

struct CheckpointContents {
  nlohmann::json config;                          // config.json (Step3TextConfig keys)
  nlohmann::json generation_config;               // generation_config.json (null: not written)
  std::vector<TensorToWrite> model;               // model.safetensors
  std::vector<TensorToWrite> optimizer;           // optimizer.safetensors (empty: not written)
  nlohmann::json trainer_state;                   // trainer_state.json (null: not written)
  fs::path tokenizer_dir;                         // tokenizer.model / tokenizer.json copied from here when set
  std::vector<std::pair<std::string, std::string>> extra_files;  // (file name, content), e.g. the resolved recipe
};

// Writes `c` as `dir` atomically: built in a sibling temporary directory, fsynced, renamed into place (an existing
// `dir` is replaced only after the new one is complete).
void write_checkpoint_dir(const fs::path& dir, const CheckpointContents& c);

// Saves run_dir/checkpoint-<step>, then deletes the oldest checkpoints beyond keep_last (keep_last <= 0 keeps all)
// and leftovers of interrupted saves. Returns the checkpoint's path.
fs::path save_checkpoint(const fs::path& run_dir, int64_t step, const CheckpointContents& c, int keep_last);

// The complete checkpoints of a run, sorted by step (ascending).
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir);

// The newest complete checkpoint of a run, if any.
std::optional<fs::path> latest_checkpoint(const fs::path& run_dir);

}  // namespace stepwise
