// "Model + optimizer" behind the token-level training loop (pretrain, sft): forward / backward of a micro-batch, the
// gradient norm and the optimizer update, on the CPU (the TrainingRun's Step3Model<float> + AdamW, bit-identical to
// calling them directly) or on a CUDA device (Step3CudaModel, built only with STEPWISE_CUDA). Checkpoints are always
// written from the TrainingRun's host model and AdamW, which sync_to_host() refreshes.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/step3_model.h"

namespace stepwise {

class TrainingRun;

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;
  virtual void zero_grad() = 0;
  // Forward over a micro-batch (the batch's arrays must stay alive until backward). loss(), aux_loss() and
  // expert_load() report the last forward (on a device they wait for it).
  virtual void forward(const TrainBatch& batch) = 0;
  virtual int64_t num_target_tokens() const = 0;
  virtual double loss() = 0;
  virtual double aux_loss() = 0;
  virtual std::vector<std::vector<double>> expert_load() = 0;
  // Accumulates the gradient of weight_per_target * (sum of non-ignored token losses) + aux_weight * aux_loss().
  virtual void backward(double weight_per_target, double aux_weight) = 0;
  virtual double grad_norm() = 0;
  // Clips to train.grad_clip, one AdamW step at lr, and the loss-free expert-bias step when moe.balance is bias.
  virtual void update(double lr, double grad_norm) = 0;
  // The run's host model (weights, expert biases) and AdamW state <- the backend's (nothing to do on the CPU).
  virtual void sync_to_host() = 0;
};

// The CPU backend over run.model and run.opt.
std::unique_ptr<TrainBackend> make_cpu_backend(TrainingRun& run);
#ifdef STEPWISE_HAS_CUDA
// The CUDA backend (train.dtype bf16 or fp32), started from run.model's weights and expert biases and run.opt's state.
std::unique_ptr<TrainBackend> make_cuda_backend(TrainingRun& run);
#endif

}  // namespace stepwise
