// Step3CudaModel: device arenas in ParamTable<float> layout, batch upload through pinned staging, the output buffer
// read back once per forward, gradient norm, clipping and AdamW over runs of tensors, MoE balancing mirrors.
// The layers themselves are in step3_cuda_pass.cpp.
#include "model/cuda/step3_cuda_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "cuda/optim.h"
#include "model/cuda/cuda_model_state.h"

namespace stepwise {

// ---------------------------------------------------------------- state

Step3CudaState::Step3CudaState(const Step3Config& c, ModelOptions o, CudaComputeType t)
    : cfg(c), opts(o), type(t), specs(step3_param_specs(c, false)) {
  cfg.validate("model config");
  if (o.score_head) fail("Step3CudaModel: score heads (reward models) train on the CPU only");
  if (cuda::device_count() == 0) fail("Step3CudaModel: no CUDA device available");
  arena = param_arena_size(specs);
  moe_layers = cfg.moe_layers();
  STEPWISE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  STEPWISE_CUDA_CHECK(cudaEventCreateWithFlags(&staging_free, cudaEventDisableTiming));
  master = cuda::DeviceBuffer<float>(arena);
  grad = cuda::DeviceBuffer<float>(arena);
  exp_avg = cuda::DeviceBuffer<float>(arena);
  exp_avg_sq = cuda::DeviceBuffer<float>(arena);
  if (t == CudaComputeType::bf16) weights_bf16 = cuda::DeviceBuffer<cuda::bf16>(arena);
  const size_t bytes = sizeof(float) * static_cast<size_t>(arena);
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(master.data(), 0, bytes, stream));
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(grad.data(), 0, bytes, stream));
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(exp_avg.data(), 0, bytes, stream));
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(exp_avg_sq.data(), 0, bytes, stream));
  const int64_t E = cfg.moe_num_experts;
  bias_host.assign(moe_layers.size(), std::vector<float>(static_cast<size_t>(E), 0.0f));
  load_host.assign(moe_layers.size(), std::vector<double>(static_cast<size_t>(E), 0.0));
  bias = cuda::DeviceBuffer<float>(std::max<int64_t>(1, num_moe() * E));
  bias_staging = PinnedBuffer<float>(std::max<int64_t>(1, num_moe() * E));
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(bias.data(), 0, sizeof(float) * static_cast<size_t>(bias.size()), stream));
  norm_sq = cuda::DeviceBuffer<float>(1);
  norm_sq_host = PinnedBuffer<float>(1);
  pass = make_cuda_pass(*this);
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

Step3CudaState::~Step3CudaState() {
  pass.reset();
  if (stream) cudaStreamSynchronize(stream);
  if (staging_free) cudaEventDestroy(staging_free);
  if (stream) cudaStreamDestroy(stream);
}

void Step3CudaState::resize_batch(int64_t b, int64_t t) {
  const int64_t n = b * t;
  B = b;
  T_len = t;
  if (n == N && batch_ints.size() > 0) return;
  wait_staging();
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));   // old buffers may still be in use by enqueued work
  N = n;
  batch_ints = cuda::DeviceBuffer<int32_t>(4 * n);
  dloss = cuda::DeviceBuffer<float>(n);
  staging_ints = PinnedBuffer<int32_t>(4 * n);
  staging_dloss = PinnedBuffer<float>(n);
  const int64_t out_count = n + num_moe() + num_moe() * cfg.moe_num_experts;
  outputs = cuda::DeviceBuffer<float>(out_count);
  outputs_host = PinnedBuffer<float>(out_count);
  targets_host.assign(static_cast<size_t>(n), 0);
}

