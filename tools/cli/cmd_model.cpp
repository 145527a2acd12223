// `stepwise model info CONFIG [--seq N]`: parameters (total, active), training FLOPs/token and KV-cache bytes/token
// of a model config (recipes/models/*.yaml, a config.json, or a checkpoint directory). Allocates no weights.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "model/model_info.h"
#include "model/step3_config.h"

namespace stepwise::cli {

void register_model_commands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "inspect model configurations");
  model->require_subcommand(1);
  CLI::App* info = model->add_subcommand("info", "parameters (total, active), FLOPs/token, KV bytes/token");
  auto config = std::make_shared<std::string>();
  auto seq = std::make_shared<int64_t>(4096);
  info->add_option("CONFIG", *config, "model YAML, config.json or checkpoint directory")->required();
  info->add_option("--seq", *seq, "sequence length for the attention FLOPs term (default 4096)");
  info->callback([config, seq] {
    if (*seq <= 0) fail("--seq must be > 0 (got ", *seq, ")");
    const Step3Config cfg = Step3Config::load(*config);
    std::printf("%s\n%s", config->c_str(), format_model_info(cfg, compute_model_info(cfg, *seq)).c_str());
  });
}

}  // namespace stepwise::cli
