// The CUDA training backend (train.device: cuda): Step3CudaModel in bf16 or fp32 (train.dtype), started from the
// TrainingRun's host weights, expert biases and AdamW state (fresh, init_from or resumed), and copying them back to
// the host only when a checkpoint is written. Built only with STEPWISE_CUDA.
#include "model/cuda/step3_cuda_model.h"
#include "core/log.h"
#include "train/training_run.h"

namespace stepwise {

namespace {

class CudaTrainBackend final : public TrainBackend {
 public:
  explicit CudaTrainBackend(TrainingRun& run)
      : run_(run),
        model_(run.cfg, run.mopt,
               run.recipe.train.dtype == "bf16" ? CudaComputeType::bf16 : CudaComputeType::fp32) {
    model_.upload_params(run.model.params());
    for (size_t m = 0; m < model_.moe_layers().size(); ++m) model_.set_expert_bias(m, run.model.expert_bias(m));
    model_.upload_optimizer_state(run.opt.exp_avg(), run.opt.exp_avg_sq(), run.opt.steps());
    hyper_ = {run.recipe.train.beta1, run.recipe.train.beta2, run.recipe.train.eps, run.recipe.train.weight_decay};
    log_info("training on CUDA in ", run.recipe.train.dtype, ": ", model_.device_bytes() >> 20,
             " MiB of weights, gradients and optimizer state on the device");
  }

  void zero_grad() override { model_.zero_grad(); }
  void forward(const TrainBatch& batch) override { model_.forward(batch); }
  int64_t num_target_tokens() const override { return model_.num_target_tokens(); }
  double loss() override { return model_.loss(); }
  double aux_loss() override { return model_.aux_loss(); }
  std::vector<std::vector<double>> expert_load() override { return model_.expert_load(); }
  void backward(double weight_per_target, double aux_weight) override {
    model_.backward(weight_per_target, aux_weight);
  }
  double grad_norm() override { return model_.grad_norm(); }
  void update(double lr, double grad_norm) override {
    model_.optimizer_step(hyper_, lr, run_.recipe.train.grad_clip, grad_norm);
    if (run_.mopt.expert_bias) model_.update_expert_bias(run_.recipe.moe.bias_update_rate);
  }
  void sync_to_host() override {
    model_.download_params(run_.model.params());
    for (size_t m = 0; m < model_.moe_layers().size(); ++m) run_.model.expert_bias(m) = model_.expert_bias(m);
    model_.download_optimizer_state(run_.opt.exp_avg(), run_.opt.exp_avg_sq());
    run_.opt.set_steps(model_.optimizer_steps());
  }

 private:
  TrainingRun& run_;
  Step3CudaModel model_;
  CudaAdamWConfig hyper_;
};

}  // namespace

std::unique_ptr<TrainBackend> make_cuda_backend(TrainingRun& run) { return std::make_unique<CudaTrainBackend>(run); }

}  // namespace stepwise
