// Tests of CMB-style answer extraction on realistic model replies: phrasing variants, full-width letters, multi-choice
// sets, the whole-text fallback, replies with no letter (never a guess), and replies longer than std::regex survives.
#include <gtest/gtest.h>

#include "eval/answer_extraction.h"

using namespace stepwise::eval;

namespace {

constexpr QuestionType kSingle = QuestionType::single_choice;
constexpr QuestionType kMulti = QuestionType::multi_choice;

struct Case {
  const char* output;
  QuestionType type;
  const char* letters;
  ExtractionSource source;
};

const Case kCases[] = {
    // The answer pattern, each connector.
    {"答案：B", kSingle, "B", ExtractionSource::pattern},
    {"答案是C。", kSingle, "C", ExtractionSource::pattern},
    {"答案为：B", kSingle, "B", ExtractionSource::pattern},
    {"根据题干，患者出现典型的三多一少症状，应考虑糖尿病。因此正确选项为D。", kSingle, "D", ExtractionSource::pattern},
    {"正确选项是A，阿托品可以解除平滑肌痉挛。", kSingle, "A", ExtractionSource::pattern},
    {"这道题的答案应该是E，因为其余选项均不符合。", kSingle, "E", ExtractionSource::pattern},
    {"答案应该为B。", kSingle, "B", ExtractionSource::pattern},
    {"**答案：C**\n\n解析：急性阑尾炎最典型的症状是转移性右下腹痛。", kSingle, "C", ExtractionSource::pattern},
    // Single choice keeps the first letter of the capture, which ends at 。 or '.'.
    {"答案应该是E，因为选项A描述的是慢性病程。", kSingle, "E", ExtractionSource::pattern},
    {"答案是A. 因为B选项描述错误", kSingle, "A", ExtractionSource::pattern},
    // The pattern wins over letters elsewhere in the text (earlier, or inside words such as DNA).
    {"A、B、C、D都不完全正确，综合考虑，答案是D。", kSingle, "D", ExtractionSource::pattern},
    {"答案是B。患者DNA检测提示……", kSingle, "B", ExtractionSource::pattern},
    {"正确选项是B；但也有人认为答案是C", kSingle, "B", ExtractionSource::pattern},  // leftmost match
    // Full-width letters.
    {"答案：Ｃ", kSingle, "C", ExtractionSource::pattern},
    {"答案为ＡＣＥ。", kMulti, "ACE", ExtractionSource::pattern},
    // Multi-choice: the sorted unique set.
    {"答案：ABD", kMulti, "ABD", ExtractionSource::pattern},
    {"正确选项为：A、C、D。", kMulti, "ACD", ExtractionSource::pattern},
    {"答案是D，B，A", kMulti, "ABD", ExtractionSource::pattern},
    {"答案：B、B、A", kMulti, "AB", ExtractionSource::pattern},
    {"答案：\nA\nC", kMulti, "AC", ExtractionSource::pattern},  // re.S: the capture spans lines up to the end
    {"答案：B", kMulti, "B", ExtractionSource::pattern},
    // Fallback: no pattern (or a capture without letters), letters anywhere in the text.
    {"选B", kSingle, "B", ExtractionSource::fallback},
    {"B. 阿司匹林", kSingle, "B", ExtractionSource::fallback},
    {"A", kSingle, "A", ExtractionSource::fallback},
    {"答案: C", kSingle, "C", ExtractionSource::fallback},  // an ASCII colon is not one of CMB's connectors
    {"正确选项为以下内容。综合判断选C", kSingle, "C", ExtractionSource::fallback},
    {"故本题选择ＢＤ", kMulti, "BD", ExtractionSource::fallback},
    {"本题应选 C 和 A 两项", kMulti, "AC", ExtractionSource::fallback},
    // CMB's fallback takes any capital A-E, even inside "维生素B12": the first one wins for single choice.
    {"维生素B12缺乏导致巨幼细胞贫血，选D", kSingle, "B", ExtractionSource::fallback},
    // No letter: "" and never a guess.
    {"我无法确定这道题的答案，建议咨询专业医生。", kSingle, "", ExtractionSource::none},
    {"答案是b", kSingle, "", ExtractionSource::none},  // lower case is not an option letter
    {"", kSingle, "", ExtractionSource::none},
    {"答案是\xE5", kSingle, "", ExtractionSource::none},  // cut mid-character
    {"该患者最可能的诊断是急性心肌梗死，应立即行心电图检查。", kMulti, "", ExtractionSource::none},
};

}  // namespace

TEST(AnswerExtraction, RealisticReplies) {
  ASSERT_GE(std::size(kCases), 20u);
  for (const Case& c : kCases) {
    const ExtractedAnswer got = extract_answer(c.output, c.type);
    EXPECT_EQ(got.letters, c.letters) << "reply: " << c.output;
    EXPECT_EQ(got.source, c.source) << "reply: " << c.output << " source " << extraction_source_name(got.source);
  }
}

TEST(AnswerExtraction, OnlyTheItemsOptionLettersCount) {
  // Four options: "E" is no option letter, so neither the pattern nor the fallback finds one.
  EXPECT_EQ(extract_answer("答案：E", kSingle, "ABCD").letters, "");
  EXPECT_EQ(extract_answer("答案：E", kSingle, "ABCD").source, ExtractionSource::none);
  // A letter outside the options inside the capture is skipped, a valid one after it is kept.
  EXPECT_EQ(extract_answer("答案是E或C", kSingle, "ABCD").letters, "C");
}

TEST(AnswerExtraction, LongReplyIsHandled) {
  std::string reply;
  for (int i = 0; i < 20000; ++i) reply += "患者的病情需要综合分析";
  reply += "所以答案是C";
  const ExtractedAnswer got = extract_answer(reply, kSingle);
  EXPECT_EQ(got.letters, "C");
  EXPECT_EQ(got.source, ExtractionSource::pattern);
}

TEST(AnswerExtraction, ArbitraryBytesGiveOnlyValidLetters) {
  // Random bytes mixed with pieces of the pattern: the result is always "" or letters of the item's options.
  const std::string pieces[] = {"答案", "正确选项", "是", "：", "为", "应该", "。", ".", "A", "Ｃ", "E", "\xE7", "\x80"};
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int trial = 0; trial < 2000; ++trial) {
    std::string reply;
    const int parts = static_cast<int>(next() % 12);
    for (int p = 0; p < parts; ++p)
      reply += next() % 2 ? pieces[next() % std::size(pieces)] : std::string(1, static_cast<char>(next() >> 24));
    const QuestionType type = trial % 2 ? kSingle : kMulti;
    const ExtractedAnswer got = extract_answer(reply, type, "ABCD");
    EXPECT_EQ(got.letters.find_first_not_of("ABCD"), std::string::npos) << reply;
    EXPECT_EQ(got.letters.empty(), got.source == ExtractionSource::none) << reply;
    if (type == kSingle) {
      EXPECT_LE(got.letters.size(), 1u);
    }
  }
}
