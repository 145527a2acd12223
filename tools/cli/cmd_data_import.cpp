// `stepwise data import`: converts a real-world dataset file into canonical JSONL (src/data/import.h) and prints a
// one-line summary; skipped records are reported on stderr. Bad input ends with "error: FILE:LINE: ..." and exit 2.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "data/import.h"

namespace stepwise::cli {

namespace {

const char* const kImportHelp = R"(Formats (--format) and what --out receives:
  chimed1            ChiMed/39ask JSON lines -> sft (question title, patient facts and question_content as the user
                     turn, the first adopted answer as the assistant turn). With --preference-out also preference
                     pairs: the adopted answer (chosen) against each answer not adopted (rejected), ids "<id>-pairN".
                     Questions without an adopted answer yield nothing (counted). Department "内科>消化内科" is kept
                     whole unless --department-level top keeps only "内科".
  sharegpt           {"conversations":[{"from":"human|gpt|system","value"}]} -> sft. Records with "chosen" and
                     "rejected" (strings or {"from":"gpt","value"}) are preference pairs and need --preference-out.
  alpaca             {"instruction","input","output","system","history":[[q,a],...]} -> multi-turn sft.
  preference-legacy  {"question","response_chosen","response_rejected"} -> preference.
  text               one document a line, or {"text":...} lines (a line starting with '{' is JSON) -> pretrain;
                     "source" is --source, default the input file's stem.
  cmb                CMB-Exam JSON lines -> mcq.
  cmexam             CMExam CSV (header with Question, Options "A 选项\nB 选项...", Answer; Clinical Department ->
                     exam_class, Disease Group -> exam_subject) -> mcq with exam_type "CMExam".
  medqa              {"question","options":{"A":..},"answer","answer_idx","meta_info"} -> mcq with exam_type "MedQA",
                     meta_info -> exam_class.
Records without an "id" get "<input stem>-<line>". Bad records (invalid JSON/CSV, a missing, empty or mistyped field,
an answer letter not among the options, a repeated id) stop the import with "FILE:LINE: field ..." and exit code 2,
or are counted and left out with --on-bad-record skip. Outputs are written to temporary files and renamed into
place only when the whole input converted: on error no output file changes.)";

struct ImportArgs {
  std::string format;
  std::string in;
  std::string out;
  std::string preference_out;
  std::string on_bad_record = "fail";
  std::string department_level = "full";
  std::string source;
};

void run_import(const ImportArgs& args) {
  const ImportFormat format = import_format_from_name(args.format);
  ImportOptions options;
  options.on_bad_record = args.on_bad_record == "skip" ? BadRecordPolicy::skip : BadRecordPolicy::fail;
  options.department_level = args.department_level == "top" ? DepartmentLevel::top : DepartmentLevel::full;
  options.source = args.source;
  std::optional<fs::path> preference_out;
  if (!args.preference_out.empty()) preference_out = args.preference_out;

  const ImportStats stats = import_to_files(format, args.in, args.out, preference_out, options);
  for (const std::string& line : import_skip_report(stats)) std::fprintf(stderr, "%s\n", line.c_str());
  std::string summary = import_summary_line(format, args.in, stats) + " -> " + args.out;
  if (preference_out) summary += ", " + preference_out->string();
  std::printf("%s\n", summary.c_str());
}

}  // namespace

void register_data_import_command(CLI::App& data) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App* cmd = data.add_subcommand("import", "convert a real-world dataset file into canonical JSONL");
  cmd->footer(kImportHelp);
  cmd->add_option("--format", args->format, "input format")
      ->required()
      ->check(CLI::IsMember(import_format_names()));
  cmd->add_option("--in", args->in, "input file")->required();
  cmd->add_option("--out", args->out, "main output (JSONL: sft, preference, pretrain or mcq, by format)")->required();
  cmd->add_option("--preference-out", args->preference_out,
                  "preference pairs output (JSONL), for chimed1 and sharegpt");
  cmd->add_option("--on-bad-record", args->on_bad_record, "fail: stop at the first bad record; skip: count and skip")
      ->check(CLI::IsMember({"fail", "skip"}));
  cmd->add_option("--department-level", args->department_level, "chimed1 department: full path or top level")
      ->check(CLI::IsMember({"full", "top"}));
  cmd->add_option("--source", args->source, "text: source of records without one (default: input file stem)");
  cmd->callback([args] { run_import(*args); });
}

}  // namespace stepwise::cli
