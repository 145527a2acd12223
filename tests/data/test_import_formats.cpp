// Tests of every import format on good records: the written JSONL must equal, byte for byte, the hand-written
// canonical records in fixtures/import/expected/ (sorted keys, UTF-8 unescaped), in memory and through files.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/import.h"
#include "test_import_util.h"

using namespace stepwise;
using namespace stepwise::import_test;

namespace {

struct GoodCase {
  ImportFormat format;
  std::string input;      // fixture file name
  std::string main;       // expected main output (fixtures/import/expected/...)
  std::string preference; // expected preference output, "" when the format yields none
  int64_t records_in;
};

void PrintTo(const GoodCase& c, std::ostream* os) { *os << c.input; }

class ImportGood : public testing::TestWithParam<GoodCase> {};

TEST_P(ImportGood, FilesEqualExpectedCanonicalRecords) {
  const GoodCase& c = GetParam();
  const fs::path dir = scratch_dir();
  std::optional<fs::path> preference_out;
  if (!c.preference.empty()) preference_out = dir / "preference.jsonl";
  const ImportStats stats = import_to_files(c.format, fixture(c.input), dir / "main.jsonl", preference_out, {});
  EXPECT_EQ(read_file(dir / "main.jsonl"), read_file(fixture("expected/" + c.main)));
  if (preference_out) {
    EXPECT_EQ(read_file(*preference_out), read_file(fixture("expected/" + c.preference)));
  }
  EXPECT_EQ(stats.records_in, c.records_in);
  EXPECT_EQ(stats.skipped, 0);
  EXPECT_EQ(temp_files_in(dir), 0);
  fs::remove_all(dir);
}

TEST_P(ImportGood, InMemoryRecordsEqualExpected) {
  const GoodCase& c = GetParam();
  const ImportResult result = import_records(c.format, fixture(c.input), {});
  EXPECT_EQ(result.main, jsonl_read(fixture("expected/" + c.main)));
  if (!c.preference.empty()) {
    EXPECT_EQ(result.preference, jsonl_read(fixture("expected/" + c.preference)));
  }
  EXPECT_EQ(result.stats.main_out, static_cast<int64_t>(result.main.size()));
  EXPECT_EQ(result.stats.preference_out, static_cast<int64_t>(result.preference.size()));
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, ImportGood,
    testing::Values(
        GoodCase{ImportFormat::chimed1, "chimed1.jsonl", "chimed1.sft.jsonl", "chimed1.preference.jsonl", 3},
        GoodCase{ImportFormat::sharegpt, "sharegpt.jsonl", "sharegpt.sft.jsonl", "sharegpt.preference.jsonl", 4},
        GoodCase{ImportFormat::alpaca, "alpaca.jsonl", "alpaca.sft.jsonl", "", 2},
        GoodCase{ImportFormat::preference_legacy, "preference_legacy.jsonl", "preference_legacy.preference.jsonl", "",
                 2},
        GoodCase{ImportFormat::text, "text.txt", "text.pretrain.jsonl", "", 4},
        GoodCase{ImportFormat::cmb, "cmb.jsonl", "cmb.mcq.jsonl", "", 2},
        GoodCase{ImportFormat::cmexam, "cmexam.csv", "cmexam.mcq.jsonl", "", 2},
        GoodCase{ImportFormat::medqa, "medqa.jsonl", "medqa.mcq.jsonl", "", 1}),
    [](const testing::TestParamInfo<GoodCase>& info) {
      std::string name(import_format_name(info.param.format));
      for (char& ch : name)
        if (ch == '-') ch = '_';
      return name;
    });

TEST(ImportChimed, UserTurnJoinsTitlePatientFactsAndQuestion) {
  const ImportResult r = import_records(ImportFormat::chimed1, fixture("chimed1.jsonl"), {});
  ASSERT_EQ(r.main.size(), 2u);
  EXPECT_EQ(r.main[0]["conversations"][0]["content"],
            "胃痛怎么办\n患者信息：性别：女，年龄：35岁\n最近一周饭后胃痛，伴有反酸，该怎么治疗？");
  // the title "孩子发烧" already opens question_content, so it is not repeated
  EXPECT_EQ(r.main[1]["conversations"][0]["content"], "孩子发烧38.5度怎么办？");
  EXPECT_EQ(r.stats.without_output, 1);  // record 1003 has no adopted answer
}

TEST(ImportChimed, DepartmentTopLevel) {
  ImportOptions options;
  options.department_level = DepartmentLevel::top;
  const ImportResult r = import_records(ImportFormat::chimed1, fixture("chimed1.jsonl"), options);
  ASSERT_EQ(r.main.size(), 2u);
  EXPECT_EQ(r.main[0]["department"], "内科");
  EXPECT_EQ(r.main[1]["department"], "儿科");
}

TEST(ImportChimed, PairsWithoutPreferenceOutputAreCountedNotWritten) {
  const fs::path dir = scratch_dir();
  const ImportStats stats = import_to_files(ImportFormat::chimed1, fixture("chimed1.jsonl"), dir / "sft.jsonl",
                                            std::nullopt, {});
  EXPECT_EQ(stats.main_out, 2);
  EXPECT_EQ(stats.preference_out, 0);
  EXPECT_EQ(stats.preference_dropped, 3);
  EXPECT_EQ(read_file(dir / "sft.jsonl"), read_file(fixture("expected/chimed1.sft.jsonl")));
  EXPECT_TRUE(contains(import_summary_line(ImportFormat::chimed1, "x.jsonl", stats), "3 preference pairs not written"));
  fs::remove_all(dir);
}

TEST(ImportShareGpt, PreferenceRecordWithoutPreferenceOutputIsAnError) {
  const fs::path dir = scratch_dir();
  try {
    import_to_files(ImportFormat::sharegpt, fixture("sharegpt.jsonl"), dir / "sft.jsonl", std::nullopt, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "sharegpt.jsonl:3: record is a preference pair")) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "sft.jsonl"));
  EXPECT_EQ(temp_files_in(dir), 0);
  fs::remove_all(dir);
}

TEST(ImportText, SourceOptionFillsRecordsWithoutSource) {
  ImportOptions options;
  options.source = "内科学教材";
  const ImportResult r = import_records(ImportFormat::text, fixture("text.txt"), options);
  ASSERT_EQ(r.main.size(), 4u);
  EXPECT_EQ(r.main[0]["source"], "内科学教材");
  EXPECT_EQ(r.main[2]["source"], "textbook");  // the record's own source wins
}

TEST(ImportFormats, NamesRoundTripAndUnknownNameIsAnError) {
  for (const std::string& name : import_format_names())
    EXPECT_EQ(import_format_name(import_format_from_name(name)), name);
  try {
    import_format_from_name("csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "unknown import format 'csv'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "cmexam")) << e.what();
  }
}

TEST(ImportFormats, PreferenceOutputOnlyForFormatsThatHaveOne) {
  const fs::path dir = scratch_dir();
  EXPECT_THROW(import_to_files(ImportFormat::cmb, fixture("cmb.jsonl"), dir / "a.jsonl", dir / "b.jsonl", {}), Error);
  EXPECT_THROW(import_to_files(ImportFormat::chimed1, fixture("chimed1.jsonl"), dir / "a.jsonl", dir / "a.jsonl", {}),
               Error);
  EXPECT_FALSE(fs::exists(dir / "a.jsonl"));
  fs::remove_all(dir);
}

}  // namespace
