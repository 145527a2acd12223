// Character-level text metrics for Chinese open QA: BLEU-1..4 (corpus-level and smoothed sentence-level) and
// ROUGE-L F1, with characters (UTF-8 code points) as tokens — the common practice for Chinese, needing no segmenter.
// Pure functions; no model, no I/O.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace stepwise::eval {

// Tokens are code points. Tokenisation folds full-width ASCII forms to ASCII ("Ｂ超" == "B超") and drops whitespace
// always and punctuation (ASCII and CJK: ，。、；：？！“”（）《》…— and the like) by default, so that a
// formatting difference does not count as content.
struct CharTokenOptions {
  bool drop_punctuation = true;
};
std::u32string char_tokens(std::string_view text, const CharTokenOptions& options = {});

constexpr int kMaxBleuOrder = 4;

// Clipped n-gram matches and hypothesis n-gram counts for n = 1..4 of one hypothesis against one reference, plus
// both lengths. Sums over items give corpus-level statistics.
struct NgramStats {
  std::array<int64_t, kMaxBleuOrder> matches{};  // [n-1]: sum over n-grams of min(count in hyp, count in ref)
  std::array<int64_t, kMaxBleuOrder> totals{};   // [n-1]: number of n-grams in the hypothesis
  int64_t hypothesis_length = 0;
  int64_t reference_length = 0;

  NgramStats& operator+=(const NgramStats& other);
};
NgramStats ngram_stats(std::u32string_view hypothesis, std::u32string_view reference);

// BLEU-N for N = max_order in 1..4, the cumulative form with uniform weights 1/N:
//   BP * exp(sum_{n<=N} log(p_n) / N),  p_n = matches[n] / totals[n],  BP = min(1, exp(1 - ref_len / hyp_len)).
// Corpus BLEU (Papineni et al.) has no smoothing: it is 0 when the hypothesis is empty or any p_n is 0 (including
// totals[n] == 0). Sentence BLEU adds one to the numerator and denominator of p_n for n >= 2 (Lin & Och 2004, as
// sacrebleu's "add-k" with k=1), so identical texts score 1 even when shorter than N and one missing 4-gram does not
// zero the score; p_1 is unsmoothed, so texts sharing no character score 0.
double corpus_bleu(const NgramStats& corpus, int max_order);
double sentence_bleu(const NgramStats& sentence, int max_order);

// Conveniences over raw UTF-8 texts (tokenised with default options).
double sentence_bleu(std::string_view hypothesis, std::string_view reference, int max_order);
double corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                   int max_order);

// Length of the longest common subsequence of two token sequences (O(|a|*|b|) time, O(min) memory).
int64_t lcs_length(std::u32string_view a, std::u32string_view b);

// ROUGE-L F1 = 2PR / (P + R), P = LCS / |hyp|, R = LCS / |ref|; 0 when either side is empty.
double rouge_l_f1(std::u32string_view hypothesis, std::u32string_view reference);
double rouge_l_f1(std::string_view hypothesis, std::string_view reference);

}  // namespace stepwise::eval
