// Subcommands of training: `stepwise train RECIPE [key=value ...]` and `stepwise plot` (loss and lr curves of a
// metrics.jsonl as SVG).
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "core/fs.h"
#include "core/log.h"
#include "train/metrics.h"
#include "train/trainer.h"

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

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "run one training stage from a recipe (pretrain | sft | dpo | rm)");
  auto recipe = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("recipe", *recipe, "recipe YAML, e.g. recipes/medical/pretrain.yaml")->required();
  cmd->add_option("overrides", *overrides, "key=value overrides with dotted keys, e.g. train.lr=1e-3 resume=auto");
  cmd->callback([recipe, overrides] {
    RecipeConfig r = load_recipe(*recipe, *overrides);
    TrainSummary s = run_training(r);
    std::printf("%s: steps %lld..%lld in %.1f s, train loss %.4f -> %.4f", r.stage.c_str(),
                static_cast<long long>(s.start_step), static_cast<long long>(s.end_step), s.seconds, s.first_loss,
                s.last_loss);
    if (s.first_eval_loss >= 0 && s.last_eval_loss >= 0)
      std::printf(", held-out loss %.4f -> %.4f", s.first_eval_loss, s.last_eval_loss);
    if (s.first_eval_accuracy >= 0 && s.last_eval_accuracy >= 0)
      std::printf(", held-out pair accuracy %.4f -> %.4f", s.first_eval_accuracy, s.last_eval_accuracy);
    std::printf("%s\ncheckpoint: %s\n", s.interrupted ? " (interrupted)" : "", s.last_checkpoint.c_str());
    if (s.skipped_steps > 0) std::printf("skipped steps (non-finite): %lld\n", static_cast<long long>(s.skipped_steps));
  });
}
}  // namespace

void register_train_commands(CLI::App& app) {
  register_train(app);
  register_plot(app);
}

}  // namespace stepwise::cli
