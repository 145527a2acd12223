// The eval runner's loop: load the benchmark, build one task per prompt (or per option for likelihood), hand them to
// the backend in one batch per method, then score and summarise into an EvalReport.
#include "eval/runner.h"

#include <chrono>
#include <memory>

#include "core/error.h"
#include "core/progress.h"

namespace stepwise::eval {

MethodChoice parse_method_choice(const std::string& name) {
  if (name == "generation") return MethodChoice::generation;
  if (name == "likelihood") return MethodChoice::likelihood;
  if (name == "both") return MethodChoice::both;
  fail("method '", name, "' is not one of generation, likelihood, both");
}

std::string qa_prompt(const QaItem& item, PromptStyle style) {
  if (style == PromptStyle::chat) return item.question;
  return cat("问题：", item.question, "\n回答：");
}

namespace {

const char* method_choice_name(MethodChoice m) {
  switch (m) {
    case MethodChoice::generation: return "generation";
    case MethodChoice::likelihood: return "likelihood";
    case MethodChoice::both: return "both";
  }
  return "?";
}

// A progress bar over one backend batch; `on_done` advances it (the backend serialises the calls).
class BatchProgress {
 public:
  BatchProgress(bool enabled, const std::string& label, size_t total) {
    if (enabled) bar_ = std::make_unique<Progress>(label, static_cast<int64_t>(total));
  }
  TaskDone callback() {
    return [this] {
      ++done_;
      if (bar_) bar_->update(done_);
    };
  }
  void finish() {
    if (bar_) bar_->finish();
  }

 private:
  std::unique_ptr<Progress> bar_;
  int64_t done_ = 0;
};

template <class Item>
void apply_limit(std::vector<Item>& items, int64_t limit) {
  if (limit < 0) fail("limit = ", limit, " must be >= 0 (0: all items)");
  if (limit > 0 && static_cast<int64_t>(items.size()) > limit) items.resize(static_cast<size_t>(limit));
}

std::vector<McqRecord> run_mcq_generation(EvalBackend& backend, const std::vector<McqItem>& items,
                                          const EvalOptions& o, int64_t max_tokens, EvalRunStats& stats) {
  std::vector<GenerateTask> tasks;
  tasks.reserve(items.size());
  for (const McqItem& item : items) tasks.push_back({{mcq_prompt(item), o.prompt_style}, max_tokens});
  BatchProgress progress(o.progress, "eval mcq generation", tasks.size());
  const std::vector<std::string> replies = backend.generate(tasks, progress.callback());
  progress.finish();
  stats.requests += static_cast<int64_t>(tasks.size());
  std::vector<McqRecord> records;
  records.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) records.push_back(score_mcq_generation(items[i], replies[i]));
  return records;
}

std::vector<McqRecord> run_mcq_likelihood(EvalBackend& backend, const std::vector<McqItem>& items,
                                          const EvalOptions& o, EvalRunStats& stats) {
  std::vector<ScoreTask> tasks;
  std::vector<size_t> first_task;  // per item: index of its first option's task
  for (const McqItem& item : items) {
    first_task.push_back(tasks.size());
    const EvalPrompt context{mcq_prompt(item), o.prompt_style};
    for (std::string& continuation : mcq_continuations(item, o.continuation))
      tasks.push_back({context, std::move(continuation)});
  }
  BatchProgress progress(o.progress, "eval mcq likelihood", tasks.size());
  const std::vector<OptionLogProb> scores = backend.score(tasks, progress.callback());
  progress.finish();
  stats.requests += static_cast<int64_t>(tasks.size());
  std::vector<McqRecord> records;
  records.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto begin = scores.begin() + static_cast<std::ptrdiff_t>(first_task[i]);
    const std::vector<OptionLogProb> options(begin, begin + static_cast<std::ptrdiff_t>(items[i].options.size()));
    records.push_back(score_mcq_likelihood(items[i], options, o.length_norm));
  }
  return records;
}

std::vector<QaRecord> run_qa(EvalBackend& backend, const std::vector<QaItem>& items, const EvalOptions& o,
                             int64_t max_tokens, EvalRunStats& stats) {
  std::vector<GenerateTask> tasks;
  tasks.reserve(items.size());
  for (const QaItem& item : items) tasks.push_back({{qa_prompt(item, o.prompt_style), o.prompt_style}, max_tokens});
  BatchProgress progress(o.progress, "eval qa", tasks.size());
  const std::vector<std::string> replies = backend.generate(tasks, progress.callback());
  progress.finish();
  stats.requests += static_cast<int64_t>(tasks.size());
  std::vector<QaRecord> records;
  records.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) records.push_back(score_qa(items[i], replies[i]));
  return records;
}

}  // namespace

EvalReport run_eval(EvalBackend& backend, const EvalOptions& o, EvalRunStats* stats_out) {
  if (o.max_tokens < 0) fail("max_tokens = ", o.max_tokens, " must be >= 0 (0: the default per benchmark kind)");
  const BenchmarkKind kind = detect_benchmark_kind(o.bench);
  EvalReport report;
  report.model = o.model_label.empty() ? backend.model_label() : o.model_label;
  report.benchmark = o.bench.string();
  report.meta = backend.settings();
  report.meta["prompt_style"] = prompt_style_name(o.prompt_style);
  report.meta["limit"] = o.limit;
  report.meta["decoding"] = "greedy";

  EvalRunStats stats;
  const auto start = std::chrono::steady_clock::now();
  if (kind == BenchmarkKind::mcq) {
    std::vector<McqItem> items = load_mcq_benchmark(o.bench);
    apply_limit(items, o.limit);
    const int64_t max_tokens = o.max_tokens > 0 ? o.max_tokens : kDefaultMcqMaxTokens;
    report.meta["kind"] = "mcq";
    report.meta["items"] = items.size();
    report.meta["methods"] = method_choice_name(o.methods);
    stats.items = static_cast<int64_t>(items.size());
    if (o.methods != MethodChoice::likelihood) {
      report.meta["max_tokens"] = max_tokens;
      std::vector<McqRecord> records = run_mcq_generation(backend, items, o, max_tokens, stats);
      report.mcq_generation = summarize_mcq(records);
      report.mcq_records.insert(report.mcq_records.end(), records.begin(), records.end());
    }
    if (o.methods != MethodChoice::generation) {
      report.meta["continuation"] = o.continuation == ContinuationStyle::letter ? "letter" : "option_text";
      report.meta["length_norm"] = o.length_norm == LengthNorm::none ? "none" : "per_token";
      std::vector<McqRecord> records = run_mcq_likelihood(backend, items, o, stats);
      report.mcq_likelihood = summarize_mcq(records);
      report.mcq_records.insert(report.mcq_records.end(), records.begin(), records.end());
    }
  } else {
    std::vector<QaItem> items = load_qa_benchmark(o.bench);
    apply_limit(items, o.limit);
    const int64_t max_tokens = o.max_tokens > 0 ? o.max_tokens : kDefaultQaMaxTokens;
    report.meta["kind"] = "qa";
    report.meta["items"] = items.size();
    report.meta["max_tokens"] = max_tokens;
    stats.items = static_cast<int64_t>(items.size());
    report.qa_records = run_qa(backend, items, o, max_tokens, stats);
    report.qa = summarize_qa(report.qa_records);
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats_out) *stats_out = stats;
  return report;
}

}  // namespace stepwise::eval
