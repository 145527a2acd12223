// Entry point of the `stepwise` binary: sets up fast BLAS, registers every subcommand, maps errors to exit codes
// (bad input: 2 with "error: <message>"; internal failure: 1).
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/blas.h"
#include "core/error.h"

int main(int argc, char** argv) {
  stepwise::ensure_fast_blas(argc, argv);
  CLI::App app{"stepwise: train, convert, serve and evaluate Step-3-style (MFA + MoE) language models"};
  app.require_subcommand(1);
  CLI::App* data = app.add_subcommand("data", "generate, import and inspect corpora");
  data->require_subcommand(1);
  stepwise::cli::register_data_commands(*data);
  stepwise::cli::register_data_import_command(*data);
  stepwise::cli::register_tokenizer_commands(app);
  stepwise::cli::register_model_commands(app);
  stepwise::cli::register_train_commands(app);
  stepwise::cli::register_convert_command(app);
  stepwise::cli::register_bench_commands(app);
  stepwise::cli::register_bench_kernels_command(*app.get_subcommand("bench"));
  stepwise::cli::register_eval_command(app);
  stepwise::cli::register_serve_command(app);
  stepwise::cli::register_run_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const stepwise::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
