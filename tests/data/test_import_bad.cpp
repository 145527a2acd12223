// Tests of bad records: each required field missing, empty or mistyped, answers outside the options, invalid JSON
// or CSV, repeated ids. In fail mode the error names FILE:LINE and the field; in skip mode the record is counted
// and left out while the good record beside it is kept.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/import.h"
#include "test_import_util.h"

using namespace stepwise;
using namespace stepwise::import_test;

namespace {

struct BadCase {
  std::string name;      // test name and input file stem
  ImportFormat format;
  std::string good;      // a good record (JSONL: line 1; CSV: after the bad one)
  std::string bad;       // the bad record (JSONL: line 2; CSV: line 2, right after the header)
  std::string expected;  // fragment of the message after "FILE:2: "
};

const char* kChimedGood = R"({"id":1,"question_content":"胃痛","answers":[{"adopted":"True","answer":"吃药"}]})";
const char* kShareGood = R"({"conversations":[{"from":"human","value":"问"},{"from":"gpt","value":"答"}]})";
const char* kAlpacaGood = R"({"instruction":"解释","input":"发热","output":"体温升高"})";
const char* kLegacyGood = R"({"question":"问","response_chosen":"好","response_rejected":"坏"})";
const char* kTextGood = "一篇文档。";
const char* kCmbGood =
    R"({"id":"q1","question":"题","option":{"A":"甲","B":"乙"},"answer":"A","question_type":"单项选择题"})";
const char* kMedqaGood = R"({"question":"题","options":{"A":"甲","B":"乙"},"answer":"乙","answer_idx":"B"})";
const char* kCsvHeader = "Question,Options,Answer,Disease Group,Clinical Department";
const char* kCsvGood = "问题,\"A 甲\nB 乙\",A,组,科";

std::vector<BadCase> bad_cases() {
  using F = ImportFormat;
  return {
      {"chimed_invalid_json", F::chimed1, kChimedGood, R"({"id":2,"question_content":)", "invalid JSON"},
      {"chimed_not_object", F::chimed1, kChimedGood, R"([1,2])", "record is not a JSON object"},
      {"chimed_question_missing", F::chimed1, kChimedGood, R"({"id":2,"answers":[{"adopted":"True","answer":"a"}]})",
       "field 'question_content' is missing"},
      {"chimed_question_empty", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":"  ","answers":[{"adopted":"True","answer":"a"}]})",
       "field 'question_content' is empty"},
      {"chimed_question_type", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":5,"answers":[{"adopted":"True","answer":"a"}]})",
       "field 'question_content' has the wrong type: expected string, got number"},
      {"chimed_answers_missing", F::chimed1, kChimedGood, R"({"id":2,"question_content":"问"})",
       "field 'answers' is missing"},
      {"chimed_answers_empty", F::chimed1, kChimedGood, R"({"id":2,"question_content":"问","answers":[]})",
       "field 'answers' is empty"},
      {"chimed_answers_type", F::chimed1, kChimedGood, R"({"id":2,"question_content":"问","answers":"好"})",
       "field 'answers' has the wrong type"},
      {"chimed_answer_text_missing", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":"问","answers":[{"adopted":"True"}]})", "field 'answers[0].answer' is missing"},
      {"chimed_adopted_missing", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":"问","answers":[{"answer":"a"}]})", "field 'answers[0].adopted' is missing"},
      {"chimed_adopted_value", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":"问","answers":[{"adopted":"True","answer":"a"},{"adopted":"yes","answer":"b"}]})",
       "field 'answers[1].adopted' is neither \"True\" nor \"False\""},
      {"chimed_patient_infos_type", F::chimed1, kChimedGood,
       R"({"id":2,"question_content":"问","patient_infos":[3],"answers":[{"adopted":"True","answer":"a"}]})",
       "field 'patient_infos[0]' has the wrong type"},
      {"chimed_id_type", F::chimed1, kChimedGood,
       R"({"id":{},"question_content":"问","answers":[{"adopted":"True","answer":"a"}]})",
       "field 'id' has the wrong type"},
      {"chimed_id_repeated", F::chimed1, kChimedGood,
       R"({"id":"1","question_content":"问","answers":[{"adopted":"True","answer":"a"}]})",
       "field 'id' repeats the id of an earlier record: '1' (first at line 1)"},

      {"sharegpt_conversations_missing", F::sharegpt, kShareGood, R"({"id":"x"})",
       "field 'conversations' is missing"},
      {"sharegpt_value_empty", F::sharegpt, kShareGood,
       R"({"conversations":[{"from":"human","value":"问"},{"from":"gpt","value":""}]})",
       "field 'conversations[1].value' is empty"},
      {"sharegpt_from_unknown", F::sharegpt, kShareGood,
       R"({"conversations":[{"from":"bot","value":"问"},{"from":"gpt","value":"答"}]})",
       "field 'conversations[0].from' is not human, gpt or system"},
      {"sharegpt_turn_order", F::sharegpt, kShareGood,
       R"({"conversations":[{"from":"gpt","value":"答"},{"from":"human","value":"问"}]})",
       "field 'conversations' breaks the turn order (system?, then human/gpt alternating): turn 0 is 'gpt'"},
      {"sharegpt_no_final_answer", F::sharegpt, kShareGood, R"({"conversations":[{"from":"human","value":"问"}]})",
       "field 'conversations' does not end with a gpt turn"},
      {"sharegpt_rejected_missing", F::sharegpt, kShareGood,
       R"({"conversations":[{"from":"human","value":"问"}],"chosen":"好"})", "field 'rejected' is missing"},
      {"sharegpt_chosen_type", F::sharegpt, kShareGood,
       R"({"conversations":[{"from":"human","value":"问"}],"chosen":5,"rejected":"坏"})",
       "field 'chosen' has the wrong type"},

      {"alpaca_instruction_missing", F::alpaca, kAlpacaGood, R"({"input":"x","output":"y"})",
       "field 'instruction' is missing"},
      {"alpaca_output_empty", F::alpaca, kAlpacaGood, R"({"instruction":"x","output":""})", "field 'output' is empty"},
      {"alpaca_input_type", F::alpaca, kAlpacaGood, R"({"instruction":"x","input":3,"output":"y"})",
       "field 'input' has the wrong type"},
      {"alpaca_history_pair", F::alpaca, kAlpacaGood, R"({"instruction":"x","output":"y","history":[["q"]]})",
       "field 'history[0]' has the wrong type: expected [question, answer] pair"},
      {"alpaca_history_empty_answer", F::alpaca, kAlpacaGood,
       R"({"instruction":"x","output":"y","history":[["q",""]]})", "field 'history[0][1]' is empty"},

      {"legacy_question_missing", F::preference_legacy, kLegacyGood,
       R"({"response_chosen":"好","response_rejected":"坏"})", "field 'question' is missing"},
      {"legacy_chosen_empty", F::preference_legacy, kLegacyGood,
       R"({"question":"问","response_chosen":"","response_rejected":"坏"})", "field 'response_chosen' is empty"},
      {"legacy_rejected_type", F::preference_legacy, kLegacyGood,
       R"({"question":"问","response_chosen":"好","response_rejected":["坏"]})",
       "field 'response_rejected' has the wrong type: expected string, got array"},

      {"text_json_text_missing", F::text, kTextGood, R"({"txt":"文档"})", "field 'text' is missing"},
      {"text_json_text_empty", F::text, kTextGood, R"({"text":""})", "field 'text' is empty"},
      {"text_json_text_type", F::text, kTextGood, R"({"text":7})", "field 'text' has the wrong type"},
      {"text_invalid_json", F::text, kTextGood, R"({"text":"未完)", "invalid JSON"},
      {"text_invalid_utf8", F::text, kTextGood, "\xE9\xAB\x98\xFF", "line is not valid UTF-8"},

      {"cmb_question_missing", F::cmb, kCmbGood,
       R"({"option":{"A":"甲","B":"乙"},"answer":"A","question_type":"单项选择题"})", "field 'question' is missing"},
      {"cmb_option_missing", F::cmb, kCmbGood, R"({"question":"题","answer":"A","question_type":"单项选择题"})",
       "field 'option' is missing"},
      {"cmb_option_empty", F::cmb, kCmbGood, R"({"question":"题","option":{},"answer":"A","question_type":"单项选择题"})",
       "field 'option' is empty"},
      {"cmb_option_type", F::cmb, kCmbGood,
       R"({"question":"题","option":["甲","乙"],"answer":"A","question_type":"单项选择题"})",
       "field 'option' has the wrong type: expected object, got array"},
      {"cmb_option_text_empty", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":" "},"answer":"A","question_type":"单项选择题"})",
       "field 'option.B' is empty"},
      {"cmb_option_key", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","b":"乙"},"answer":"A","question_type":"单项选择题"})",
       "field 'option' has a key that is not a letter A-Z: b"},
      {"cmb_answer_missing", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"question_type":"单项选择题"})", "field 'answer' is missing"},
      {"cmb_answer_not_an_option", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"F","question_type":"单项选择题"})",
       "field 'answer' names a letter not among the options: 'F' (options: A, B)"},
      {"cmb_answer_lowercase", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"a","question_type":"单项选择题"})",
       "field 'answer' is not a string of option letters"},
      {"cmb_answer_repeated", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"AA","question_type":"多项选择题"})",
       "field 'answer' repeats a letter"},
      {"cmb_question_type_missing", F::cmb, kCmbGood, R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"A"})",
       "field 'question_type' is missing"},
      {"cmb_question_type_value", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"A","question_type":"判断题"})",
       "field 'question_type' is neither 单项选择题 nor 多项选择题"},
      {"cmb_single_with_two_letters", F::cmb, kCmbGood,
       R"({"question":"题","option":{"A":"甲","B":"乙"},"answer":"AB","question_type":"单项选择题"})",
       "field 'answer' has several letters for a 单项选择题"},
      {"cmb_id_repeated", F::cmb, kCmbGood,
       R"({"id":"q1","question":"题","option":{"A":"甲","B":"乙"},"answer":"A","question_type":"单项选择题"})",
       "field 'id' repeats the id of an earlier record"},

      {"medqa_question_empty", F::medqa, kMedqaGood,
       R"({"question":"","options":{"A":"甲","B":"乙"},"answer":"乙","answer_idx":"B"})", "field 'question' is empty"},
      {"medqa_options_missing", F::medqa, kMedqaGood, R"({"question":"题","answer":"乙","answer_idx":"B"})",
       "field 'options' is missing"},
      {"medqa_answer_idx_missing", F::medqa, kMedqaGood, R"({"question":"题","options":{"A":"甲","B":"乙"},"answer":"乙"})",
       "field 'answer_idx' is missing"},
      {"medqa_answer_idx_not_an_option", F::medqa, kMedqaGood,
       R"({"question":"题","options":{"A":"甲","B":"乙"},"answer":"乙","answer_idx":"E"})",
       "field 'answer_idx' names a letter not among the options"},
      {"medqa_answer_mismatch", F::medqa, kMedqaGood,
       R"({"question":"题","options":{"A":"甲","B":"乙"},"answer":"甲","answer_idx":"B"})",
       "field 'answer' differs from the option that 'answer_idx' names"},
      {"medqa_answer_missing", F::medqa, kMedqaGood, R"({"question":"题","options":{"A":"甲","B":"乙"},"answer_idx":"B"})",
       "field 'answer' is missing"},

      {"cmexam_question_empty", F::cmexam, kCsvGood, ",\"A 甲\nB 乙\",A,组,科", "field 'Question' is empty"},
      {"cmexam_options_line", F::cmexam, kCsvGood, "问题,甲乙,A,组,科",
       "field 'Options' has a line that is not 'LETTER text': '甲乙'"},
      {"cmexam_options_repeated_letter", F::cmexam, kCsvGood, "问题,\"A 甲\nA 乙\",A,组,科",
       "field 'Options' repeats a letter"},
      {"cmexam_answer_not_an_option", F::cmexam, kCsvGood, "问题,\"A 甲\nB 乙\",C,组,科",
       "field 'Answer' names a letter not among the options"},
      {"cmexam_answer_empty", F::cmexam, kCsvGood, "问题,\"A 甲\nB 乙\",,组,科", "field 'Answer' is empty"},
      {"cmexam_field_count", F::cmexam, kCsvGood, "问题,A", "invalid CSV: wrong number of fields: 2 fields, the header has 5"},
      {"cmexam_quote_in_plain_field", F::cmexam, kCsvGood, "问\"题,甲,A,组,科",
       "invalid CSV: quote inside an unquoted field"},
      {"cmexam_text_after_quote", F::cmexam, kCsvGood, "\"问题\"x,甲,A,组,科", "invalid CSV: text after a closing quote"},
      {"cmexam_invalid_utf8", F::cmexam, kCsvGood, "\xFF\xFE,\"A 甲\nB 乙\",A,组,科", "field 'Question' is not valid UTF-8"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

// Writes the case's input; returns its path. JSONL: good on line 1, bad on line 2. CSV: header, bad (line 2), good.
fs::path write_case(const fs::path& dir, const BadCase& c) {
  const bool csv = c.format == ImportFormat::cmexam;
  const fs::path path = dir / (c.name + (csv ? ".csv" : ".jsonl"));
  write_file_atomic(path, csv ? std::string(kCsvHeader) + "\n" + c.bad + "\n" + c.good + "\n" : c.good + "\n" + c.bad + "\n");
  return path;
}

class ImportBad : public testing::TestWithParam<BadCase> {};

TEST_P(ImportBad, FailModeNamesFileLineAndField) {
  const BadCase& c = GetParam();
  const fs::path dir = scratch_dir();
  const fs::path in = write_case(dir, c);
  try {
    import_records(c.format, in, {});
    FAIL() << "expected an error for " << c.name;
  } catch (const Error& e) {
    const std::string expected = cat(in.string(), ":2: ", c.expected);
    EXPECT_TRUE(contains(e.what(), expected)) << "message: " << e.what() << "\nexpected: " << expected;
  }
  fs::remove_all(dir);
}

TEST_P(ImportBad, SkipModeKeepsTheGoodRecordAndCountsTheBadOne) {
  const BadCase& c = GetParam();
  const fs::path dir = scratch_dir();
  const fs::path in = write_case(dir, c);
  ImportOptions options;
  options.on_bad_record = BadRecordPolicy::skip;
  const ImportResult r = import_records(c.format, in, options);
  EXPECT_EQ(r.stats.records_in, 2);
  EXPECT_EQ(r.stats.skipped, 1);
  EXPECT_EQ(r.main.size(), 1u);
  ASSERT_EQ(r.stats.skipped_by_reason.size(), 1u);
  EXPECT_TRUE(contains(c.expected, r.stats.skipped_by_reason.begin()->first))
      << "reason: " << r.stats.skipped_by_reason.begin()->first;
  ASSERT_EQ(r.stats.skip_locations.size(), 1u);
  EXPECT_TRUE(contains(r.stats.skip_locations[0], cat(in.string(), ":2: ", c.expected)));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(EveryField, ImportBad, testing::ValuesIn(bad_cases()),
                         [](const testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ImportSkip, CountsPerReasonAndFirstLocations) {
  ImportOptions options;
  options.on_bad_record = BadRecordPolicy::skip;
  options.max_skip_locations = 3;
  const fs::path in = fixture("cmb_bad.jsonl");
  const ImportResult r = import_records(ImportFormat::cmb, in, options);
  EXPECT_EQ(r.stats.records_in, 7);
  EXPECT_EQ(r.stats.main_out, 2);
  EXPECT_EQ(r.stats.skipped, 5);
  const std::map<std::string, int64_t> expected = {
      {"invalid JSON", 1},
      {"field 'answer' names a letter not among the options", 2},
      {"field 'question' is missing", 1},
      {"field 'id' repeats the id of an earlier record", 1}};
  EXPECT_EQ(r.stats.skipped_by_reason, expected);
  ASSERT_EQ(r.stats.skip_locations.size(), 3u);
  EXPECT_TRUE(contains(r.stats.skip_locations[0], in.string() + ":2: invalid JSON"));
  EXPECT_TRUE(contains(r.stats.skip_locations[1], in.string() + ":3: field 'answer'"));
  EXPECT_TRUE(contains(r.stats.skip_locations[2], in.string() + ":4: field 'question' is missing"));
  ASSERT_EQ(r.main.size(), 2u);
  EXPECT_EQ(r.main[0]["id"], "b1");
  EXPECT_EQ(r.main[1]["id"], "b5");

  EXPECT_EQ(import_summary_line(ImportFormat::cmb, "in.jsonl", r.stats),
            "cmb in.jsonl: 7 records in, 2 mcq out, 5 skipped");
  const std::vector<std::string> report = import_skip_report(r.stats);
  ASSERT_EQ(report.size(), 4u + 3u);
  EXPECT_EQ(report[0], "skipped 2: field 'answer' names a letter not among the options");
  EXPECT_EQ(report[3], "skipped 1: invalid JSON");
  EXPECT_EQ(report[4], "  e.g. " + r.stats.skip_locations[0]);
}

TEST(ImportSkip, CsvRecordsAreLocatedByTheLineWhereTheyStart) {
  ImportOptions options;
  options.on_bad_record = BadRecordPolicy::skip;
  const fs::path in = fixture("cmexam_bad.csv");
  const ImportResult r = import_records(ImportFormat::cmexam, in, options);
  EXPECT_EQ(r.stats.records_in, 4);
  EXPECT_EQ(r.stats.skipped, 2);
  ASSERT_EQ(r.main.size(), 2u);
  EXPECT_EQ(r.main[0]["id"], "cmexam_bad-2");
  EXPECT_EQ(r.main[1]["id"], "cmexam_bad-5");
  ASSERT_EQ(r.stats.skip_locations.size(), 2u);
  EXPECT_TRUE(contains(r.stats.skip_locations[0], in.string() + ":4: invalid CSV: wrong number of fields"));
  EXPECT_TRUE(contains(r.stats.skip_locations[1], in.string() + ":7: invalid CSV: unterminated quoted field"));
}

TEST(ImportCsvHeader, MissingColumnIsAnErrorEvenInSkipMode) {
  const fs::path dir = scratch_dir();
  write_file_atomic(dir / "h.csv", "Question,Options,Explanation\n问题,\"A 甲\nB 乙\",无\n");
  ImportOptions options;
  options.on_bad_record = BadRecordPolicy::skip;
  try {
    import_records(ImportFormat::cmexam, dir / "h.csv", options);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "h.csv:1: CSV header lacks the column 'Answer'")) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ImportAtomic, FailureMidWayKeepsOldOutputsAndLeavesNoTempFile) {
  const fs::path dir = scratch_dir();
  write_file_atomic(dir / "mcq.jsonl", "old mcq\n");
  // two good records are converted (and streamed into the temporary file) before line 3 fails
  EXPECT_THROW(import_to_files(ImportFormat::cmb, fixture("cmb_bad.jsonl"), dir / "mcq.jsonl", std::nullopt, {}),
               Error);
  EXPECT_EQ(read_file(dir / "mcq.jsonl"), "old mcq\n");
  EXPECT_EQ(temp_files_in(dir), 0);

  // two outputs: both keep their old content when a record after good ones is bad
  write_file_atomic(dir / "sft.jsonl", "old sft\n");
  write_file_atomic(dir / "pairs.jsonl", "old pairs\n");
  write_file_atomic(dir / "chimed.jsonl", read_file(fixture("chimed1.jsonl")) + "{\"id\":9,\"answers\":[]}\n");
  try {
    import_to_files(ImportFormat::chimed1, dir / "chimed.jsonl", dir / "sft.jsonl", dir / "pairs.jsonl", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "chimed.jsonl:5: field 'question_content' is missing")) << e.what();
  }
  EXPECT_EQ(read_file(dir / "sft.jsonl"), "old sft\n");
  EXPECT_EQ(read_file(dir / "pairs.jsonl"), "old pairs\n");
  EXPECT_EQ(temp_files_in(dir), 0);

  // an output that did not exist is not created
  EXPECT_THROW(import_to_files(ImportFormat::cmb, fixture("cmb_bad.jsonl"), dir / "new.jsonl", std::nullopt, {}),
               Error);
  EXPECT_FALSE(fs::exists(dir / "new.jsonl"));
  EXPECT_EQ(temp_files_in(dir), 0);
  fs::remove_all(dir);
}

TEST(ImportAtomic, MissingInputIsAnErrorAndTouchesNothing) {
  const fs::path dir = scratch_dir();
  write_file_atomic(dir / "out.jsonl", "old\n");
  try {
    import_to_files(ImportFormat::medqa, dir / "absent.jsonl", dir / "out.jsonl", std::nullopt, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "absent.jsonl: cannot open")) << e.what();
  }
  EXPECT_EQ(read_file(dir / "out.jsonl"), "old\n");
  EXPECT_EQ(temp_files_in(dir), 0);
  fs::remove_all(dir);
}

}  // namespace
