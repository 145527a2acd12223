// The eval runner: a benchmark file in, an EvalReport out. Builds the prompts (benchmark.h), sends them through an
// EvalBackend (in-process engine or HTTP server), scores the replies (scoring.h) and summarises them. Multiple-choice
// files are judged by generation (greedy reply, CMB-style letter extraction) and/or by likelihood (the option
// continuation with the highest log-prob); open-QA files by character BLEU / ROUGE-L of greedy replies.
#pragma once
#include <cstdint>
#include <string>

#include "core/fs.h"
#include "eval/report.h"
#include "eval/runner_backend.h"

namespace stepwise::eval {

enum class MethodChoice { generation, likelihood, both };
MethodChoice parse_method_choice(const std::string& name);  // "generation" | "likelihood" | "both"; Error otherwise

struct EvalOptions {
  fs::path bench;                                    // MCQ (CMB-Exam schema) or QA JSONL; the kind is detected
  MethodChoice methods = MethodChoice::both;         // MCQ only
  PromptStyle prompt_style = PromptStyle::chat;
  int64_t max_tokens = 0;                            // generated tokens per reply; 0: 64 for MCQ, 256 for QA
  int64_t limit = 0;                                 // evaluate the first N items; 0: all
  ContinuationStyle continuation = ContinuationStyle::letter;  // likelihood: what is scored after the prompt
  LengthNorm length_norm = LengthNorm::none;                   // likelihood: per-token normalisation
  std::string model_label;                           // report label; empty: the backend's model_label()
  bool progress = true;                              // progress bar on stderr
};

constexpr int64_t kDefaultMcqMaxTokens = 64;
constexpr int64_t kDefaultQaMaxTokens = 256;

// The open-QA prompt: chat -> the question itself (as a user turn); plain -> "问题：Q\n回答：".
std::string qa_prompt(const QaItem& item, PromptStyle style);

// What the run did besides the report (for the CLI's summary line).
struct EvalRunStats {
  int64_t items = 0;      // benchmark items evaluated
  int64_t requests = 0;   // generation + scoring tasks sent to the backend
  double seconds = 0.0;   // wall time of the decoding and scoring
};

// Runs the benchmark; report.meta records the settings (backend, prompt style, methods, limits), never timings, so
// that two runs of the same model give identical reports. Throws Error on bad input or a failed backend request.
EvalReport run_eval(EvalBackend& backend, const EvalOptions& options, EvalRunStats* stats = nullptr);

}  // namespace stepwise::eval