void Step3CudaState::upload(void* dst, const void* src, size_t bytes) {
  if (bytes) STEPWISE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void Step3CudaState::download(void* dst, const void* src, size_t bytes) {
  if (bytes) STEPWISE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void Step3CudaState::upload_bias() {
  wait_staging();
  const int64_t E = cfg.moe_num_experts;
  for (int64_t m = 0; m < num_moe(); ++m)
    std::copy(bias_host[static_cast<size_t>(m)].begin(), bias_host[static_cast<size_t>(m)].end(),
              bias_staging.data() + m * E);
  const size_t bytes = sizeof(float) * static_cast<size_t>(num_moe() * E);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(bias.data(), bias_staging.data(), bytes, cudaMemcpyHostToDevice, stream));
  STEPWISE_CUDA_CHECK(cudaEventRecord(staging_free, stream));
}

void Step3CudaState::wait_staging() { STEPWISE_CUDA_CHECK(cudaEventSynchronize(staging_free)); }

void Step3CudaState::fetch_outputs() {
  if (!has_forward) fail("Step3CudaModel: no forward has run");
  if (outputs_on_host) return;
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(outputs_host.data(), outputs.data(),
                                      sizeof(float) * static_cast<size_t>(outputs.size()), cudaMemcpyDeviceToHost,
                                      stream));
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));
  const float* h = outputs_host.data();
  double total = 0;   // summed in double in token order, as Step3Model::forward
  for (int64_t i = 0; i < N; ++i)
    if (targets_host[static_cast<size_t>(i)] != -100) total += static_cast<double>(h[i]);
  last_loss = num_targets > 0 ? total / static_cast<double>(num_targets) : 0.0;
  last_aux = 0;
  const int64_t E = cfg.moe_num_experts;
  for (int64_t m = 0; m < num_moe(); ++m) {
    last_aux += static_cast<double>(h[N + m]);
    for (int64_t e = 0; e < E; ++e)
      load_host[static_cast<size_t>(m)][static_cast<size_t>(e)] = static_cast<double>(h[N + num_moe() + m * E + e]);
  }
  outputs_on_host = true;
}

// ---------------------------------------------------------------- Step3CudaModel

Step3CudaModel::Step3CudaModel(const Step3Config& cfg, ModelOptions opts, CudaComputeType type)
    : s_(std::make_unique<Step3CudaState>(cfg, opts, type)) {}

Step3CudaModel::~Step3CudaModel() = default;

const Step3Config& Step3CudaModel::config() const { return s_->cfg; }
const std::vector<ParamSpec>& Step3CudaModel::specs() const { return s_->specs; }
int64_t Step3CudaModel::arena_size() const { return s_->arena; }
CudaComputeType Step3CudaModel::compute_type() const { return s_->type; }
ModelOptions& Step3CudaModel::options() { return s_->opts; }
int64_t Step3CudaModel::optimizer_steps() const { return s_->adam_steps; }
const std::vector<int64_t>& Step3CudaModel::moe_layers() const { return s_->moe_layers; }
void Step3CudaModel::synchronize() const { STEPWISE_CUDA_CHECK(cudaStreamSynchronize(s_->stream)); }

static void check_layout(const ParamTable<float>& host, const Step3CudaState& s, const char* what) {
  if (host.arena_size() != s.arena || host.specs().size() != s.specs.size())
    fail("Step3CudaModel::", what, ": the host table (", host.arena_size(), " elements) does not have the device ",
         "model's layout (", s.arena, " elements)");
}

void Step3CudaModel::upload_params(const ParamTable<float>& host) {
  check_layout(host, *s_, "upload_params");
  s_->upload(s_->master.data(), host.data(), sizeof(float) * static_cast<size_t>(s_->arena));
  if (s_->type == CudaComputeType::bf16)
    cuda::convert(s_->master.data(), s_->weights_bf16.data(), s_->arena, s_->stream);
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(s_->stream));
}

void Step3CudaModel::download_params(ParamTable<float>& host) const {
  check_layout(host, *s_, "download_params");
  s_->download(host.data(), s_->master.data(), sizeof(float) * static_cast<size_t>(s_->arena));
}

void Step3CudaModel::download_grads(ParamTable<float>& host) const {
  check_layout(host, *s_, "download_grads");
  if (!host.has_grad()) fail("Step3CudaModel::download_grads: the host table has no gradient arena");
  s_->download(host.grad_data(), s_->grad.data(), sizeof(float) * static_cast<size_t>(s_->arena));
}

void Step3CudaModel::upload_optimizer_state(const float* exp_avg, const float* exp_avg_sq, int64_t steps) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(s_->arena);
  s_->upload(s_->exp_avg.data(), exp_avg, bytes);
  s_->upload(s_->exp_avg_sq.data(), exp_avg_sq, bytes);
  s_->adam_steps = steps;
}

void Step3CudaModel::download_optimizer_state(float* exp_avg, float* exp_avg_sq) const {
  const size_t bytes = sizeof(float) * static_cast<size_t>(s_->arena);
  s_->download(exp_avg, s_->exp_avg.data(), bytes);
  s_->download(exp_avg_sq, s_->exp_avg_sq.data(), bytes);
}

