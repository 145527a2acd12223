// Implementation of character-level BLEU and ROUGE-L (see text_metrics.h).
#include "eval/text_metrics.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "eval/utf8.h"

namespace stepwise::eval {

namespace {

bool is_space(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0x00A0 ||
         (c >= 0x2000 && c <= 0x200B) || c == 0x2028 || c == 0x2029 || c == 0x3000 || c == 0xFEFF;
}

// ASCII punctuation and symbols, General Punctuation (—, “”, …), CJK Symbols and Punctuation (、。《》「」【】),
// the punctuation among the full-width forms (after folding they are ASCII) and the half-width CJK marks.
bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  return (c >= 0x2010 && c <= 0x205E) || (c >= 0x3001 && c <= 0x3003) || (c >= 0x3008 && c <= 0x3011) ||
         (c >= 0x3014 && c <= 0x301F) || c == 0x30FB || (c >= 0xFF61 && c <= 0xFF65) || c == 0x00B7;
}

using NgramCounts = std::unordered_map<std::u32string_view, int64_t>;

NgramCounts count_ngrams(std::u32string_view tokens, size_t n) {
  NgramCounts counts;
  for (size_t i = 0; i + n <= tokens.size(); ++i) ++counts[tokens.substr(i, n)];
  return counts;
}

void check_order(int max_order) {
  if (max_order < 1 || max_order > kMaxBleuOrder) fail("BLEU order must be in 1..", kMaxBleuOrder, ", got ", max_order);
}

double brevity_penalty(int64_t hypothesis_length, int64_t reference_length) {
  if (hypothesis_length >= reference_length) return 1.0;
  return std::exp(1.0 - static_cast<double>(reference_length) / static_cast<double>(hypothesis_length));
}

}  // namespace

std::u32string char_tokens(std::string_view text, const CharTokenOptions& options) {
  std::u32string tokens;
  for (char32_t c : utf8_decode(text)) {
    c = fold_full_width(c);
    if (is_space(c)) continue;
    if (options.drop_punctuation && is_punctuation(c)) continue;
    tokens.push_back(c);
  }
  return tokens;
}

NgramStats& NgramStats::operator+=(const NgramStats& other) {
  for (int n = 0; n < kMaxBleuOrder; ++n) {
    matches[n] += other.matches[n];
    totals[n] += other.totals[n];
  }
  hypothesis_length += other.hypothesis_length;
  reference_length += other.reference_length;
  return *this;
}

NgramStats ngram_stats(std::u32string_view hypothesis, std::u32string_view reference) {
  NgramStats stats;
  stats.hypothesis_length = static_cast<int64_t>(hypothesis.size());
  stats.reference_length = static_cast<int64_t>(reference.size());
  for (size_t n = 1; n <= kMaxBleuOrder; ++n) {
    if (hypothesis.size() < n) break;
    stats.totals[n - 1] = static_cast<int64_t>(hypothesis.size() - n + 1);
    const NgramCounts ref_counts = count_ngrams(reference, n);
    for (const auto& [gram, count] : count_ngrams(hypothesis, n)) {
      auto it = ref_counts.find(gram);
      if (it != ref_counts.end()) stats.matches[n - 1] += std::min(count, it->second);
    }
  }
  return stats;
}

double corpus_bleu(const NgramStats& corpus, int max_order) {
  check_order(max_order);
  if (corpus.hypothesis_length == 0) return 0.0;
  double log_sum = 0.0;
  for (int n = 0; n < max_order; ++n) {
    if (corpus.matches[n] == 0) return 0.0;  // also covers totals[n] == 0
    log_sum += std::log(static_cast<double>(corpus.matches[n]) / static_cast<double>(corpus.totals[n]));
  }
  return brevity_penalty(corpus.hypothesis_length, corpus.reference_length) * std::exp(log_sum / max_order);
}

double sentence_bleu(const NgramStats& sentence, int max_order) {
  check_order(max_order);
  if (sentence.hypothesis_length == 0 || sentence.matches[0] == 0) return 0.0;
  double log_sum = std::log(static_cast<double>(sentence.matches[0]) / static_cast<double>(sentence.totals[0]));
  for (int n = 1; n < max_order; ++n)
    log_sum += std::log(static_cast<double>(sentence.matches[n] + 1) / static_cast<double>(sentence.totals[n] + 1));
  return brevity_penalty(sentence.hypothesis_length, sentence.reference_length) * std::exp(log_sum / max_order);
}

double sentence_bleu(std::string_view hypothesis, std::string_view reference, int max_order) {
  return sentence_bleu(ngram_stats(char_tokens(hypothesis), char_tokens(reference)), max_order);
}

double corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                   int max_order) {
  if (hypotheses.size() != references.size())
    fail("corpus_bleu: ", hypotheses.size(), " hypotheses but ", references.size(), " references");
  NgramStats corpus;
  for (size_t i = 0; i < hypotheses.size(); ++i)
    corpus += ngram_stats(char_tokens(hypotheses[i]), char_tokens(references[i]));
  return corpus_bleu(corpus, max_order);
}

int64_t lcs_length(std::u32string_view a, std::u32string_view b) {
  if (a.size() < b.size()) std::swap(a, b);  // the row runs over the shorter sequence
  std::vector<int64_t> row(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = 0;  // row[j-1] of the previous row
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t above = row[j];
      row[j] = a[i - 1] == b[j - 1] ? diagonal + 1 : std::max(above, row[j - 1]);
      diagonal = above;
    }
  }
  return row[b.size()];
}

double rouge_l_f1(std::u32string_view hypothesis, std::u32string_view reference) {
  if (hypothesis.empty() || reference.empty()) return 0.0;
  const double lcs = static_cast<double>(lcs_length(hypothesis, reference));
  if (lcs == 0.0) return 0.0;
  const double precision = lcs / static_cast<double>(hypothesis.size());
  const double recall = lcs / static_cast<double>(reference.size());
  return 2.0 * precision * recall / (precision + recall);
}

double rouge_l_f1(std::string_view hypothesis, std::string_view reference) {
  return rouge_l_f1(char_tokens(hypothesis), char_tokens(reference));
}

}  // namespace stepwise::eval
