// `stepwise convert --from DIR --to DIR --format serve|hf|train [--dtype bf16|fp8|fp32] [--shard-size 2GB]`:
// rewrites a checkpoint (training, HF or serving layout) in another layout; the work lives in ckpt/convert.h.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "ckpt/convert.h"
#include "cli/commands.h"
#include "core/error.h"

namespace stepwise::cli {

namespace {
struct ConvertArgs {
  std::string from, to, format, dtype, shard_size = "2GB";
  bool overwrite = false;
};
}  // namespace

void register_convert_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("convert", "convert checkpoints: training <-> HF layout, serving (AFD) split");
  auto args = std::make_shared<ConvertArgs>();
  cmd->add_option("--from", args->from, "source checkpoint directory (training, HF or serving layout)")->required();
  cmd->add_option("--to", args->to, "output directory (created atomically)")->required();
  cmd->add_option("--format", args->format, "serve | hf | train")->required();
  cmd->add_option("--dtype", args->dtype, "bf16 | fp8 | fp32 (default: bf16 for serve, fp32 for hf and train)");
  cmd->add_option("--shard-size", args->shard_size, "hf: largest shard, e.g. 2GB, 500MB (default 2GB)");
  cmd->add_flag("--overwrite", args->overwrite, "replace an existing --to directory");
  cmd->callback([args] {
    ConvertOptions options;
    options.format = parse_convert_format(args->format);
    if (!args->dtype.empty()) options.dtype = parse_weight_dtype(args->dtype);
    options.shard_bytes = parse_byte_size(args->shard_size);
    options.overwrite = args->overwrite;
    const auto start = std::chrono::steady_clock::now();
    const ConvertSummary s = convert_checkpoint(args->from, args->to, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    uint64_t total = 0;
    std::printf("converted %s (%s checkpoint) -> %s (%s, %s): %lld tensors in %.2f s\n", args->from.c_str(),
                std::string(checkpoint_layout_name(s.source_layout)).c_str(), args->to.c_str(),
                std::string(convert_format_name(options.format)).c_str(),
                std::string(weight_dtype_name(s.dtype)).c_str(), static_cast<long long>(s.parameters), seconds);
    for (const auto& [path, bytes] : s.weight_files) {
      std::printf("  %-60s %12llu bytes\n", path.string().c_str(), static_cast<unsigned long long>(bytes));
      total += bytes;
    }
    std::printf("  total %llu bytes\n", static_cast<unsigned long long>(total));
  });
}

}  // namespace stepwise::cli
