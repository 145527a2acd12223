// Scoring of one benchmark item at a time (a reply or per-option log-probs in, a typed record out) and aggregation of
// records into summaries: accuracy overall / by question type / by exam_subject / by exam_type, the count of answers
// with no extractable letter, and QA BLEU-1..4 + ROUGE-L. A runner is a thin loop: prompt -> model -> score_* -> summarize_*.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/answer_extraction.h"
#include "eval/benchmark.h"
#include "eval/text_metrics.h"

namespace stepwise::eval {

enum class McqMethod { generation, likelihood };
const char* mcq_method_name(McqMethod method);  // "generation" / "likelihood"

// The result of one multiple-choice item by either method.
struct McqRecord {
  std::string id;
  std::string exam_type;
  std::string exam_subject;
  QuestionType type = QuestionType::single_choice;
  McqMethod method = McqMethod::generation;
  std::string answer;     // the key, e.g. "ABD"
  std::string predicted;  // the model's letters; "" when none could be extracted
  bool correct = false;   // exact set match (CMB's rule: a multi-choice answer needs every letter and no other)
  bool scored = true;     // false: multi-choice item under likelihood (see score_mcq_likelihood); not in accuracy
  // generation only
  std::string output;  // the model's reply
  ExtractionSource source = ExtractionSource::none;
  // likelihood only: per option in item order, the score argmax'ed (log-prob, or log-prob per token)
  std::vector<double> option_scores;
};

// Judges a generated reply with extract_answer over the item's option letters.
McqRecord score_mcq_generation(const McqItem& item, std::string_view model_output);

// The log-probability of one continuation (mcq_continuations) given mcq_prompt, and how many tokens it spans.
struct OptionLogProb {
  double logprob = 0.0;
  int64_t num_tokens = 1;
};
enum class LengthNorm { none, per_token };

// Picks the option with the highest score (log-prob, or log-prob / num_tokens with LengthNorm::per_token); ties go
// to the earlier letter. `options` must have one entry per item option with finite log-probs and num_tokens >= 1.
// Multi-choice items cannot be judged by picking one option: their record has scored = false and is counted in
// McqSummary::not_scored instead of the accuracy.
McqRecord score_mcq_likelihood(const McqItem& item, const std::vector<OptionLogProb>& options,
                               LengthNorm norm = LengthNorm::none);

struct AccuracyCell {
  int64_t total = 0;      // scored items
  int64_t correct = 0;
  int64_t no_answer = 0;  // generation: replies with no extractable letter (counted wrong)
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
};

struct McqSummary {
  McqMethod method = McqMethod::generation;
  AccuracyCell overall;
  AccuracyCell single_choice;
  AccuracyCell multi_choice;
  std::map<std::string, AccuracyCell> by_subject;    // key: exam_subject ("(none)" when empty)
  std::map<std::string, AccuracyCell> by_exam_type;  // key: exam_type ("(none)" when empty)
  std::map<std::string, int64_t> by_source;          // generation: "pattern" / "fallback" / "none" counts
  int64_t not_scored = 0;
};

// Aggregates records of one method; mixing methods is an error.
McqSummary summarize_mcq(const std::vector<McqRecord>& records);

// The result of one open-QA item.
struct QaRecord {
  std::string id;
  std::string output;
  std::string reference;
  NgramStats ngrams;                           // character n-gram statistics (for corpus BLEU)
  std::array<double, kMaxBleuOrder> bleu{};    // sentence BLEU-1..4 (smoothed)
  double rouge_l = 0.0;                        // ROUGE-L F1
};

QaRecord score_qa(const QaItem& item, std::string_view model_output);

struct QaSummary {
  int64_t total = 0;
  int64_t empty_outputs = 0;                            // replies with no character left after tokenisation
  std::array<double, kMaxBleuOrder> corpus_bleu{};      // BLEU-1..4 over the whole set
  std::array<double, kMaxBleuOrder> mean_sentence_bleu{};
  double mean_rouge_l = 0.0;
};

QaSummary summarize_qa(const std::vector<QaRecord>& records);

}  // namespace stepwise::eval