void Step3CudaModel::zero_grad() {
  STEPWISE_CUDA_CHECK(
      cudaMemsetAsync(s_->grad.data(), 0, sizeof(float) * static_cast<size_t>(s_->arena), s_->stream));
}

void Step3CudaModel::forward(const TrainBatch& batch) {
  Step3CudaState& s = *s_;
  if (batch.B <= 0 || batch.T <= 0 || !batch.tokens || !batch.targets || !batch.pos)
    fail("Step3CudaModel::forward: batch needs B, T > 0 and tokens, targets, pos");
  const int64_t N = batch.B * batch.T, V = s.cfg.vocab_size;
  for (int64_t i = 0; i < N; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= V)
      fail("tokens[", i, "] = ", batch.tokens[i], " is outside the vocabulary [0, ", V, ")");
    if (batch.targets[i] != -100 && (batch.targets[i] < 0 || batch.targets[i] >= V))
      fail("targets[", i, "] = ", batch.targets[i], " is outside the vocabulary [0, ", V, ") and is not -100");
    if (batch.pos[i] < 0) fail("pos[", i, "] = ", batch.pos[i], " is negative");
  }
  s.resize_batch(batch.B, batch.T);
  s.wait_staging();
  const size_t n = static_cast<size_t>(N);
  int32_t* st = s.staging_ints.data();
  std::memcpy(st, batch.tokens, sizeof(int32_t) * n);
  std::memcpy(st + N, batch.targets, sizeof(int32_t) * n);
  std::memcpy(st + 2 * N, batch.pos, sizeof(int32_t) * n);
  s.has_seg = batch.seg != nullptr;
  if (s.has_seg) std::memcpy(st + 3 * N, batch.seg, sizeof(int32_t) * n);
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(s.batch_ints.data(), st, sizeof(int32_t) * n * (s.has_seg ? 4 : 3),
                                      cudaMemcpyHostToDevice, s.stream));
  STEPWISE_CUDA_CHECK(cudaEventRecord(s.staging_free, s.stream));
  std::memcpy(s.targets_host.data(), batch.targets, sizeof(int32_t) * n);
  s.num_targets = 0;
  for (int64_t i = 0; i < N; ++i) s.num_targets += batch.targets[i] != -100;

  s.outputs_on_host = false;
  STEPWISE_CUDA_CHECK(
      cudaMemsetAsync(s.outputs.data(), 0, sizeof(float) * static_cast<size_t>(s.outputs.size()), s.stream));
  s.pass->forward(s);
  s.has_forward = true;
}

int64_t Step3CudaModel::num_target_tokens() const { return s_->num_targets; }

double Step3CudaModel::loss() {
  s_->fetch_outputs();
  return s_->last_loss;
}

double Step3CudaModel::aux_loss() {
  if (!s_->has_forward) return 0;
  s_->fetch_outputs();
  return s_->last_aux;
}

void Step3CudaModel::backward(double weight_per_target, double aux_weight) {
  Step3CudaState& s = *s_;
  if (!s.has_forward) fail("Step3CudaModel::backward called without a forward");
  s.wait_staging();
  const float w = static_cast<float>(weight_per_target);
  float* st = s.staging_dloss.data();
  for (int64_t i = 0; i < s.N; ++i) st[i] = s.targets_host[static_cast<size_t>(i)] != -100 ? w : 0.0f;
  STEPWISE_CUDA_CHECK(cudaMemcpyAsync(s.dloss.data(), st, sizeof(float) * static_cast<size_t>(s.N),
                                      cudaMemcpyHostToDevice, s.stream));
  STEPWISE_CUDA_CHECK(cudaEventRecord(s.staging_free, s.stream));
  s.pass->backward(s, aux_weight);
}

void Step3CudaModel::backward_mean() {
  backward(s_->num_targets > 0 ? 1.0 / static_cast<double>(s_->num_targets) : 0.0, 1.0);
}

double Step3CudaModel::grad_norm() {
  Step3CudaState& s = *s_;
  STEPWISE_CUDA_CHECK(cudaMemsetAsync(s.norm_sq.data(), 0, sizeof(float), s.stream));
  cuda::sum_squares(s.grad.data(), s.arena, s.norm_sq.data(), s.stream);
  STEPWISE_CUDA_CHECK(
      cudaMemcpyAsync(s.norm_sq_host.data(), s.norm_sq.data(), sizeof(float), cudaMemcpyDeviceToHost, s.stream));
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  return std::sqrt(static_cast<double>(s.norm_sq_host.data()[0]));
}

