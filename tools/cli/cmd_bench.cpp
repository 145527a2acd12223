// `stepwise bench train`: training-step throughput of a model config on this machine's CPU, beside the SGEMM rate
// measured in the same run. Each sequence length runs in a forked child so its peak RSS is its own. The ceiling is
// measured in that child: a 1024^3 SGEMM through the kernels' own threading right after every timed step (so a busy
// shared machine slows both alike), and OpenBLAS's own-thread SGEMM after the last step; the higher rate is used.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "cli/cmd_bench_train_cuda.h"
#include "cli/commands.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/strings.h"
#include "model/model_info.h"
#include "model/step3_model.h"
#include "ops.h"
#include "train/optimizer.h"

namespace stepwise::cli {

namespace {

struct BenchResult {
  double step_seconds = 0;      // median over the timed steps
  double kernel_sgemm = 0;      // GFLOP/s, median of the SGEMMs timed right after each step (kernels' threading)
  double openblas_sgemm = 0;    // GFLOP/s, OpenBLAS's own threads, after the last step
  double peak_rss_mib = 0;      // after the warm-up step, before the SGEMM buffers exist
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Multiplies two n x n matrices through the kernels' linear layer (out = x W^T: one SGEMM, threaded the way the
// training step's products are) and returns GFLOP/s.
class KernelSgemmProbe {
 public:
  explicit KernelSgemmProbe(int64_t n) : n_(n), x_(n * n), w_(n * n), out_(n * n) {
    for (int64_t i = 0; i < n * n; ++i) {
      x_[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
      w_[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
  }
  double gflops() {
    LinearParams<float> p;
    p.out = out_.data();
    p.inp = x_.data();
    p.weight = w_.data();
    p.N = p.I = p.O = n_;
    auto t0 = std::chrono::steady_clock::now();
    cpu::linear_forward(p);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return 2.0 * static_cast<double>(n_ * n_) * static_cast<double>(n_) / s / 1e9;
  }

 private:
  int64_t n_;
  std::vector<float> x_, w_, out_;  // (n, n) each
};

// One forward + backward + AdamW step of random tokens (B, T), timed; median of `steps` after one warm-up step.
BenchResult time_training_steps(const Step3Config& cfg, int64_t B, int64_t T, int steps) {
  ModelOptions mopt;
  mopt.aux_loss_coef = 0.01;
  Step3Model<float> model(cfg, mopt);
  model.params().init(1);
  AdamW opt(model.params(), {});
  std::vector<int32_t> tokens(B * T), targets(B * T), pos(B * T), seg(B * T, 0);
  uint64_t x = 88172645463325252ull;
  for (int64_t i = 0; i < B * T; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    tokens[i] = static_cast<int32_t>(x % cfg.vocab_size);
    pos[i] = static_cast<int32_t>(i % T);
  }
  for (int64_t i = 0; i < B * T; ++i) targets[i] = (i % T == T - 1) ? tokens[i - T + 1] : tokens[i + 1];
  TrainBatch batch{tokens.data(), targets.data(), pos.data(), seg.data(), B, T};
  BenchResult r;
  std::unique_ptr<KernelSgemmProbe> probe;
  std::vector<double> times, sgemm_rates;
  for (int s = 0; s <= steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad();
    model.forward(batch);
    model.backward_mean();
    opt.step(model.params(), 1e-4);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s == 0) {  // warm-up: the step's memory is all allocated now
      struct rusage ru {};
      getrusage(RUSAGE_SELF, &ru);
      r.peak_rss_mib = ru.ru_maxrss / 1024.0;
      probe = std::make_unique<KernelSgemmProbe>(1024);
      probe->gflops();  // warm-up
      continue;
    }
    times.push_back(dt);
    sgemm_rates.push_back(probe->gflops());
  }
  r.step_seconds = median(times);
  r.kernel_sgemm = median(sgemm_rates);
  r.openblas_sgemm = measure_sgemm_gflops(1024, 3);
  return r;
}

void bench_train(const std::string& model_path, const std::string& seqs_text, int64_t batch, int steps) {
  Step3Config cfg = Step3Config::load(model_path);
  std::vector<int64_t> seqs;
  for (const std::string& s : split(seqs_text, ',')) seqs.push_back(std::stoll(s));
  std::printf("model %s: BLAS core %s\n", model_path.c_str(), blas_core_name().c_str());
  std::printf("FLOPs/token = 6 x active non-embedding params + 6 x lm_head params + 6 x layers x heads x head_dim x seq\n");
  std::printf("SGEMM 1024^3 ceiling per length: kernels' threading (median, one after each step) and OpenBLAS's own "
              "threads (after the steps); of_gemm divides by the higher\n");
  std::printf("%6s %6s %10s %12s %10s %11s %13s %8s %10s\n", "seq", "batch", "step_ms", "tokens/s", "GFLOP/s",
              "sgemm_kern", "sgemm_openblas", "of_gemm", "peak_MiB");
  for (int64_t T : seqs) {
    int fds[2];
    if (pipe(fds) != 0) fail("bench: pipe failed");
    pid_t pid = fork();
    if (pid < 0) fail("bench: fork failed");
    if (pid == 0) {
      close(fds[0]);
      BenchResult r = time_training_steps(cfg, batch, T, steps);
      ssize_t w = write(fds[1], &r, sizeof r);
      _exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 1);
    }
    close(fds[1]);
    BenchResult r;
    const bool got = read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("bench: the run at seq ", T, " failed");
    const ModelInfo info = compute_model_info(cfg, T);
    const double tokens_per_s = static_cast<double>(batch * T) / r.step_seconds;
    const double gflops = tokens_per_s * info.train_flops_per_token / 1e9;
    const double ceiling = std::max(r.kernel_sgemm, r.openblas_sgemm);
    std::printf("%6lld %6lld %10.1f %12.0f %10.1f %11.1f %13.1f %7.1f%% %10.0f\n", static_cast<long long>(T),
                static_cast<long long>(batch), r.step_seconds * 1e3, tokens_per_s, gflops, r.kernel_sgemm,
                r.openblas_sgemm, 100 * gflops / ceiling, r.peak_rss_mib);
    std::fflush(stdout);
  }
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks that report their own ceilings");
  bench->require_subcommand(1);
  auto* train = bench->add_subcommand("train", "training-step throughput (tokens/s, model FLOP/s vs measured SGEMM)");
  auto model = std::make_shared<std::string>("recipes/models/step3-tiny.yaml");
  auto seqs = std::make_shared<std::string>("256,512,1024,2048");
  auto batch = std::make_shared<int64_t>(1);
  auto steps = std::make_shared<int>(5);
  train->add_option("--model", *model, "model config (YAML or config.json)")->capture_default_str();
  train->add_option("--seqs", *seqs, "comma-separated sequence lengths")->capture_default_str();
  train->add_option("--batch", *batch, "sequences per step")->capture_default_str();
  train->add_option("--steps", *steps, "timed steps per length (median reported)")->capture_default_str();
  auto device = std::make_shared<std::string>("cpu");
  auto dtype = std::make_shared<std::string>();
  train->add_option("--device", *device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  train->add_option("--dtype", *dtype, "bf16 (cuda only; its default) or fp32")->check(CLI::IsMember({"fp32", "bf16"}));
  train->callback([=] {
    if (*device == "cuda") return bench_train_cuda(*model, *seqs, *batch, *steps, dtype->empty() ? "bf16" : *dtype);
    if (*dtype == "bf16") fail("bench train: --dtype bf16 needs --device cuda (the CPU trains in fp32)");
    bench_train(*model, *seqs, *batch, *steps);
  });
  register_bench_decode_command(*bench);
}

}  // namespace stepwise::cli
