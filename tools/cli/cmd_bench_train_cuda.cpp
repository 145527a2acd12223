// `stepwise bench train --device cuda [--dtype bf16|fp32]`: training-step throughput of Step3CudaModel (bf16
// activations with fp32 master weights and AdamW, or all fp32) beside the bf16 GEMM rate cuBLASLt reaches in the same
// run (8192^3), the ratio being model FLOPs utilisation (GPU.md target: >= 45% on step3-mini, seq 2048, batch 8).
#include "cli/cmd_bench_train_cuda.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/strings.h"
#include "model/model_info.h"
#include "model/step3_config.h"

#ifdef STEPWISE_HAS_CUDA
#include <cuda_runtime_api.h>

#include "cuda/device.h"
#include "cuda/gemm.h"
#include "model/cuda/step3_cuda_model.h"
#endif

namespace stepwise::cli {

#ifdef STEPWISE_HAS_CUDA
namespace {

// bf16 GEMM TFLOP/s of C (n, n) = A (n, n) B^T, bf16 in and out, fp32 accumulate: median of `repeats` timed runs.
double measure_bf16_gemm_tflops(int64_t n, int repeats) {
  std::vector<cuda::bf16> host(static_cast<size_t>(n * n));
  uint32_t x = 2463534242u;
  for (auto& v : host) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = __float2bfloat16(static_cast<float>(x % 2001) / 1000.0f - 1.0f);
  }
  cuda::DeviceBuffer<cuda::bf16> a(host), b(host), c(n * n);
  cudaStream_t stream = nullptr;
  STEPWISE_CUDA_CHECK(cudaStreamCreate(&stream));
  cudaEvent_t start = nullptr, stop = nullptr;
  STEPWISE_CUDA_CHECK(cudaEventCreate(&start));
  STEPWISE_CUDA_CHECK(cudaEventCreate(&stop));
  cuda::GemmArgs g;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  g.ab_type = cuda::GemmType::bf16, g.c_type = cuda::GemmType::bf16;
  g.trans_b = true;
  g.M = n, g.N = n, g.K = n;
  for (int i = 0; i < 3; ++i) cuda::gemm(g, stream);   // plan + clocks up
  std::vector<double> tflops;
  for (int r = 0; r < repeats; ++r) {
    const int inner = 10;
    STEPWISE_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < inner; ++i) cuda::gemm(g, stream);
    STEPWISE_CUDA_CHECK(cudaEventRecord(stop, stream));
    STEPWISE_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    STEPWISE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    tflops.push_back(2.0 * double(n) * double(n) * double(n) * inner / (ms * 1e-3) / 1e12);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  std::sort(tflops.begin(), tflops.end());
  return tflops[tflops.size() / 2];
}

int64_t device_bytes_in_use() {
  size_t free_bytes = 0, total_bytes = 0;
  STEPWISE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(total_bytes - free_bytes);
}

// Random tokens (B, T) with next-token targets and positions 0..T-1, as the CPU benchmark draws them.
struct RandomBatch {
  std::vector<int32_t> tokens, targets, pos;
  RandomBatch(int64_t B, int64_t T, int64_t vocab)
      : tokens(static_cast<size_t>(B * T)), targets(static_cast<size_t>(B * T)), pos(static_cast<size_t>(B * T)) {
    uint64_t x = 88172645463325252ull;
    for (int64_t i = 0; i < B * T; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      tokens[static_cast<size_t>(i)] = static_cast<int32_t>(x % static_cast<uint64_t>(vocab));
      pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
    }
    for (int64_t i = 0; i < B * T; ++i)
      targets[static_cast<size_t>(i)] = tokens[static_cast<size_t>(i % T == T - 1 ? i - T + 1 : i + 1)];
  }
};

// Median seconds of one zero_grad + forward + backward + grad norm + AdamW step, after two warm-up steps.
double time_cuda_steps(Step3CudaModel& model, int64_t B, int64_t T, int steps) {
  const RandomBatch rb(B, T, model.config().vocab_size);
  const TrainBatch batch{rb.tokens.data(), rb.targets.data(), rb.pos.data(), nullptr, B, T};
  const CudaAdamWConfig hyper;
  std::vector<double> times;
  for (int s = 0; s < steps + 2; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    model.forward(batch);
    model.backward_mean();
    const double norm = model.grad_norm();
    model.optimizer_step(hyper, 1e-4, 1.0, norm);
    const double loss = model.loss();
    model.synchronize();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!(loss == loss)) fail("bench train: non-finite loss at seq ", T);
    if (s >= 2) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace
#endif

void bench_train_cuda(const std::string& model_path, const std::string& seqs_text, int64_t batch, int steps,
                      const std::string& dtype) {
#ifndef STEPWISE_HAS_CUDA
  (void)model_path, (void)seqs_text, (void)batch, (void)steps, (void)dtype;
  fail("bench train --device cuda: this build has no CUDA backend (configure with -DSTEPWISE_CUDA=ON)");
#else
  if (dtype != "bf16" && dtype != "fp32") fail("bench train: --dtype '", dtype, "': expected bf16 or fp32");
  if (cuda::device_count() == 0) fail("bench train --device cuda: no CUDA device available");
  if (steps < 1) fail("bench train: --steps must be at least 1");
  const Step3Config cfg = Step3Config::load(model_path);
  std::vector<int64_t> seqs;
  for (const std::string& s : split(seqs_text, ',')) seqs.push_back(std::stoll(s));
  const double gemm_tflops = measure_bf16_gemm_tflops(8192, 5);
  std::printf("model %s on CUDA, %s activations, fp32 master weights + AdamW; measured bf16 GEMM %.1f TFLOP/s "
              "(8192^3, cuBLASLt, median of 5)\n", model_path.c_str(), dtype.c_str(), gemm_tflops);
  std::printf("FLOPs/token = 6 x active non-embedding params + 6 x lm_head params + 6 x layers x heads x head_dim x "
              "seq; target (GPU.md): model FLOP/s >= 45%% of the bf16 GEMM rate\n");
  const int64_t baseline = device_bytes_in_use();
  ModelOptions mopt;
  mopt.aux_loss_coef = 0.01;
  Step3CudaModel model(cfg, mopt, dtype == "bf16" ? CudaComputeType::bf16 : CudaComputeType::fp32);
  {
    ParamTable<float> host(cfg, false);
    host.init(1);
    model.upload_params(host);
  }
  std::printf("%6s %6s %10s %12s %10s %8s %10s %10s\n", "seq", "batch", "step_ms", "tokens/s", "TFLOP/s", "of_gemm",
              "model_MiB", "device_MiB");
  for (int64_t T : seqs) {
    const double secs = time_cuda_steps(model, batch, T, steps);
    const ModelInfo info = compute_model_info(cfg, T);
    const double tokens_per_s = static_cast<double>(batch * T) / secs;
    const double tflops = tokens_per_s * info.train_flops_per_token / 1e12;
    // Arenas are allocated once per shape and never freed inside a step, so what is in use now is the peak.
    std::printf("%6lld %6lld %10.1f %12.0f %10.1f %7.1f%% %10.0f %10.0f\n", static_cast<long long>(T),
                static_cast<long long>(batch), secs * 1e3, tokens_per_s, tflops, 100 * tflops / gemm_tflops,
                static_cast<double>(model.device_bytes()) / (1 << 20),
                static_cast<double>(device_bytes_in_use() - baseline) / (1 << 20));
  }
#endif
}

}  // namespace stepwise::cli
