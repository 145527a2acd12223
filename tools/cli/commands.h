// Registration of the CLI's subcommands: each cmd_*.cpp adds its subcommands to the app (or to a group).
// Handlers throw stepwise::Error for bad input; main() prints "error: <message>" and exits with code 2.
#pragma once
#include <CLI/CLI.hpp>

namespace stepwise::cli {

void register_data_commands(CLI::App& data);         // data generate, data stats        (cmd_data.cpp)
void register_data_import_command(CLI::App& data);   // data import                      (cmd_data_import.cpp)
void register_tokenizer_commands(CLI::App& app);     // tokenizer train|encode|decode    (cmd_tokenizer.cpp)
void register_model_commands(CLI::App& app);         // model info                       (cmd_model.cpp)
void register_train_commands(CLI::App& app);         // train, plot                      (cmd_train.cpp)
void register_convert_command(CLI::App& app);        // convert                          (cmd_convert.cpp)
void register_bench_commands(CLI::App& app);         // bench train (+ bench decode)     (cmd_bench.cpp)
void register_bench_decode_command(CLI::App& bench); // bench decode                     (cmd_bench_decode.cpp)
void register_bench_kernels_command(CLI::App& bench);// bench kernels (CUDA builds)      (cmd_bench_kernels.cpp)
void register_eval_command(CLI::App& app);           // eval, eval compare               (cmd_eval.cpp)
void register_serve_command(CLI::App& app);          // serve                            (cmd_serve.cpp)
void register_run_command(CLI::App& app);            // run PIPELINE                     (cmd_run.cpp)

}  // namespace stepwise::cli
