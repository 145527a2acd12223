// `stepwise eval --bench FILE (--model DIR | --server URL) --out DIR [...]`: evaluates a checkpoint by decoding
// (in process or over an OpenAI-compatible server) and writes report.json / report.md / report.svg / items.jsonl;
// `stepwise eval compare --reports A/report.json B/report.json ... [--names base,sft] --out DIR` puts reports side by side.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/strings.h"
#include "eval/runner.h"
#include "eval/runner_engine.h"
#include "eval/runner_http.h"

namespace stepwise::cli {

namespace {

struct EvalArgs {
  std::string bench, model_dir, server, out, api_key, served_model, name;
  std::string method = "both", prompt_style = "chat", continuation = "letter", length_norm = "none";
  std::string transport = "inproc";
  int64_t limit = 0, concurrency = 8, max_tokens = 0, max_model_len = 0;
  double timeout_s = 600;
  bool no_progress = false;
};

struct CompareArgs {
  std::vector<std::string> reports;
  std::string names, out;
};

eval::ContinuationStyle parse_continuation(const std::string& s) {
  if (s == "letter") return eval::ContinuationStyle::letter;
  if (s == "option_text") return eval::ContinuationStyle::option_text;
  fail("--continuation '", s, "' is not one of letter, option_text");
}

eval::LengthNorm parse_length_norm(const std::string& s) {
  if (s == "none") return eval::LengthNorm::none;
  if (s == "per_token") return eval::LengthNorm::per_token;
  fail("--length-norm '", s, "' is not one of none, per_token");
}

std::unique_ptr<eval::EvalBackend> make_backend(const EvalArgs& a) {
  if (a.model_dir.empty() == a.server.empty()) fail("eval needs exactly one of --model DIR and --server URL");
  if (!a.model_dir.empty()) {
    EngineOptions o;
    o.model_dir = a.model_dir;
    o.transport = a.transport;
    o.max_model_len = a.max_model_len;
    return std::make_unique<eval::EngineBackend>(o, a.concurrency);
  }
  eval::HttpBackendOptions o;
  o.url = a.server;
  o.api_key = a.api_key;
  o.model = a.served_model;
  o.concurrency = a.concurrency;
  o.timeout_s = a.timeout_s;
  return std::make_unique<eval::HttpBackend>(o);
}

std::string percent(const eval::AccuracyCell& c) {
  char text[96];
  std::snprintf(text, sizeof text, "%.1f%% (%lld/%lld)", 100.0 * c.accuracy(), static_cast<long long>(c.correct),
                static_cast<long long>(c.total));
  return text;
}

void run_eval_command(const EvalArgs& a) {
  if (a.bench.empty()) fail("eval needs --bench FILE");
  if (a.out.empty()) fail("eval needs --out DIR");
  eval::EvalOptions options;
  options.bench = a.bench;
  options.methods = eval::parse_method_choice(a.method);
  options.prompt_style = eval::parse_prompt_style(a.prompt_style);
  options.continuation = parse_continuation(a.continuation);
  options.length_norm = parse_length_norm(a.length_norm);
  options.limit = a.limit;
  options.max_tokens = a.max_tokens;
  options.model_label = a.name;
  options.progress = !a.no_progress;
  eval::detect_benchmark_kind(options.bench);  // a bad file fails before a model is loaded
  const std::unique_ptr<eval::EvalBackend> backend = make_backend(a);
  eval::EvalRunStats stats;
  const eval::EvalReport report = eval::run_eval(*backend, options, &stats);
  eval::write_report(a.out, report);
  std::printf("eval %s on %s: %lld items, %lld requests in %.2f s (%.2f items/s)\n", report.model.c_str(),
              a.bench.c_str(), static_cast<long long>(stats.items), static_cast<long long>(stats.requests),
              stats.seconds, stats.seconds > 0 ? static_cast<double>(stats.items) / stats.seconds : 0.0);
  if (report.mcq_generation)
    std::printf("  generation accuracy %s, no extractable letter %lld\n",
                percent(report.mcq_generation->overall).c_str(),
                static_cast<long long>(report.mcq_generation->overall.no_answer));
  if (report.mcq_likelihood)
    std::printf("  likelihood accuracy %s, multi-choice not scored %lld\n",
                percent(report.mcq_likelihood->overall).c_str(),
                static_cast<long long>(report.mcq_likelihood->not_scored));
  if (report.qa)
    std::printf("  BLEU-1 %.4f, BLEU-4 %.4f, ROUGE-L %.4f\n", report.qa->corpus_bleu[0], report.qa->corpus_bleu[3],
                report.qa->mean_rouge_l);
  std::printf("  report: %s\n", (fs::path(a.out) / "report.md").string().c_str());
}

void run_compare_command(const CompareArgs& a) {
  std::vector<eval::EvalReport> reports;
  for (const std::string& path : a.reports) reports.push_back(eval::read_report(path));
  if (!a.names.empty()) {
    const std::vector<std::string> names = split(a.names, ',');
    if (names.size() != reports.size())
      fail("--names gives ", names.size(), " names for ", reports.size(), " reports");
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i].empty()) fail("--names: name ", i + 1, " is empty");
      reports[i].model = names[i];
    }
  }
  eval::write_comparison(a.out, reports);
  std::printf("compared %zu reports: %s\n", reports.size(), (fs::path(a.out) / "report.md").string().c_str());
}

}  // namespace

