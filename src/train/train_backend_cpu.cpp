// The CPU training backend: the TrainingRun's Step3Model<float> and AdamW, called exactly as the token loop called
// them before the backend existed (same per-token weights, same order), so CPU runs and resumes stay bit-identical.
#include "train/training_run.h"

namespace stepwise {

namespace {

class CpuTrainBackend final : public TrainBackend {
 public:
  explicit CpuTrainBackend(TrainingRun& run) : run_(run) {}

  void zero_grad() override { run_.model.params().zero_grad(); }
  void forward(const TrainBatch& batch) override {
    targets_ = batch.targets;
    n_ = batch.B * batch.T;
    loss_ = run_.model.forward(batch);
  }
  int64_t num_target_tokens() const override { return run_.model.num_target_tokens(); }
  double loss() override { return loss_; }
  double aux_loss() override { return run_.model.aux_loss(); }
  std::vector<std::vector<double>> expert_load() override { return run_.model.expert_load(); }
  void backward(double weight_per_target, double aux_weight) override {
    std::vector<float> dloss(static_cast<size_t>(n_), 0.0f);
    for (size_t i = 0; i < dloss.size(); ++i) dloss[i] = targets_[i] != kIgnoreTarget ? float(weight_per_target) : 0.f;
    run_.model.backward(dloss.data(), aux_weight);
  }
  double grad_norm() override { return AdamW::grad_norm(run_.model.params()); }
  void update(double lr, double grad_norm) override {
    AdamW::clip(run_.model.params(), grad_norm, run_.recipe.train.grad_clip);
    run_.opt.step(run_.model.params(), lr);
    if (run_.mopt.expert_bias) run_.model.update_expert_bias(run_.recipe.moe.bias_update_rate);
  }
  void sync_to_host() override {}

 private:
  TrainingRun& run_;
  const int32_t* targets_ = nullptr;   // (n_) of the last forward's batch
  int64_t n_ = 0;
  double loss_ = 0;
};

}  // namespace

std::unique_ptr<TrainBackend> make_cpu_backend(TrainingRun& run) { return std::make_unique<CpuTrainBackend>(run); }

}  // namespace stepwise
