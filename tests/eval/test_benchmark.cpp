// Tests of benchmark loading (typed records, normalised answers, FILE:LINE + field on every bad record) and of the
// prompts built for generation and likelihood scoring.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "eval/benchmark.h"
#include "eval_fixtures.h"

using namespace stepwise;
using namespace stepwise::eval;
using stepwise::eval::testing::cmb_item;
using stepwise::eval::testing::cmb_record;
using stepwise::eval::testing::TempPath;

namespace {

// Writes `records` to a JSONL file, then expects loading it to fail with a message holding FILE:LINE and `part`.
void expect_mcq_error(const std::vector<json>& records, int line, const std::string& part) {
  TempPath file("bad.jsonl");
  jsonl_write(file.path(), records);
  try {
    load_mcq_benchmark(file.path());
    ADD_FAILURE() << "no error; expected " << part;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(cat(file.path().string(), ":", line, ":")), std::string::npos) << message;
    EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

}  // namespace

TEST(Benchmark, LoadsCmbRecords) {
  TempPath file("mcq.jsonl");
  json multi = cmb_record("q2", "内科", "DBA", "多项选择题");
  json padded = cmb_record("q3", "外科", "Ｃ");
  padded["option"]["E"] = "";  // CMB pads four-option questions with an empty E
  json numbered = cmb_record("", "外科", "A");
  numbered["id"] = 17;
  json unnamed = cmb_record("", "儿科", "B");
  unnamed.erase("id");
  jsonl_write(file.path(), {cmb_record("q1", "内科", "A"), multi, padded, numbered, unnamed});

  const std::vector<McqItem> items = load_mcq_benchmark(file.path());
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].id, "q1");
  EXPECT_EQ(items[0].exam_subject, "内科");
  EXPECT_EQ(items[0].option_letters(), "ABCDE");
  EXPECT_EQ(items[0].options[3].text, "急性心包炎");
  EXPECT_EQ(items[0].type, QuestionType::single_choice);
  EXPECT_EQ(items[1].answer, "ABD");  // sorted
  EXPECT_EQ(items[1].type, QuestionType::multi_choice);
  EXPECT_EQ(items[2].answer, "C");  // full-width folded
  EXPECT_EQ(items[2].option_letters(), "ABCD");
  EXPECT_EQ(items[3].id, "17");
  EXPECT_EQ(items[4].id, "line 5");
  EXPECT_EQ(items[4].line, 5);
}

TEST(Benchmark, BadMcqRecordsNameFileLineAndField) {
  const json good = cmb_record("q1", "内科", "A");
  json no_option_e = cmb_record("q2", "内科", "E");
  no_option_e["option"].erase("E");
  expect_mcq_error({good, no_option_e}, 2, "field 'answer' names option E but field 'option' has no E");

  json empty_question = cmb_record("q2", "内科", "A");
  empty_question["question"] = "  ";
  expect_mcq_error({good, empty_question}, 2, "field 'question' is empty");

  json no_question = cmb_record("q2", "内科", "A");
  no_question.erase("question");
  expect_mcq_error({good, no_question}, 2, "missing field 'question'");

  expect_mcq_error({good, good, cmb_record("q3", "内科", "A", "判断题")}, 3, "field 'question_type' is '判断题'");
  expect_mcq_error({cmb_record("q1", "内科", "AB")}, 1, "but question_type is 单项选择题");
  expect_mcq_error({cmb_record("q1", "内科", "选D")}, 1, "field 'answer' is '选D'");
  expect_mcq_error({cmb_record("q1", "内科", "")}, 1, "field 'answer' is empty");
  expect_mcq_error({good, cmb_record("q1", "外科", "B")}, 2, "field 'id' 'q1' repeats the id of line 1");

  json bad_key = cmb_record("q1", "内科", "A");
  bad_key["option"]["F"] = "其他";
  expect_mcq_error({bad_key}, 1, "field 'option' has key 'F'");

  json not_text = cmb_record("q1", "内科", "A");
  not_text["option"]["B"] = 3;
  expect_mcq_error({not_text}, 1, "field 'option.B' must be a string");

  json bad_subject = cmb_record("q1", "内科", "A");
  bad_subject["exam_subject"] = json::array();
  expect_mcq_error({bad_subject}, 1, "field 'exam_subject' must be a string");

  expect_mcq_error({good, json::array({1, 2})}, 2, "a record must be a JSON object");
}

TEST(Benchmark, QaRecords) {
  TempPath file("qa.jsonl");
  jsonl_write(file.path(), {{{"id", "a1"}, {"question", "高血压患者饮食上要注意什么？"}, {"answer", "低盐低脂饮食。"}},
                            {{"id", "a2"}, {"question", "感冒发烧怎么办？"}, {"answer", ""}}});
  try {
    load_qa_benchmark(file.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.path().string() + ":2: field 'answer' is empty"), std::string::npos)
        << e.what();
  }
  jsonl_write(file.path(), {{{"id", "a1"}, {"question", "高血压患者饮食上要注意什么？"}, {"answer", "低盐低脂饮食。"}}});
  const std::vector<QaItem> items = load_qa_benchmark(file.path());
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].answer, "低盐低脂饮食。");
}

TEST(Benchmark, DetectsKindFromFirstRecord) {
  TempPath file("kind.jsonl");
  jsonl_write(file.path(), {cmb_record("q1", "内科", "A")});
  EXPECT_EQ(detect_benchmark_kind(file.path()), BenchmarkKind::mcq);
  jsonl_write(file.path(), {{{"question", "头痛怎么办？"}, {"answer", "休息。"}}, {{"broken", true}}});
  EXPECT_EQ(detect_benchmark_kind(file.path()), BenchmarkKind::qa);
  jsonl_write(file.path(), {{{"text", "一段预训练文本"}}});
  try {
    detect_benchmark_kind(file.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.path().string() + ":1: neither"), std::string::npos) << e.what();
  }
}

TEST(Benchmark, EmptyFileIsAnError) {
  TempPath file("empty.jsonl");
  write_file_atomic(file.path(), "\n");
  EXPECT_THROW(load_mcq_benchmark(file.path()), Error);
}

TEST(Prompt, GenerationPromptListsOptionsAndEndsWithAnswerCue) {
  const McqItem single = cmb_item("q1", "内科", "A");
  const std::string prompt = mcq_prompt(single);
  EXPECT_EQ(prompt.find("以下是中国医师考试执业医师考试中的一道单项选择题（科目：内科）"), 0u) << prompt;
  EXPECT_NE(prompt.find(single.question + "\n"), std::string::npos);
  EXPECT_NE(prompt.find("\nA. 急性心肌梗死\nB. 主动脉夹层\nC. 肺栓塞\nD. 急性心包炎\nE. 气胸\n答案："), std::string::npos)
      << prompt;
  EXPECT_EQ(prompt.substr(prompt.size() - std::string("答案：").size()), "答案：");
  const std::string multi = mcq_prompt(cmb_item("q2", "内科", "AB", "多项选择题"));
  EXPECT_NE(multi.find("多项选择题"), std::string::npos);
  EXPECT_NE(multi.find("所有正确选项"), std::string::npos);
}

TEST(Prompt, LikelihoodContinuations) {
  const McqItem item = cmb_item("q1", "内科", "A");
  EXPECT_EQ(mcq_continuations(item), (std::vector<std::string>{"A", "B", "C", "D", "E"}));
  EXPECT_EQ(mcq_continuations(item, ContinuationStyle::option_text),
            (std::vector<std::string>{"急性心肌梗死", "主动脉夹层", "肺栓塞", "急性心包炎", "气胸"}));
}
