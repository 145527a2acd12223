// Implementation of per-item scoring and aggregation (see scoring.h).
#include "eval/scoring.h"

#include <cmath>

#include "core/error.h"

namespace stepwise::eval {

namespace {

McqRecord record_for(const McqItem& item, McqMethod method) {
  McqRecord r;
  r.id = item.id;
  r.exam_type = item.exam_type;
  r.exam_subject = item.exam_subject;
  r.type = item.type;
  r.method = method;
  r.answer = item.answer;
  return r;
}

const std::string& group_key(const std::string& value) {
  static const std::string kNone = "(none)";
  return value.empty() ? kNone : value;
}

void add_to(AccuracyCell& cell, const McqRecord& r) {
  ++cell.total;
  if (r.correct) ++cell.correct;
  if (r.method == McqMethod::generation && r.predicted.empty()) ++cell.no_answer;
}

}  // namespace

const char* mcq_method_name(McqMethod method) {
  return method == McqMethod::generation ? "generation" : "likelihood";
}

McqRecord score_mcq_generation(const McqItem& item, std::string_view model_output) {
  McqRecord r = record_for(item, McqMethod::generation);
  r.output = std::string(model_output);
  const ExtractedAnswer extracted = extract_answer(model_output, item.type, item.option_letters());
  r.predicted = extracted.letters;
  r.source = extracted.source;
  r.correct = !r.predicted.empty() && r.predicted == item.answer;
  return r;
}

McqRecord score_mcq_likelihood(const McqItem& item, const std::vector<OptionLogProb>& options, LengthNorm norm) {
  if (options.size() != item.options.size())
    fail("item ", item.id, ": ", options.size(), " option log-probs for ", item.options.size(), " options");
  McqRecord r = record_for(item, McqMethod::likelihood);
  size_t best = 0;
  for (size_t i = 0; i < options.size(); ++i) {
    const OptionLogProb& o = options[i];
    if (!std::isfinite(o.logprob) || o.logprob > 0.0)
      fail("item ", item.id, ": option ", item.options[i].letter, " has log-prob ", o.logprob,
           "; expected a finite value <= 0");
    if (o.num_tokens < 1)
      fail("item ", item.id, ": option ", item.options[i].letter, " has num_tokens ", o.num_tokens, "; expected >= 1");
    const double score = norm == LengthNorm::per_token ? o.logprob / static_cast<double>(o.num_tokens) : o.logprob;
    r.option_scores.push_back(score);
    if (score > r.option_scores[best]) best = i;
  }
  if (item.type == QuestionType::multi_choice) {
    r.scored = false;
    return r;
  }
  r.predicted = std::string(1, item.options[best].letter);
  r.correct = r.predicted == item.answer;
  return r;
}

McqSummary summarize_mcq(const std::vector<McqRecord>& records) {
  McqSummary s;
  if (records.empty()) return s;
  s.method = records.front().method;
  for (const McqRecord& r : records) {
    if (r.method != s.method)
      fail("summarize_mcq: record ", r.id, " was scored by ", mcq_method_name(r.method), " but the first by ",
           mcq_method_name(s.method), "; summarise each method separately");
    if (!r.scored) {
      ++s.not_scored;
      continue;
    }
    add_to(s.overall, r);
    add_to(r.type == QuestionType::single_choice ? s.single_choice : s.multi_choice, r);
    add_to(s.by_subject[group_key(r.exam_subject)], r);
    add_to(s.by_exam_type[group_key(r.exam_type)], r);
    if (r.method == McqMethod::generation) ++s.by_source[extraction_source_name(r.source)];
  }
  return s;
}

QaRecord score_qa(const QaItem& item, std::string_view model_output) {
  QaRecord r;
  r.id = item.id;
  r.output = std::string(model_output);
  r.reference = item.answer;
  const std::u32string hypothesis = char_tokens(model_output);
  const std::u32string reference = char_tokens(item.answer);
  r.ngrams = ngram_stats(hypothesis, reference);
  for (int n = 1; n <= kMaxBleuOrder; ++n) r.bleu[n - 1] = sentence_bleu(r.ngrams, n);
  r.rouge_l = rouge_l_f1(hypothesis, reference);
  return r;
}

QaSummary summarize_qa(const std::vector<QaRecord>& records) {
  QaSummary s;
  s.total = static_cast<int64_t>(records.size());
  if (records.empty()) return s;
  NgramStats corpus;
  for (const QaRecord& r : records) {
    corpus += r.ngrams;
    if (r.ngrams.hypothesis_length == 0) ++s.empty_outputs;
    for (int n = 0; n < kMaxBleuOrder; ++n) s.mean_sentence_bleu[n] += r.bleu[n];
    s.mean_rouge_l += r.rouge_l;
  }
  const double count = static_cast<double>(records.size());
  for (int n = 0; n < kMaxBleuOrder; ++n) {
    s.corpus_bleu[n] = corpus_bleu(corpus, n + 1);
    s.mean_sentence_bleu[n] /= count;
  }
  s.mean_rouge_l /= count;
  return s;
}

}  // namespace stepwise::eval
