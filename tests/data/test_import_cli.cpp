// Tests that drive the real `stepwise data import` binary: success prints the summary and writes the canonical
// file; a bad record exits with code 2 and "error: FILE:LINE: field ..." on stderr; skip mode reports on stderr.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "core/error.h"
#include "data/jsonl.h"
#include "test_import_util.h"

using namespace stepwise;
using namespace stepwise::import_test;

namespace {

struct RunResult {
  int exit_code;
  std::string out, err;
};

RunResult run_stepwise(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string command = cat("'", STEPWISE_BINARY, "' ", args, " >'", out.string(), "' 2>'", err.string(), "'");
  const int status = std::system(command.c_str());
  EXPECT_TRUE(WIFEXITED(status)) << command;
  return {WEXITSTATUS(status), read_file(out), read_file(err)};
}

TEST(ImportCli, GoodInputWritesOutputAndSummary) {
  const fs::path dir = scratch_dir();
  const RunResult r = run_stepwise(cat("data import --format cmexam --in '", fixture("cmexam.csv").string(),
                                       "' --out '", (dir / "mcq.jsonl").string(), "'"),
                                   dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "2 records in, 2 mcq out, 0 skipped")) << r.out;
  EXPECT_EQ(read_file(dir / "mcq.jsonl"), read_file(fixture("expected/cmexam.mcq.jsonl")));
  fs::remove_all(dir);
}

TEST(ImportCli, BadRecordExitsWithCode2AndNamesFileLineField) {
  const fs::path dir = scratch_dir();
  write_file_atomic(dir / "mcq.jsonl", "old\n");
  const std::string in = fixture("cmb_bad.jsonl").string();
  const RunResult r =
      run_stepwise(cat("data import --format cmb --in '", in, "' --out '", (dir / "mcq.jsonl").string(), "'"), dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "error: " + in + ":2: invalid JSON")) << r.err;
  EXPECT_EQ(read_file(dir / "mcq.jsonl"), "old\n");
  EXPECT_EQ(temp_files_in(dir), 0);
  fs::remove_all(dir);
}

TEST(ImportCli, MissingFieldExitsWithCode2) {
  const fs::path dir = scratch_dir();
  write_file_atomic(dir / "in.jsonl", "{\"question\":\"问\",\"response_chosen\":\"好\"}\n");
  const RunResult r = run_stepwise(cat("data import --format preference-legacy --in '", (dir / "in.jsonl").string(),
                                       "' --out '", (dir / "out.jsonl").string(), "'"),
                                   dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "in.jsonl:1: field 'response_rejected' is missing")) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out.jsonl"));
  fs::remove_all(dir);
}

TEST(ImportCli, SkipModeReportsReasonsAndSucceeds) {
  const fs::path dir = scratch_dir();
  const std::string in = fixture("cmb_bad.jsonl").string();
  const RunResult r = run_stepwise(cat("data import --format cmb --on-bad-record skip --in '", in, "' --out '",
                                       (dir / "mcq.jsonl").string(), "'"),
                                   dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "7 records in, 2 mcq out, 5 skipped")) << r.out;
  EXPECT_TRUE(contains(r.err, "skipped 2: field 'answer' names a letter not among the options")) << r.err;
  EXPECT_TRUE(contains(r.err, in + ":3: field 'answer'")) << r.err;
  EXPECT_EQ(jsonl_read(dir / "mcq.jsonl").size(), 2u);
  fs::remove_all(dir);
}

TEST(ImportCli, TwoOutputsForChimed) {
  const fs::path dir = scratch_dir();
  const RunResult r = run_stepwise(cat("data import --format chimed1 --department-level top --in '",
                                       fixture("chimed1.jsonl").string(), "' --out '", (dir / "sft.jsonl").string(),
                                       "' --preference-out '", (dir / "pairs.jsonl").string(), "'"),
                                   dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "3 records in, 2 sft out, 3 preference out, 0 skipped")) << r.out;
  EXPECT_TRUE(contains(read_file(dir / "sft.jsonl"), "\"department\":\"内科\""));
  EXPECT_EQ(read_file(dir / "pairs.jsonl"), read_file(fixture("expected/chimed1.preference.jsonl")));
  fs::remove_all(dir);
}

}  // namespace
