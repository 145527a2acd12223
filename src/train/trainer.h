// `stepwise train`: one training stage from a recipe. The token-level loop (pretrain, sft) lives here; dpo and rm run
// the preference loop (preference_trainer.h). Both share training_run.h: gradient accumulation, clipping, LR schedule,
// NaN/Inf step skipping, periodic held-out eval, metrics.jsonl, atomic checkpoints every save_every steps, exact
// resume, and a clean save-and-exit on SIGINT/SIGTERM.
#pragma once
#include <cstdint>

#include "train/recipe.h"

namespace stepwise {

struct TrainSummary {
  int64_t start_step = 0;          // steps already done when this run started (resume)
  int64_t end_step = 0;            // last completed optimizer step
  double first_loss = 0, last_loss = 0;            // train loss of the first and last step run here
  double first_eval_loss = -1, last_eval_loss = -1;  // held-out loss before training and at the end (-1: none)
  double first_eval_accuracy = -1, last_eval_accuracy = -1;  // dpo / rm: held-out preference accuracy (-1: none)
  int64_t skipped_steps = 0;       // non-finite steps skipped
  bool interrupted = false;        // stopped by SIGINT/SIGTERM (after saving)
  fs::path last_checkpoint;
  double seconds = 0;
};

// Runs the recipe's stage (pretrain, sft, dpo, rm); throws Error for bad recipes, data or checkpoints before training.
TrainSummary run_training(const RecipeConfig& recipe);

}  // namespace stepwise
