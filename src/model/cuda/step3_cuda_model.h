// The Step-3 training model on one CUDA device: the same layers as Step3Model (step3_model.h) run through the
// stepwise::cuda op catalogue, with fp32 master weights, fp32 gradients and fp32 AdamW moments in device arenas laid
// out exactly like ParamTable<float> (so the whole table moves in one copy) and activations in bf16 or fp32.
// Compiled only with STEPWISE_CUDA; this header includes no CUDA headers. No host synchronisation inside a step
// except where a result is read (loss(), grad_norm(), expert_load()).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/param_table.h"
#include "model/step3_config.h"
#include "model/step3_model.h"

namespace stepwise {

// Element type of activations and of the compute copy of the weights. fp32: everything fp32 (checks against the
// CPU model); bf16: bf16 activations and weight copy, fp32 statistics, losses, gradients and optimizer state.
enum class CudaComputeType : uint8_t { fp32, bf16 };

// AdamW hyper-parameters (the same meaning as the CPU trainer's; weight decay applies to ParamSpec::weight_decay
// tensors only).
struct CudaAdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

struct Step3CudaState;   // device arenas, layer views, streams (cuda_model_state.h)

class Step3CudaModel {
 public:
  // Allocates the parameter, gradient and moment arenas on the current device (values and moments zeroed; call
  // upload_params). Throws Error for a score-head model (reward models train on the CPU) or without a device.
  Step3CudaModel(const Step3Config& cfg, ModelOptions opts, CudaComputeType type);
  ~Step3CudaModel();
  Step3CudaModel(const Step3CudaModel&) = delete;
  Step3CudaModel& operator=(const Step3CudaModel&) = delete;

  const Step3Config& config() const;
  const std::vector<ParamSpec>& specs() const;   // the ParamTable<float> layout of every device arena
  int64_t arena_size() const;                    // elements per arena (ParamTable<float>::arena_size())
  CudaComputeType compute_type() const;
  ModelOptions& options();                       // may be changed between steps (aux_loss_coef, expert_bias)

  // ---- weights and optimizer state (one copy each; block until done) ----
  void upload_params(const ParamTable<float>& host);        // master values (and the bf16 copy) <- host values
  void download_params(ParamTable<float>& host) const;      // host values <- master values
  void download_grads(ParamTable<float>& host) const;       // host gradients <- device gradients (needs with_grad)
  // AdamW moments (arena_size() each, the ParamTable layout) and the number of steps taken.
  void upload_optimizer_state(const float* exp_avg, const float* exp_avg_sq, int64_t steps);
  void download_optimizer_state(float* exp_avg, float* exp_avg_sq) const;
  int64_t optimizer_steps() const;

  // ---- training step ----
  void zero_grad();
  // Copies the host batch to the device and enqueues the forward; returns at once (tokens and targets are checked
  // on the host first: Error naming the bad index). The per-token losses stay on the device.
  void forward(const TrainBatch& batch);
  int64_t num_target_tokens() const;             // non-ignored targets of the last forward (known without a sync)
  double loss();                                 // mean cross-entropy of the last forward (waits for it)
  double aux_loss();                             // sum of the MoE auxiliary losses of the last forward (waits)
  // Enqueues the gradient (accumulated += into the gradient arena) of
  //   weight_per_target * sum of non-ignored token losses + aux_weight * aux_loss()
  // for the last forward.
  void backward(double weight_per_target, double aux_weight = 1.0);
  void backward_mean();                          // backward(1 / num_target_tokens(), 1): d(loss() + aux_loss())
  double grad_norm();                            // global L2 norm of the gradient arena (waits)
  // Scales gradients to max_norm when grad_norm > max_norm > 0, then one AdamW step at lr over every tensor
  // (refreshing the bf16 weight copy in the same pass). grad_norm: the value grad_norm() returned.
  void optimizer_step(const CudaAdamWConfig& hyper, double lr, double max_norm, double grad_norm);

  // ---- MoE balancing (host mirrors, as Step3Model) ----
  const std::vector<int64_t>& moe_layers() const;
  const std::vector<std::vector<double>>& expert_load();    // [moe layer][expert] of the last forward (waits)
  const std::vector<float>& expert_bias(size_t moe_index) const;
  void set_expert_bias(size_t moe_index, const std::vector<float>& bias);   // (E)
  void update_expert_bias(double rate);          // b_e += rate * sign(1/E - load_e), as Step3Model

  // ---- memory ----
  int64_t device_bytes() const;                  // bytes held in this model's arenas now

  void synchronize() const;                      // waits for everything enqueued

 private:
  std::unique_ptr<Step3CudaState> s_;
};

}  // namespace stepwise
