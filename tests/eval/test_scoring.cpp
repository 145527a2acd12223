// Tests of per-item scoring and aggregation: generation accuracy with the no-letter count and per-subject breakdown,
// likelihood accuracy with and without length normalisation, and QA BLEU / ROUGE-L means.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "eval/scoring.h"
#include "eval_fixtures.h"

using namespace stepwise;
using namespace stepwise::eval;
using stepwise::eval::testing::cmb_item;

TEST(Scoring, GenerationAccuracyBySubjectAndNoLetterCount) {
  const std::vector<McqItem> items = {cmb_item("1", "内科", "A"), cmb_item("2", "内科", "B"),
                                      cmb_item("3", "外科", "C"), cmb_item("4", "外科", "ABD", "多项选择题"),
                                      cmb_item("5", "外科", "BD", "多项选择题")};
  const std::vector<std::string> replies = {
      "答案是A。",                        // correct (pattern)
      "我不确定，建议进一步检查。",       // no letter
      "选C",                              // correct (fallback)
      "答案：D、B、A",                    // correct: the set ABD
      "答案：B",                          // wrong: B alone is not BD
  };
  std::vector<McqRecord> records;
  for (size_t i = 0; i < items.size(); ++i) records.push_back(score_mcq_generation(items[i], replies[i]));
  EXPECT_TRUE(records[0].correct);
  EXPECT_EQ(records[1].predicted, "");
  EXPECT_FALSE(records[1].correct);
  EXPECT_EQ(records[3].predicted, "ABD");
  EXPECT_FALSE(records[4].correct);

  const McqSummary s = summarize_mcq(records);
  EXPECT_EQ(s.method, McqMethod::generation);
  EXPECT_EQ(s.overall.total, 5);
  EXPECT_EQ(s.overall.correct, 3);
  EXPECT_DOUBLE_EQ(s.overall.accuracy(), 0.6);
  EXPECT_EQ(s.overall.no_answer, 1);
  EXPECT_EQ(s.single_choice.total, 3);
  EXPECT_EQ(s.single_choice.correct, 2);
  EXPECT_EQ(s.multi_choice.correct, 1);
  EXPECT_EQ(s.by_subject.at("内科").total, 2);
  EXPECT_EQ(s.by_subject.at("内科").correct, 1);
  EXPECT_EQ(s.by_subject.at("内科").no_answer, 1);
  EXPECT_DOUBLE_EQ(s.by_subject.at("外科").accuracy(), 2.0 / 3.0);
  EXPECT_EQ(s.by_exam_type.at("医师考试").total, 5);
  EXPECT_EQ(s.by_source.at("pattern"), 3);
  EXPECT_EQ(s.by_source.at("fallback"), 1);
  EXPECT_EQ(s.by_source.at("none"), 1);
}

TEST(Scoring, LikelihoodPicksTheBestOptionWithOptionalLengthNorm) {
  const McqItem item = cmb_item("1", "内科", "B");
  // Raw log-probs favour A; per token, B (-6 over 4 tokens = -1.5) beats A (-4 over 1 token).
  const std::vector<OptionLogProb> options = {{-4.0, 1}, {-6.0, 4}, {-9.0, 3}, {-7.0, 2}, {-12.0, 2}};
  const McqRecord raw = score_mcq_likelihood(item, options);
  EXPECT_EQ(raw.predicted, "A");
  EXPECT_FALSE(raw.correct);
  const McqRecord normalised = score_mcq_likelihood(item, options, LengthNorm::per_token);
  EXPECT_EQ(normalised.predicted, "B");
  EXPECT_TRUE(normalised.correct);
  EXPECT_DOUBLE_EQ(normalised.option_scores[1], -1.5);
  // Ties go to the earlier letter.
  EXPECT_EQ(score_mcq_likelihood(item, {{-2, 1}, {-1, 1}, {-1, 1}, {-3, 1}, {-5, 1}}).predicted, "B");

  const McqRecord multi = score_mcq_likelihood(cmb_item("2", "内科", "AB", "多项选择题"), options);
  EXPECT_FALSE(multi.scored);
  const McqSummary s = summarize_mcq({raw, normalised, multi});
  EXPECT_EQ(s.method, McqMethod::likelihood);
  EXPECT_EQ(s.overall.total, 2);
  EXPECT_EQ(s.overall.correct, 1);
  EXPECT_EQ(s.overall.no_answer, 0);
  EXPECT_EQ(s.not_scored, 1);
}

TEST(Scoring, LikelihoodRejectsBadInput) {
  const McqItem item = cmb_item("1", "内科", "B");
  EXPECT_THROW(score_mcq_likelihood(item, {{-1, 1}, {-2, 1}}), Error);  // two scores for five options
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(score_mcq_likelihood(item, {{nan, 1}, {-1, 1}, {-1, 1}, {-1, 1}, {-1, 1}}), Error);
  EXPECT_THROW(score_mcq_likelihood(item, {{-1, 0}, {-1, 1}, {-1, 1}, {-1, 1}, {-1, 1}}), Error);
}

TEST(Scoring, MixingMethodsIsAnError) {
  const McqItem item = cmb_item("1", "内科", "A");
  const McqRecord gen = score_mcq_generation(item, "答案：A");
  const McqRecord lik = score_mcq_likelihood(item, {{-1, 1}, {-2, 1}, {-3, 1}, {-4, 1}, {-5, 1}});
  EXPECT_THROW(summarize_mcq({gen, lik}), Error);
  EXPECT_EQ(summarize_mcq({}).overall.total, 0);
}

TEST(Scoring, QaMeansAndCorpusBleu) {
  const QaItem first{"a1", "发热咳嗽怎么办？", "患者咳嗽发热三天", 1};
  const QaItem second{"a2", "什么症状？", "头痛", 2};
  const QaItem third{"a3", "怎么办？", "多喝水", 3};
  const std::vector<QaRecord> records = {score_qa(first, "患者发热咳嗽"), score_qa(second, "头痛"),
                                         score_qa(third, "。")};
  EXPECT_NEAR(records[0].rouge_l, 4.0 / 7.0, 1e-12);
  EXPECT_DOUBLE_EQ(records[1].bleu[3], 1.0);
  EXPECT_DOUBLE_EQ(records[2].rouge_l, 0.0);

  const QaSummary s = summarize_qa(records);
  EXPECT_EQ(s.total, 3);
  EXPECT_EQ(s.empty_outputs, 1);
  EXPECT_NEAR(s.mean_rouge_l, (4.0 / 7.0 + 1.0 + 0.0) / 3.0, 1e-12);
  EXPECT_NEAR(s.mean_sentence_bleu[0], (std::exp(1.0 - 8.0 / 6.0) + 1.0 + 0.0) / 3.0, 1e-12);
  // Corpus: p1 = 8/8, p2 = 4/6, c = 8, r = 8 + 2 + 3 = 13.
  EXPECT_NEAR(s.corpus_bleu[1], std::exp(1.0 - 13.0 / 8.0) * std::sqrt(4.0 / 6.0), 1e-12);
}
