// Tests of character-level BLEU and ROUGE-L against hand computations: identical texts score 1, disjoint texts 0,
// and a worked example whose n-gram counts are derived by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/text_metrics.h"
#include "eval/utf8.h"

using namespace stepwise;
using namespace stepwise::eval;

TEST(CharTokens, DropsWhitespaceAndPunctuationAndFoldsFullWidth) {
  EXPECT_EQ(char_tokens("患者， 发热。\n（三天）"), U"患者发热三天");
  EXPECT_EQ(char_tokens("Ｂ超：正常"), U"B超正常");
  EXPECT_EQ(char_tokens("“咳嗽”、《内经》…"), U"咳嗽内经");
  EXPECT_EQ(char_tokens("患者，发热。", {.drop_punctuation = false}), U"患者,发热。");  // ， folds to ,
  EXPECT_EQ(char_tokens("a\xFF" "b"), U"a\uFFFDb");  // a bad byte becomes U+FFFD, no throw
}

TEST(Utf8, DecodeEncodeRoundTrip) {
  const std::string text = "高血压 hypertension 𠀀";
  EXPECT_EQ(utf8_encode(utf8_decode(text)), text);
  EXPECT_EQ(utf8_length(text), 3u + 1 + 12 + 1 + 1);
  EXPECT_EQ(utf8_decode("\xE9\xAB"), U"\uFFFD\uFFFD");  // truncated sequence
}

TEST(Bleu, IdenticalTextsScoreOne) {
  const std::string text = "高血压患者应低盐饮食，规律服药。";
  for (int n = 1; n <= 4; ++n) {
    EXPECT_DOUBLE_EQ(sentence_bleu(text, text, n), 1.0);
    EXPECT_DOUBLE_EQ(corpus_bleu({text}, {text}, n), 1.0);
  }
  // Shorter than 4 characters: smoothed sentence BLEU-4 is still 1; corpus BLEU-4 has no 4-gram, so 0.
  EXPECT_DOUBLE_EQ(sentence_bleu("头痛", "头痛", 4), 1.0);
  EXPECT_DOUBLE_EQ(corpus_bleu({"头痛"}, {"头痛"}, 4), 0.0);
}

TEST(Bleu, DisjointTextsScoreZero) {
  for (int n = 1; n <= 4; ++n) {
    EXPECT_DOUBLE_EQ(sentence_bleu("头痛发热", "腹泻呕吐", n), 0.0);
    EXPECT_DOUBLE_EQ(corpus_bleu({"头痛发热"}, {"腹泻呕吐"}, n), 0.0);
  }
  EXPECT_DOUBLE_EQ(sentence_bleu("", "腹泻", 1), 0.0);
}

// hyp 患者发热咳嗽 (6 chars), ref 患者咳嗽发热三天 (8 chars):
//   unigrams: all 6 in ref                    m1 = 6, t1 = 6
//   bigrams 患者 者发 发热 热咳 咳嗽: 患者 发热 咳嗽 in ref   m2 = 3, t2 = 5
//   trigrams 患者发 者发热 发热咳 热咳嗽: none       m3 = 0, t3 = 4
//   4-grams: none                              m4 = 0, t4 = 3
//   BP = exp(1 - 8/6)
TEST(Bleu, WorkedExample) {
  const std::u32string hyp = char_tokens("患者发热咳嗽"), ref = char_tokens("患者咳嗽发热三天");
  const NgramStats s = ngram_stats(hyp, ref);
  EXPECT_EQ(s.matches, (std::array<int64_t, 4>{6, 3, 0, 0}));
  EXPECT_EQ(s.totals, (std::array<int64_t, 4>{6, 5, 4, 3}));
  const double bp = std::exp(1.0 - 8.0 / 6.0);
  EXPECT_NEAR(corpus_bleu(s, 1), bp * 1.0, 1e-12);
  EXPECT_NEAR(corpus_bleu(s, 2), bp * std::sqrt(1.0 * 3.0 / 5.0), 1e-12);
  EXPECT_DOUBLE_EQ(corpus_bleu(s, 3), 0.0);
  EXPECT_NEAR(sentence_bleu(s, 1), bp, 1e-12);
  EXPECT_NEAR(sentence_bleu(s, 2), bp * std::sqrt(1.0 * (4.0 / 6.0)), 1e-12);
  EXPECT_NEAR(sentence_bleu(s, 4), bp * std::pow(1.0 * (4.0 / 6.0) * (1.0 / 5.0) * (1.0 / 4.0), 0.25), 1e-12);
  EXPECT_NEAR(sentence_bleu(s, 4), 0.306165, 1e-6);  // the same, evaluated independently
}

TEST(Bleu, ClipsRepeatedCharacters) {
  // hyp 的的的的 vs ref 的: the unigram 的 is clipped to one match of four; the hypothesis is longer, so BP = 1.
  EXPECT_DOUBLE_EQ(sentence_bleu("的的的的", "的", 1), 0.25);
}

TEST(Bleu, CorpusSumsStatisticsBeforeDividing) {
  // Item 1 as in WorkedExample; item 2 头痛/头痛: m1 = 2, t1 = 2, m2 = 1, t2 = 1.
  // Corpus: p1 = 8/8, p2 = 4/6, c = 8, r = 10.
  const double expected = std::exp(1.0 - 10.0 / 8.0) * std::sqrt(4.0 / 6.0);
  EXPECT_NEAR(corpus_bleu({"患者发热咳嗽", "头痛"}, {"患者咳嗽发热三天", "头痛"}, 2), expected, 1e-12);
  EXPECT_THROW(corpus_bleu({"a"}, {}, 2), Error);
  EXPECT_THROW(corpus_bleu({"a"}, {"a"}, 5), Error);
}

TEST(RougeL, HandComputed) {
  EXPECT_EQ(lcs_length(U"ABCBDAB", U"BDCABA"), 4);
  // LCS(患者发热咳嗽, 患者咳嗽发热三天) = 4 (患者发热); P = 4/6, R = 4/8, F1 = 2PR/(P+R) = 4/7.
  EXPECT_NEAR(rouge_l_f1("患者发热咳嗽", "患者咳嗽发热三天"), 4.0 / 7.0, 1e-12);
  EXPECT_DOUBLE_EQ(rouge_l_f1("建议低盐饮食。", "建议低盐饮食"), 1.0);  // punctuation does not count
  EXPECT_DOUBLE_EQ(rouge_l_f1("头痛", "腹泻"), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l_f1("", "腹泻"), 0.0);
}
