// The training loop of the pairwise stages: dpo (policy against a reference, dpo.h) and rm (Bradley-Terry reward
// model, rm.h). Pairs come from PreferenceLoader as rows [chosen..., rejected...] (preference_pair_batch); a stage's
// PairObjective turns a batch into per-pair losses and rewards and runs backward; this loop does the rest: accumulation,
// updates, held-out pairwise accuracy, metrics, checkpoints and resume (training_run.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "data/loaders.h"
#include "train/trainer.h"

namespace stepwise {

// One pair's numbers from a stage's forward.
struct PairStats {
  double loss = 0;
  double reward_chosen = 0, reward_rejected = 0;  // dpo: implicit rewards; rm: the scalar head's rewards
  double logp_chosen = 0, logp_rejected = 0;      // dpo: policy mean log-prob per reply token (0 for rm)
};

class PairObjective {
 public:
  virtual ~PairObjective() = default;
  // Called once before training with every shard sample the run will read (train steps still to run, then the
  // held-out slice), so a stage can precompute per-pair values.
  virtual void prepare(const std::shared_ptr<const TokenShard>& /*shard*/, const std::vector<int64_t>& /*samples*/) {}
  // Forward over `batch` = preference_pair_batch(examples, ...): one PairStats per example. When grad_scale > 0 also
  // accumulates the gradient of grad_scale * sum of pair losses + aux_weight * MoE aux loss into the model.
  virtual std::vector<PairStats> run(const std::vector<PreferenceExample>& examples, const TokenBatch& batch,
                                     double grad_scale, double aux_weight) = 0;
  virtual bool reports_logps() const { return false; }
};

// Sums of token log-probs over each row's targets (reply tokens), and the number of those targets. (rows)
struct RowLogps {
  std::vector<double> sum;
  std::vector<int64_t> count;
};
RowLogps row_logps(const TokenBatch& batch, const std::vector<double>& token_logprobs);

// Per row, the position of its last target (the last reply token before <|end_of_turn|>), -1 when it has none.
std::vector<int64_t> last_target_positions(const TokenBatch& batch);

// The preference example of one shard sample (prompt, chosen, rejected parts).
PreferenceExample preference_example(const TokenShard& shard, int64_t sample);

// Held-out pairwise accuracy: chosen reward above rejected counts 1, a tie 1/2.
double pairwise_accuracy(const std::vector<PairStats>& pairs);

// Runs stage dpo or rm of the recipe.
TrainSummary run_preference_training(const RecipeConfig& recipe);

}  // namespace stepwise
