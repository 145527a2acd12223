// Implementation of stage rm's objective and the RewardModel scorer (see rm.h).
#include "train/rm.h"

#include "ckpt/model_io.h"
#include "core/error.h"
#include "train/losses.h"

namespace stepwise {

template <class T>
std::vector<RewardPair> reward_forward_backward(Step3Model<T>& model, const TokenBatch& batch, double center_coef,
                                                double grad_scale, double aux_weight) {
  if (batch.B % 2 != 0) fail("rm: ", batch.B, " rows is not chosen + rejected pairs");
  const size_t n = static_cast<size_t>(batch.B / 2);
  model.forward(train_view(batch));
  const T* scores = model.scores();   // (B*T)
  const std::vector<int64_t> at = last_target_positions(batch);
  std::vector<RewardPair> out(n);
  std::vector<T> dscore(static_cast<size_t>(batch.B * batch.T), T(0));
  for (size_t i = 0; i < n; ++i) {
    if (at[i] < 0 || at[n + i] < 0) fail("rm: pair ", i, " of the batch has a row without reply tokens");
    RewardPair& p = out[i];
    p.chosen = static_cast<double>(scores[at[i]]);
    p.rejected = static_cast<double>(scores[at[n + i]]);
    p.loss = bradley_terry_loss(p.chosen, p.rejected, center_coef);
    dscore[static_cast<size_t>(at[i])] = static_cast<T>(p.loss.d_chosen * grad_scale);
    dscore[static_cast<size_t>(at[n + i])] = static_cast<T>(p.loss.d_rejected * grad_scale);
  }
  if (grad_scale > 0) model.backward(nullptr, aux_weight, dscore.data());
  return out;
}

template std::vector<RewardPair> reward_forward_backward(Step3Model<float>&, const TokenBatch&, double, double, double);
template std::vector<RewardPair> reward_forward_backward(Step3Model<double>&, const TokenBatch&, double, double,
                                                         double);

namespace {

class RewardObjective : public PairObjective {
 public:
  RewardObjective(const RecipeConfig& r, TrainingRun& run) : center_coef_(r.rm.center_coef), run_(run) {}

  std::vector<PairStats> run(const std::vector<PreferenceExample>& examples, const TokenBatch& batch,
                             double grad_scale, double aux_weight) override {
    const std::vector<RewardPair> pairs = reward_forward_backward(run_.model, batch, center_coef_, grad_scale, aux_weight);
    std::vector<PairStats> stats(examples.size());
    for (size_t i = 0; i < stats.size(); ++i) {
      stats[i].loss = pairs[i].loss.loss;
      stats[i].reward_chosen = pairs[i].chosen;
      stats[i].reward_rejected = pairs[i].rejected;
    }
    return stats;
  }

 private:
  double center_coef_;
  TrainingRun& run_;
};

}  // namespace

std::unique_ptr<PairObjective> make_reward_objective(const RecipeConfig& recipe, TrainingRun& run) {
  return std::make_unique<RewardObjective>(recipe, run);
}

RewardModel::RewardModel(const fs::path& dir) {
  const fs::path weights = dir / "model.safetensors";
  if (!fs::exists(weights)) fail(dir.string(), ": not a checkpoint (model.safetensors missing)");
  const SafetensorsFile file = SafetensorsFile::open(weights);
  if (!file.find(kScoreHeadName))
    fail(dir.string(), ": not a reward-model checkpoint (model.safetensors has no '", kScoreHeadName, "')");
  tok_ = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  const Step3Config cfg = Step3Config::load(dir);
  if (cfg.vocab_size != tok_->vocab_size())
    fail(dir.string(), ": config.json vocab_size ", cfg.vocab_size, " differs from the tokenizer's ", tok_->vocab_size());
  ModelOptions o;
  o.score_head = true;
  o.expert_bias = cfg.num_moe_layers() > 0 && file.find(expert_bias_name(cfg.moe_layers().front()));
  model_ = std::make_unique<Step3Model<float>>(cfg, o, /*with_grad=*/false);
  load_model_weights(dir, *model_);
}

RewardModel::~RewardModel() = default;

double RewardModel::score(const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) fail("RewardModel::score: a sequence needs at least 2 tokens (prompt + reply), got ", n);
  std::vector<int32_t> inputs(tokens.begin(), tokens.end() - 1), targets(tokens.begin() + 1, tokens.end());
  std::vector<int32_t> pos(static_cast<size_t>(n - 1));
  for (int64_t i = 0; i < n - 1; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  model_->forward(TrainBatch{inputs.data(), targets.data(), pos.data(), nullptr, 1, n - 1});
  return model_->scores()[n - 2];
}

double RewardModel::score(const Conversation& prompt, const std::string& reply) {
  std::vector<int32_t> tokens = render_prompt(*tok_, prompt);
  const std::vector<int32_t> r = render_reply(*tok_, reply);
  tokens.insert(tokens.end(), r.begin(), r.end());
  return score(tokens);
}

}  // namespace stepwise
