// `stepwise data stats --tokenizer`: token counts per split equal the tokens of the records' text fields.
#include <gtest/gtest.h>

#include "data/corpus_stats.h"
#include "data/jsonl.h"
#include "tokens_fixture.h"

using namespace stepwise;

TEST(CorpusStatsTokens, CountsTokensOfTextFields) {
  const Tokenizer& tok = test::fixture_tokenizer();
  const fs::path dir = test::scratch_dir("stats_tokens");
  std::vector<json> docs = {{{"id", "a"}, {"text", "高血压患者应低盐饮食。"}, {"source", "x"}, {"department", "内科"}},
                            {{"id", "b"}, {"text", "咳嗽三天，伴发热。"}, {"source", "x"}, {"department", "内科"}}};
  jsonl_write(dir / "pretrain.jsonl", docs);
  const CorpusStats with = compute_corpus_stats(dir, &tok);
  ASSERT_EQ(with.splits.size(), 1u);
  EXPECT_TRUE(with.tokenizer_counted);
  const int64_t expected = static_cast<int64_t>(tok.encode_literal("高血压患者应低盐饮食。").size() +
                                                tok.encode_literal("咳嗽三天，伴发热。").size());
  EXPECT_EQ(with.splits[0].tokens, expected);
  EXPECT_NE(format_corpus_stats(with).find("tokens"), std::string::npos);
  const CorpusStats without = compute_corpus_stats(dir);
  EXPECT_FALSE(without.tokenizer_counted);
  EXPECT_EQ(format_corpus_stats(without).find("tokens"), std::string::npos);
}
