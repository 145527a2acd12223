// Subcommands of training: `stepwise plot` (loss and lr curves of a metrics.jsonl as SVG).
#include <memory>

#include "cli/commands.h"
#include "core/fs.h"
#include "core/log.h"
#include "train/metrics.h"

namespace stepwise::cli {

namespace {
void register_plot(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "draw loss and learning-rate curves of a metrics.jsonl to SVG");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("metrics", *in, "metrics.jsonl of a run")->required();
  cmd->add_option("--out", *out, "output SVG file")->required();
  cmd->callback([in, out] {
    auto records = read_metrics(*in);
    const std::string title = fs::path(*in).parent_path().filename().string();
    write_file_atomic(*out, plot_metrics_svg(records, title.empty() ? "run" : title));
    log_info("wrote ", *out, " (", records.size(), " records)");
  });
}
}  // namespace

void register_train_commands(CLI::App& app) { register_plot(app); }

}  // namespace stepwise::cli
