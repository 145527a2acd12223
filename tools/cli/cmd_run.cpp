// `stepwise run PIPELINE.yaml [key=value ...]`: the whole path (tokenizer, training stages, convert, eval, report).
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline.h"

namespace stepwise::cli {

void register_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "run a pipeline: tokenizer -> training stages -> convert -> eval -> report");
  auto file = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("pipeline", *file, "pipeline YAML, e.g. recipes/medical/pipeline.yaml")->required();
  cmd->add_option("overrides", *overrides,
                  "key=value: top-level (output_dir=..., eval.limit=...) or <stage>.<recipe key>=value");
  cmd->callback([file, overrides] {
    const fs::path report = run_pipeline(load_pipeline(*file, *overrides));
    std::printf("report: %s (chart: %s)\n", report.c_str(), (report.parent_path() / "report.svg").c_str());
  });
}

}  // namespace stepwise::cli
