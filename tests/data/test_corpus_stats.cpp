// Tests of corpus statistics: records, Han characters (text fields only) and the department histogram of a small
// hand-written corpus, and errors for a directory without corpus files.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/corpus_stats.h"
#include "test_corpus_util.h"

using namespace stepwise;
using stepwise::test::fresh_dir;

TEST(CorpusStats, CountsRecordsHanCharactersAndDepartments) {
  const fs::path dir = fresh_dir("stats");
  jsonl_write(dir / "pretrain.jsonl", {json{{"id", "p1"}, {"text", "高血压ab。"}, {"source", "百科"}, {"department", "内科"}},
                                       json{{"id", "p2"}, {"text", "佝偻病"}, {"source", "x"}, {"department", "儿科"}},
                                       json{{"id", "p3"}, {"text", "头痛"}, {"source", "x"}, {"department", "内科"}}});
  jsonl_write(dir / "sft.jsonl",
              {json{{"id", "s1"},
                    {"conversations", json::array({json{{"role", "user"}, {"content", "头痛怎么办"}},
                                                   json{{"role", "assistant"}, {"content", "休息。"}}})},
                    {"department", "内科"}}});
  jsonl_write(dir / "eval_mcq.jsonl", {json{{"id", "m1"}, {"exam_type", "医师考核"}, {"exam_class", "儿科"},
                                            {"exam_subject", "儿科"}, {"question", "选哪个"},
                                            {"option", {{"A", "甲"}, {"B", "乙"}}}, {"answer", "A"},
                                            {"question_type", "单项选择题"}}});
  const CorpusStats stats = compute_corpus_stats(dir);
  ASSERT_EQ(stats.splits.size(), 3u);
  EXPECT_EQ(stats.splits[0].file, "pretrain.jsonl");
  EXPECT_EQ(stats.splits[0].records, 3);
  EXPECT_EQ(stats.splits[0].chinese_chars, 3 + 3 + 2);  // "百科" is a source label, not text
  EXPECT_EQ(stats.splits[0].departments.at("内科"), 2);
  EXPECT_EQ(stats.splits[0].departments.at("儿科"), 1);
  EXPECT_EQ(stats.splits[1].file, "sft.jsonl");
  EXPECT_EQ(stats.splits[1].chinese_chars, 5 + 2);
  EXPECT_EQ(stats.splits[2].file, "eval_mcq.jsonl");
  EXPECT_EQ(stats.splits[2].chinese_chars, 3 + 2);  // question + options; the exam labels are not counted
  EXPECT_EQ(stats.splits[2].departments.at("儿科"), 1);
  const std::string table = format_corpus_stats(stats);
  EXPECT_NE(table.find("pretrain.jsonl"), std::string::npos);
  EXPECT_NE(table.find("total"), std::string::npos);
  EXPECT_NE(table.find("内科  2"), std::string::npos) << table;
  fs::remove_all(dir);
}

TEST(CorpusStats, DirectoryWithoutCorpusIsAnError) {
  const fs::path dir = fresh_dir("empty");
  EXPECT_THROW(compute_corpus_stats(dir), Error);
  EXPECT_THROW(compute_corpus_stats(dir / "absent"), Error);
  fs::remove_all(dir);
}
