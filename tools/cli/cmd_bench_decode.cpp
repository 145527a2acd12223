// `stepwise bench decode --model DIR [--batch 1,4,16] [--micro-batches 1,3] [--prompt N] [--gen N]`: decoding
// throughput (generated tokens/s) and TPOT percentiles of the serving engine vs batch size, with and without
// micro-batch pipelining, plus the SGEMM rate the run got. Registered under `bench` by the CLI's main.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/blas.h"
#include "core/error.h"
#include "serve/decode_bench.h"

namespace stepwise::cli {

void register_bench_decode_command(CLI::App& bench) {
  CLI::App* cmd = bench.add_subcommand("decode", "decode tokens/s and TPOT vs batch size and micro-batches");
  auto o = std::make_shared<DecodeBenchOptions>();
  auto model = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "checkpoint directory")->required();
  cmd->add_option("--batch", o->batch_sizes, "batch sizes (comma-separated)")->delimiter(',');
  cmd->add_option("--micro-batches", o->micro_batches, "micro-batch counts (comma-separated)")->delimiter(',');
  cmd->add_option("--prompt", o->prompt_tokens, "prompt tokens per request (default 32)");
  cmd->add_option("--gen", o->gen_tokens, "generated tokens per request (default 32)");
  cmd->add_option("--transport", o->engine.transport, "inproc (AFD over threads) or local (no AFD)");
  cmd->add_option("--ffn-workers", o->engine.ffn_workers, "FFN worker threads (default 1)");
  cmd->callback([o, model] {
    o->engine.model_dir = *model;
    if (o->engine.max_model_len == 0) o->engine.max_model_len = o->prompt_tokens + o->gen_tokens;
    const std::vector<DecodeBenchRow> rows = run_decode_bench(*o);
    std::printf("model %s, transport %s, prompt %lld, gen %lld, BLAS %s at %.1f GFLOP/s SGEMM\n", model->c_str(),
                o->engine.transport.c_str(), static_cast<long long>(o->prompt_tokens),
                static_cast<long long>(o->gen_tokens), blas_core_name().c_str(), measure_sgemm_gflops(512, 3));
    std::printf("%6s %6s %10s %12s %10s %10s %10s %10s %10s %10s\n", "batch", "mb", "seconds", "tokens/s",
                "tpot_p50", "tpot_p90", "tpot_p99", "ttft_p50", "attn_wait", "ffn_wait");
    for (const DecodeBenchRow& r : rows)
      std::printf("%6lld %6lld %10.3f %12.1f %9.2fms %9.2fms %9.2fms %9.2fms %9.3fs %9.3fs\n",
                  static_cast<long long>(r.batch), static_cast<long long>(r.micro_batches), r.seconds,
                  r.tokens_per_second, r.tpot_p50 * 1e3, r.tpot_p90 * 1e3, r.tpot_p99 * 1e3, r.ttft_p50 * 1e3,
                  r.attn_wait_seconds, r.ffn_wait_seconds);
  });
}

}  // namespace stepwise::cli
