// The serving engine's step on one CUDA device: the whole Step-3 layer stack (embedding, MFA attention over a paged
// device KV cache, dense / MoE FFN inline, final norm, LM head) with the same contract as AttentionWorker::forward.
// Weights are uploaded once from the host Step3Model (bf16 by default, fp32 to check against the CPU); the host KvPool
// keeps the block bookkeeping (its tables are uploaded every step) while the keys and values live only on the device.
// Attention and FFN share the one GPU: AFD across GPUs needs NCCL (a later issue). Compiled only with STEPWISE_CUDA;
// this header includes no CUDA headers.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/cuda/step3_cuda_model.h"   // CudaComputeType
#include "model/step3_model.h"
#include "serve/afd/attention_worker.h"    // StepSeq
#include "serve/kv_pool.h"

namespace stepwise {

class CudaStepModel {
 public:
  // Uploads the model's weights (and its loss-free expert biases when enabled) to the current device and allocates
  // K and V pools of pool.num_blocks() x pool.block_size() x head_dim per layer. pool must outlive the object; model
  // is only read here (non-const for its options and expert biases). Throws Error without a device.
  CudaStepModel(Step3Model<float>& model, const KvPool& pool, CudaComputeType type);
  ~CudaStepModel();
  CudaStepModel(const CudaStepModel&) = delete;
  CudaStepModel& operator=(const CudaStepModel&) = delete;

  // Runs one step (waits for it); returns logits (rows, V) in fp32: per sequence in order, n rows when all_logits,
  // else the last one. Writes the new tokens' keys and values into the device pool through each block table.
  std::vector<float> forward(const std::vector<StepSeq>& seqs);

  // on: every forward first fills its float step buffers (activations, routing weights, logits; not the KV pools)
  // with NaN, so that anything a step reads without having written it shows up in the logits (tests).
  void set_poison_step_buffers(bool on);

  CudaComputeType compute_type() const;
  int64_t device_bytes() const;   // weights + KV pools + step buffers held now

  struct Impl;   // per activation type, in cuda_step_model.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepwise
