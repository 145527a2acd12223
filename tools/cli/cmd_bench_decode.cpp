// `stepwise bench decode [--model DIR|CONFIG] [--device cpu|cuda] [--dtype bf16|fp32] [--batch 1,4,16]
// [--micro-batches 1,3] [--prompt N] [--gen N]`: decoding throughput (generated tokens/s) and TPOT percentiles of the
// serving engine vs batch size, with and without micro-batch pipelining (CPU), plus the SGEMM rate the run got. A
// model config instead of a checkpoint runs random weights. --device cuda defaults to step3-mini (random weights),
// 512-token prompts and batches 1..256 (GPU.md) and also prints each TPOT against the step's memory roofline (the
// bytes a step must read over the device copy rate measured in the same run; target: within 3x). Registered under
// `bench` by the CLI's main.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/fs.h"
#include "serve/decode_bench.h"
#include "serve/model_loader.h"

#ifdef STEPWISE_HAS_CUDA
#include "cli/bench_kernels.h"
#endif

namespace stepwise::cli {

namespace {

constexpr const char* kDefaultGpuModel = "recipes/models/step3-mini.yaml";

// Fills what the user left unset: the GPU defaults of GPU.md's decode target, or the CPU ones.
void apply_defaults(DecodeBenchOptions& o, const std::string& model, bool prompt_set, bool gen_set) {
  const bool gpu = o.engine.device == "cuda";
  if (model.empty() && !gpu) fail("bench decode: --model is required (a checkpoint directory or a model config)");
  if (model.empty() && !fs::exists(kDefaultGpuModel))
    fail("bench decode --device cuda: the default model ", kDefaultGpuModel, " is not here: run from the ",
         "repository root or pass --model");
  o.engine.model_dir = model.empty() ? kDefaultGpuModel : model;
  if (gpu) {
    if (o.batch_sizes.empty()) o.batch_sizes = {1, 16, 64, 256};
    if (o.micro_batches.empty()) o.micro_batches = {1};   // one GPU step: no AFD ping-pong
    if (!prompt_set) o.prompt_tokens = 512;
    if (!gen_set) o.gen_tokens = 32;
  } else {
    if (o.batch_sizes.empty()) o.batch_sizes = {1, 4, 16};
    if (o.micro_batches.empty()) o.micro_batches = {1, 3};
  }
  if (o.engine.max_model_len == 0) o.engine.max_model_len = o.prompt_tokens + o.gen_tokens;
}

// GPU.md's decode target: TPOT (p50) over the memory roofline of the step at the mean decode context, with the copy
// rate measured now. Needs the CUDA build (the caller checked the device).
void print_gpu_roofline(const DecodeBenchOptions& o, const std::vector<DecodeBenchRow>& rows) {
#ifdef STEPWISE_HAS_CUDA
  const Measurement copy = measure_copy_ceiling(int64_t{1} << 30);
  if (!copy.ok()) fail("bench decode: the copy ceiling failed: ", copy.error);
  const Step3Config cfg = o.engine.model->model->config();
  const int64_t element_bytes = o.engine.dtype == "bf16" ? 2 : 4;
  const int64_t context = o.prompt_tokens + o.gen_tokens / 2;
  std::printf("\nGPU.md decode target: TPOT within 3x of the memory roofline (step bytes / copy rate %.0f GB/s, "
              "context %lld, uniform routing)\n",
              copy.rate() / 1e9, static_cast<long long>(context));
  std::printf("%6s %12s %12s %10s %8s\n", "batch", "roofline_ms", "tpot_p50", "ratio", "met");
  for (const DecodeBenchRow& r : rows) {
    const double roofline = decode_step_roofline_bytes(cfg, r.batch, context, element_bytes) / copy.rate();
    const double ratio = r.tpot_p50 / roofline;
    std::printf("%6lld %10.3fms %10.3fms %9.2fx %8s\n", static_cast<long long>(r.batch), roofline * 1e3,
                r.tpot_p50 * 1e3, ratio, ratio <= 3.0 ? "yes" : "no");
  }
#else
  (void)o, (void)rows;
#endif
}

}  // namespace

void register_bench_decode_command(CLI::App& bench) {
  CLI::App* cmd = bench.add_subcommand("decode", "decode tokens/s and TPOT vs batch size and micro-batches");
  auto o = std::make_shared<DecodeBenchOptions>();
  o->batch_sizes.clear();
  o->micro_batches.clear();
  auto model = std::make_shared<std::string>();
  cmd->add_option("--model", *model,
                  "checkpoint directory, or a model config (YAML / config.json: random weights); default with "
                  "--device cuda: recipes/models/step3-mini.yaml");
  cmd->add_option("--device", o->engine.device, "cpu (default) or cuda (the whole step on one GPU)");
  cmd->add_option("--dtype", o->engine.dtype, "--device cuda: bf16 (default) or fp32");
  cmd->add_option("--batch", o->batch_sizes, "batch sizes (comma-separated; default 1,4,16, cuda 1,16,64,256)")
      ->delimiter(',');
  cmd->add_option("--micro-batches", o->micro_batches, "micro-batch counts (comma-separated; default 1,3, cuda 1)")
      ->delimiter(',');
  auto* prompt = cmd->add_option("--prompt", o->prompt_tokens, "prompt tokens per request (default 32, cuda 512)");
  auto* gen = cmd->add_option("--gen", o->gen_tokens, "generated tokens per request (default 32)");
  cmd->add_option("--transport", o->engine.transport, "inproc (AFD over threads) or local (no AFD); CPU only");
  cmd->add_option("--ffn-workers", o->engine.ffn_workers, "FFN worker threads (default 1); CPU only");
  cmd->callback([o, model, prompt, gen] {
    apply_defaults(*o, *model, prompt->count() > 0, gen->count() > 0);
    if (o->engine.device == "cuda") Engine::check_cuda_available();   // before the (long) model load
    o->engine.model = load_bench_model(o->engine.model_dir);   // once for every engine of the run
    const std::vector<DecodeBenchRow> rows = run_decode_bench(*o);
    const std::string path = o->engine.model_dir.string();
    if (o->engine.device == "cuda")
      std::printf("model %s, device cuda (%s), prompt %lld, gen %lld\n", path.c_str(), o->engine.dtype.c_str(),
                  static_cast<long long>(o->prompt_tokens), static_cast<long long>(o->gen_tokens));
    else
      std::printf("model %s, transport %s, prompt %lld, gen %lld, BLAS %s at %.1f GFLOP/s SGEMM\n", path.c_str(),
                  o->engine.transport.c_str(), static_cast<long long>(o->prompt_tokens),
                  static_cast<long long>(o->gen_tokens), blas_core_name().c_str(), measure_sgemm_gflops(512, 3));
    std::printf("%6s %6s %10s %12s %10s %10s %10s %10s %10s %10s\n", "batch", "mb", "seconds", "tokens/s",
                "tpot_p50", "tpot_p90", "tpot_p99", "ttft_p50", "attn_wait", "ffn_wait");
    for (const DecodeBenchRow& r : rows)
      std::printf("%6lld %6lld %10.3f %12.1f %9.2fms %9.2fms %9.2fms %9.2fms %9.3fs %9.3fs\n",
                  static_cast<long long>(r.batch), static_cast<long long>(r.micro_batches), r.seconds,
                  r.tokens_per_second, r.tpot_p50 * 1e3, r.tpot_p90 * 1e3, r.tpot_p99 * 1e3, r.ttft_p50 * 1e3,
                  r.attn_wait_seconds, r.ffn_wait_seconds);
    if (o->engine.device == "cuda") print_gpu_roofline(*o, rows);
  });
}

}  // namespace stepwise::cli
