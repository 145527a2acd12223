// Placeholder: the subcommands of this file are work in progress.
#include "cli/commands.h"

namespace stepwise::cli {

void register_tokenizer_commands(CLI::App& app) { (void)app; }

}  // namespace stepwise::cli
