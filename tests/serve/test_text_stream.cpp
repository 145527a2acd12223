// Incremental detokenisation: characters split over byte-fallback tokens are emitted only when complete, stop
// strings end the text before them (also when split across tokens), and a possible stop prefix is held back.
#include <gtest/gtest.h>

#include "serve/sampler.h"
#include "serve/text_stream.h"
#include "serve_fixture.h"

namespace stepwise {
namespace {

TEST(TextStream, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(complete_utf8_prefix("a\xE4\xBD"), 1u);           // 你 = E4 BD A0, last byte missing
  EXPECT_EQ(complete_utf8_prefix("a\xE4\xBD\xA0"), 4u);
  EXPECT_EQ(complete_utf8_prefix("a\xEF\xBF\xBD\xEF\xBF\xBD"), 1u);   // replacement characters wait
}

TEST(TextStream, ByteFallbackCharactersAreEmittedWhole) {
  const Tokenizer tok = Tokenizer::load(test::tokenizer_dir());
  const std::string text = "头痛😀好";   // the emoji is not in the fixtures: byte-fallback pieces
  const std::vector<int32_t> ids = tok.encode(text);
  ASSERT_GT(ids.size(), 4u);
  TextStream ts(tok, {});
  std::string out;
  int64_t held = 0;
  for (int32_t id : ids) {
    const std::string piece = ts.push(id);
    held += piece.empty();
    EXPECT_EQ(complete_utf8_prefix(piece), piece.size()) << "broken UTF-8 emitted: " << piece;
    out += piece;
  }
  out += ts.flush();
  EXPECT_EQ(out, text);
  EXPECT_GE(held, 3) << "the emoji's first three byte pieces wait for the fourth";
}

TEST(TextStream, StopStringsAreCutAndHeldBack) {
  const Tokenizer tok = Tokenizer::load(test::tokenizer_dir());
  const std::string text = "患者发热。医生建议休息，多喝水。";
  const std::vector<int32_t> ids = tok.encode(text);
  TextStream ts(tok, {"建议休息", "never appears"});
  std::string out;
  for (int32_t id : ids) {
    out += ts.push(id);
    EXPECT_EQ(out.find("建议"), std::string::npos) << "a stop-string prefix was emitted early: " << out;
    if (ts.stopped()) break;
  }
  EXPECT_TRUE(ts.stopped());
  EXPECT_EQ(out, "患者发热。医生");
  EXPECT_EQ(ts.push(ids.back()), "");

  // a held-back prefix that never completes is released by flush
  TextStream partial(tok, {"医生说"});
  std::string got;
  for (int32_t id : tok.encode("患者看医生")) got += partial.push(id);
  EXPECT_FALSE(partial.stopped());
  got += partial.flush();
  EXPECT_EQ(got, "患者看医生");
}

TEST(Sampler, GreedyTopKTopPAndSeeds) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 2.0f};
  SamplingParams p;
  p.temperature = 0;
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits.data(), 5, p, rng), 1);   // tie goes to the lower id
  p.temperature = 1.0;
  p.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits.data(), 5, p, rng), 1);
  p.top_k = 0;
  p.top_p = 0.5;   // candidates 1, 4 (stable order) reach 0.5 -> only those two
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sample_token(logits.data(), 5, p, rng);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  p.top_p = 1.0;
  std::mt19937_64 a(99), b(99);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 30; ++i) {
    sa.push_back(sample_token(logits.data(), 5, p, a));
    sb.push_back(sample_token(logits.data(), 5, p, b));
  }
  EXPECT_EQ(sa, sb);
  const TokenLogprob lp = token_logprob(logits.data(), 5, 2, 3);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);
  EXPECT_EQ(lp.top[1].first, 4);
  EXPECT_EQ(lp.top[2].first, 2);
  EXPECT_DOUBLE_EQ(lp.logprob, lp.top[2].second);
}

}  // namespace
}  // namespace stepwise
