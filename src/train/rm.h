// Stage rm: a reward model (the decoder plus the scalar head score.weight, ModelOptions::score_head) trained on
// preference pairs with the Bradley-Terry loss; the reward of a (prompt, reply) row is the head's output at the last
// reply token before <|end_of_turn|>. RewardModel loads a saved rm checkpoint and scores answers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "train/losses.h"
#include "train/preference_trainer.h"
#include "train/training_run.h"

namespace stepwise {

// One Bradley-Terry pass of a score-head model over a pair batch: per example the rewards (head output at each
// row's last target position) and loss; when grad_scale > 0 the gradient of grad_scale * sum of pair losses
// (+ aux_weight * MoE aux loss) accumulated into the model (no LM-head term).
struct RewardPair {
  double chosen = 0, rejected = 0;
  RewardPairLoss loss;
};
template <class T>
std::vector<RewardPair> reward_forward_backward(Step3Model<T>& model, const TokenBatch& batch, double center_coef,
                                                double grad_scale, double aux_weight);

std::unique_ptr<PairObjective> make_reward_objective(const RecipeConfig& recipe, TrainingRun& run);

class RewardModel {
 public:
  // Loads config.json, model.safetensors (must hold score.weight) and the tokenizer of a checkpoint directory;
  // Error naming the directory when it is not a reward-model checkpoint.
  explicit RewardModel(const fs::path& checkpoint_dir);
  ~RewardModel();
  RewardModel(const RewardModel&) = delete;
  RewardModel& operator=(const RewardModel&) = delete;

  // Reward of one sequence: render_prompt(prompt) followed by render_reply(reply), i.e. ending with <|end_of_turn|>
  // (at least 2 tokens). Read where training reads it: the position whose input is the last token before the end.
  double score(const std::vector<int32_t>& tokens);
  double score(const Conversation& prompt, const std::string& reply);

  const Tokenizer& tokenizer() const { return *tok_; }
  Step3Model<float>& model() { return *model_; }

 private:
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Step3Model<float>> model_;
};

}  // namespace stepwise
