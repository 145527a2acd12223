// Placeholder: the subcommands of this file are work in progress.
#include "cli/commands.h"

namespace stepwise::cli {

void register_data_import_command(CLI::App& data) { (void)data; }

}  // namespace stepwise::cli