void register_eval_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("eval", "evaluate a checkpoint on an MCQ or QA benchmark by decoding");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--bench", a->bench, "benchmark JSONL: CMB-Exam style MCQ or {id, question, answer} QA");
  cmd->add_option("--model", a->model_dir, "checkpoint directory, decoded in process");
  cmd->add_option("--server", a->server, "OpenAI-compatible server, e.g. http://127.0.0.1:8000");
  cmd->add_option("--out", a->out, "output directory for report.json / report.md / report.svg / items.jsonl");
  cmd->add_option("--method", a->method, "MCQ: generation | likelihood | both (default both)");
  cmd->add_option("--prompt-style", a->prompt_style, "chat (instruction-tuned) | plain (base model); default chat");
  cmd->add_option("--limit", a->limit, "evaluate the first N items only (0: all)");
  cmd->add_option("--concurrency", a->concurrency, "requests in flight (default 8)");
  cmd->add_option("--max-tokens", a->max_tokens, "tokens per reply (0: 64 for MCQ, 256 for QA)");
  cmd->add_option("--continuation", a->continuation, "likelihood: letter | option_text (default letter)");
  cmd->add_option("--length-norm", a->length_norm, "likelihood: none | per_token (default none)");
  cmd->add_option("--name", a->name, "model label in the report (default: checkpoint or served model name)");
  cmd->add_option("--api-key", a->api_key, "--server: bearer token")->envname("STEPWISE_API_KEY");
  cmd->add_option("--served-model", a->served_model, "--server: the request's model field (default: GET /v1/models)");
  cmd->add_option("--timeout", a->timeout_s, "--server: seconds per request (default 600)");
  cmd->add_option("--transport", a->transport, "--model: engine transport inproc | local (default inproc)");
  cmd->add_option("--max-model-len", a->max_model_len, "--model: context length (0: the model config's)");
  cmd->add_flag("--no-progress", a->no_progress, "no progress bar");

  CLI::App* compare = cmd->add_subcommand("compare", "side-by-side comparison of eval reports");
  auto c = std::make_shared<CompareArgs>();
  compare->add_option("--reports", c->reports, "report.json files (or directories holding one)")->required();
  compare->add_option("--names", c->names, "comma-separated labels, one per report (default: each report's model)");
  compare->add_option("--out", c->out, "output directory for report.md + report.svg")->required();
  compare->callback([c] { run_compare_command(*c); });
  cmd->callback([cmd, compare, a] {
    if (cmd->got_subcommand(compare)) return;
    run_eval_command(*a);
  });
}

}  // namespace stepwise::cli
