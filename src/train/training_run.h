// The scaffolding every training loop shares (token-level pretrain/sft, DPO, reward model): recipe checks, tokenizer
// and model set-up, init_from and resume resolution, AdamW updates with clipping and NaN/Inf skipping, checkpoints
// with the common trainer state, and SIGINT/SIGTERM handling. It runs no forward or backward itself.
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loaders.h"
#include "data/tokenizer.h"
#include "model/step3_model.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/recipe.h"
#include "train/schedule.h"
#include "train/train_backend.h"
#include "train/trainer.h"

namespace stepwise {

// Installs SIGINT/SIGTERM handlers that only record the signal, for the lifetime of the object.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int received() const;   // the signal number, 0 while none arrived

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

// The model's view of a loader batch (pointers into `b`).
TrainBatch train_view(const TokenBatch& b);

// ModelOptions from the recipe's moe.* keys (plus a score head for reward models).
ModelOptions model_options_for(const RecipeConfig& r, bool score_head);

// Checks the init_from checkpoint (exists, same tokenizer as data.tokenizer) and loads it into `model`;
// `may_be_absent` names parameters the checkpoint may lack (a new reward head). Error naming the recipe otherwise.
void load_init_from(const RecipeConfig& r, const Tokenizer& tok, Step3Model<float>& model,
                    const std::vector<std::string>& may_be_absent = {});

// The stage's token shard and the loader options of its training and held-out ranges.
struct StageData {
  std::shared_ptr<const TokenShard> shard;
  LoaderOptions train, eval;   // eval: the last data.eval_samples samples (same batch size, seq_len, seed)
};

class TrainingRun {
 public:
  // Checks device/dtype, loads the tokenizer and model config (vocab from the tokenizer), builds and initialises the
  // model, resolves `resume` and, on a resumed run, restores model, optimizer and counters; otherwise loads init_from
  // when set; then starts the backend (train.device). Everything that can fail on bad input throws here.
  TrainingRun(const RecipeConfig& recipe, ModelOptions model_options);

  const RecipeConfig& recipe;
  Tokenizer tok;
  Step3Config cfg;
  ModelOptions mopt;
  Step3Model<float> model;
  AdamW opt;
  LrSchedule schedule;
  fs::path resume_from;            // empty on a fresh run
  nlohmann::json resumed_state;    // trainer_state.json resumed from (null on a fresh run): loader state, extras
  int64_t step = 0;                // completed optimizer steps
  int64_t skipped_steps = 0;       // non-finite steps skipped so far (whole run)
  // Model + optimizer on train.device; on cuda, `model` and `opt` are the host copies checkpoints are written from.
  std::unique_ptr<TrainBackend> backend;

  bool resumed() const { return !resume_from.empty(); }
  // Builds (or reuses) the shard of data.train for `kind` and splits off the held-out slice.
  StageData open_data(ShardKind kind) const;

  // metrics.jsonl in output.dir, truncated to the resumed step (fresh file on a fresh run).
  std::unique_ptr<MetricsLog> open_metrics() const;

  // Ends one optimizer step whose gradients are accumulated: ++step; when loss and grad_norm are finite, clips and
  // applies AdamW at the scheduled lr (and the loss-free expert-bias update) through the backend; otherwise skips
  // the update, and throws
  // after train.max_bad_steps in a row. Returns the step's lr.
  double finish_step(double loss, double grad_norm);

  // Saves output.dir/checkpoint-<step>: weights, optimizer, trainer_state (step, optimizer_steps, skipped_steps,
  // stage, tokenizer_hash, plus `extra_state`), tokenizer, config, the resolved recipe.
  fs::path save(const nlohmann::json& extra_state);

  // After a step's metrics: saves every output.save_every steps, at the last step and when a stop signal arrived
  // (`extra_state` as for save()); returns true when the loop must stop because of the signal.
  bool save_or_stop(const StopSignals& signals, const nlohmann::json& extra_state, TrainSummary& summary);
  // Fills the end of a summary: steps, skipped steps, seconds since `start`, the newest checkpoint.
  void finish_summary(TrainSummary& summary, std::chrono::steady_clock::time_point start) const;

 private:
  int64_t bad_in_a_row_ = 0;
  std::string recipe_text_;
};

}  // namespace stepwise
