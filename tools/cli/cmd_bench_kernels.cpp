// `stepwise bench kernels`: the CUDA kernels against the GPU.md targets, each as a ratio to a ceiling measured in
// the same run (bf16 GEMM rate, device-to-device copy bandwidth). Builds without the CUDA backend register the
// command but refuse to run it with a clear error.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#ifdef STEPWISE_HAS_CUDA
#include "cli/bench_kernels.h"
#endif

namespace stepwise::cli {

void register_bench_kernels_command(CLI::App& bench) {
  CLI::App* cmd = bench.add_subcommand(
      "kernels", "CUDA kernels vs the GPU.md targets, as ratios to the GEMM rate and copy bandwidth of the same run");
  auto quick = std::make_shared<bool>(false);
  auto json = std::make_shared<std::string>();
  cmd->add_flag("--quick", *quick, "smaller sizes for a fast smoke run (ceilings keep their reference sizes)");
  cmd->add_option("--json", *json, "also write every measurement to this JSON file");
  cmd->callback([quick, json] {
#ifdef STEPWISE_HAS_CUDA
    KernelBenchOptions options;
    options.quick = *quick;
    options.json_path = *json;
    run_kernel_benchmarks(options);
#else
    (void)quick, (void)json;
    fail("bench kernels: this build has no CUDA backend (configure with -DSTEPWISE_CUDA=ON)");
#endif
  });
}

}  // namespace stepwise::cli