void Step3CudaModel::optimizer_step(const CudaAdamWConfig& hyper, double lr, double max_norm, double grad_norm) {
  Step3CudaState& s = *s_;
  if (max_norm > 0 && grad_norm > max_norm)
    cuda::scale_inplace(s.grad.data(), s.arena, static_cast<float>(max_norm / grad_norm), s.stream);
  ++s.adam_steps;
  // One launch per run of consecutive tensors with the same weight-decay flag. The padding between tensors is
  // zero in every arena and stays zero under AdamW (m = v = g = p = 0 gives a zero update).
  size_t first = 0;
  while (first < s.specs.size()) {
    size_t last = first;
    while (last + 1 < s.specs.size() && s.specs[last + 1].weight_decay == s.specs[first].weight_decay) ++last;
    const int64_t begin = s.specs[first].offset, end = s.specs[last].offset + s.specs[last].count;
    AdamWParams p;
    p.param = s.master.data() + begin;
    p.m = s.exp_avg.data() + begin;
    p.v = s.exp_avg_sq.data() + begin;
    p.grad = s.grad.data() + begin;
    p.n = end - begin;
    p.step = s.adam_steps;
    p.lr = static_cast<float>(lr);
    p.beta1 = static_cast<float>(hyper.beta1);
    p.beta2 = static_cast<float>(hyper.beta2);
    p.eps = static_cast<float>(hyper.eps);
    p.weight_decay = s.specs[first].weight_decay ? static_cast<float>(hyper.weight_decay) : 0.0f;
    cuda::bf16* copy = nullptr;
    if (s.type == CudaComputeType::bf16) copy = s.weights_bf16.data() + begin;
    cuda::adamw_update(p, copy, s.stream);
    first = last + 1;
  }
}

const std::vector<std::vector<double>>& Step3CudaModel::expert_load() {
  if (s_->has_forward) s_->fetch_outputs();
  return s_->load_host;
}

const std::vector<float>& Step3CudaModel::expert_bias(size_t moe_index) const {
  if (moe_index >= s_->bias_host.size())
    fail("expert_bias: MoE layer index ", moe_index, " out of range (", s_->bias_host.size(), " MoE layers)");
  return s_->bias_host[moe_index];
}

void Step3CudaModel::set_expert_bias(size_t moe_index, const std::vector<float>& bias) {
  Step3CudaState& s = *s_;
  if (moe_index >= s.bias_host.size())
    fail("set_expert_bias: MoE layer index ", moe_index, " out of range (", s.bias_host.size(), " MoE layers)");
  if (static_cast<int64_t>(bias.size()) != s.cfg.moe_num_experts)
    fail("set_expert_bias: ", bias.size(), " values for ", s.cfg.moe_num_experts, " experts");
  s.bias_host[moe_index] = bias;
  s.upload_bias();   // in stream order: a forward reading the old bias comes first
}

void Step3CudaModel::update_expert_bias(double rate) {
  Step3CudaState& s = *s_;
  if (s.moe_layers.empty()) return;
  if (s.has_forward) s.fetch_outputs();
  for (size_t m = 0; m < s.bias_host.size(); ++m) {
    std::vector<float>& bias = s.bias_host[m];
    const double mean = 1.0 / static_cast<double>(bias.size());
    for (size_t e = 0; e < bias.size(); ++e) {
      const double diff = mean - s.load_host[m][e];
      const double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
      bias[e] += static_cast<float>(rate * sign);
    }
  }
  s.upload_bias();
}

int64_t Step3CudaModel::device_bytes() const {
  const Step3CudaState& s = *s_;
  int64_t bytes = 4 * s.arena * static_cast<int64_t>(sizeof(float));
  bytes += s.weights_bf16.size() * static_cast<int64_t>(sizeof(cuda::bf16));
  bytes += (s.bias.size() + s.dloss.size() + s.outputs.size() + s.norm_sq.size()) * static_cast<int64_t>(sizeof(float));
  bytes += s.batch_ints.size() * static_cast<int64_t>(sizeof(int32_t));
  return bytes + s.pass->device_bytes();
}

}  // namespace stepwise
