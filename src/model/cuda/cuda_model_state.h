// Internal to src/model/cuda: the state behind Step3CudaModel. Parameter-shaped fp32 arenas (master, gradient, AdamW
// moments) share ParamTable<float>'s offsets; the batch, per-token losses and MoE statistics live in small device
// buffers with pinned host mirrors; the layer pass (activations, scratch, the layer pieces) is templated on the
// activation type T behind CudaPass (step3_cuda_pass.cpp).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/device.h"
#include "model/cuda/step3_cuda_model.h"

namespace stepwise {

// Page-locked host memory of n elements (asynchronous copies need it), released with the object.
template <class U>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(int64_t n) : n_(n) {
    if (n > 0) STEPWISE_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), sizeof(U) * static_cast<size_t>(n)));
  }
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  U* data() { return p_; }
  const U* data() const { return p_; }
  int64_t size() const { return n_; }

 private:
  U* p_ = nullptr;
  int64_t n_ = 0;
};

struct Step3CudaState;

// The layer pass in one activation type: forward over the batch in state (writing the per-token losses, MoE aux
// losses and loads to the state's output buffer) and backward accumulating into the gradient arena.
class CudaPass {
 public:
  virtual ~CudaPass() = default;
  virtual void forward(Step3CudaState& s) = 0;
  virtual void backward(Step3CudaState& s, double aux_weight) = 0;
  virtual int64_t device_bytes() const = 0;
};
std::unique_ptr<CudaPass> make_cuda_pass(Step3CudaState& s);   // by s.type

struct Step3CudaState {
  Step3Config cfg;
  ModelOptions opts;
  CudaComputeType type;
  std::vector<ParamSpec> specs;       // ParamTable<float> layout
  int64_t arena = 0;                  // elements per parameter-shaped arena
  std::vector<int64_t> moe_layers;    // decoder layer of each MoE layer
  cudaStream_t stream = nullptr;
  cudaEvent_t staging_free = nullptr; // recorded after the last copy out of the pinned staging buffers

  // parameter-shaped arenas, fp32, (arena) each
  cuda::DeviceBuffer<float> master, grad, exp_avg, exp_avg_sq;
  cuda::DeviceBuffer<cuda::bf16> weights_bf16;     // (arena) bf16 compute copy of master; empty in fp32 mode
  int64_t adam_steps = 0;

  // MoE balancing: selection bias (M, E) on the device with its host mirror; load of the last forward
  cuda::DeviceBuffer<float> bias;
  std::vector<std::vector<float>> bias_host;       // [moe layer] (E)
  std::vector<std::vector<double>> load_host;      // [moe layer] (E)
  PinnedBuffer<float> bias_staging;                // (M, E)

  // the last batch: device ints (tokens | targets | pos | seg), each (N); per-token loss weights (N)
  int64_t B = 0, T_len = 0, N = 0, num_targets = 0;
  bool has_seg = false;
  bool has_forward = false;
  std::vector<int32_t> targets_host;               // (N)
  cuda::DeviceBuffer<int32_t> batch_ints;          // (4 N)
  cuda::DeviceBuffer<float> dloss;                 // (N)
  PinnedBuffer<int32_t> staging_ints;              // (4 N)
  PinnedBuffer<float> staging_dloss;               // (N)

  // forward outputs: loss (N) | aux (M) | load (M, E); copied to the pinned mirror when first read
  cuda::DeviceBuffer<float> outputs;
  PinnedBuffer<float> outputs_host;
  bool outputs_on_host = false;
  double last_loss = 0, last_aux = 0;

  cuda::DeviceBuffer<float> norm_sq;               // (1) grad_norm's accumulator
  PinnedBuffer<float> norm_sq_host;                // (1)

  std::unique_ptr<CudaPass> pass;

  Step3CudaState(const Step3Config& c, ModelOptions o, CudaComputeType t);
  ~Step3CudaState();

  int64_t num_moe() const { return static_cast<int64_t>(moe_layers.size()); }
  const int32_t* tokens() const { return batch_ints.data(); }
  const int32_t* targets() const { return batch_ints.data() + N; }
  const int32_t* pos() const { return batch_ints.data() + 2 * N; }
  const int32_t* seg() const { return has_seg ? batch_ints.data() + 3 * N : nullptr; }
  float* token_loss() { return outputs.data(); }                                   // (N)
  float* aux_slot(int64_t m) { return outputs.data() + N + m; }                   // (1)
  float* load_slot(int64_t m) { return outputs.data() + N + num_moe() + m * cfg.moe_num_experts; }   // (E)
  const float* bias_of(int64_t m) const { return bias.data() + m * cfg.moe_num_experts; }             // (E)

  void resize_batch(int64_t B, int64_t T);         // (re)allocates the batch and output buffers when N changes
  void fetch_outputs();                            // outputs -> host (waits); fills last_loss, last_aux, load_host
  void wait_staging();                             // the pinned staging buffers may be rewritten after this
  void upload_bias();                              // bias <- bias_host, in stream order, without waiting
  // Copies on the model's stream after everything enqueued before, and waits (the host side may be reused after).
  void upload(void* dst, const void* src, size_t bytes);
  void download(void* dst, const void* src, size_t bytes);
};

}  // namespace stepwise
