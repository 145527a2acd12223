// `stepwise eval` and `stepwise eval compare` through the real binary: a run on the tiny checkpoint writes a report
// that reads back, a bad benchmark exits 2 naming FILE:LINE, bad flags exit 2, and compare writes one table.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "eval/report.h"
#include "eval/runner_fixture.h"

namespace stepwise::eval {
namespace {

int run(const std::string& command, std::string* output) {
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) output->append(buf.data(), n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string eval_command(const fs::path& bench, const fs::path& out, const std::string& extra) {
  return cat(STEPWISE_BINARY, " eval --bench ", bench, " --model ", testing::runner_files().checkpoint, " --out ", out,
             " --no-progress ", extra);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EvalCli, WritesReportsAndCompares) {
  testing::TempPath dir("cli_runs");
  std::string out;
  ASSERT_EQ(run(eval_command(testing::runner_files().mcq, dir.path() / "base", "--limit 3 --max-tokens 6 --name base"),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("3 items"), std::string::npos) << out;
  EXPECT_NE(out.find("likelihood accuracy"), std::string::npos) << out;
  const EvalReport base = read_report(dir.path() / "base");
  EXPECT_EQ(base.model, "base");
  EXPECT_EQ(base.meta.at("items"), 3);
  ASSERT_TRUE(base.mcq_generation && base.mcq_likelihood);
  EXPECT_EQ(base.mcq_generation->overall.total, 3);

  out.clear();
  ASSERT_EQ(run(eval_command(testing::runner_files().mcq, dir.path() / "plain",
                             "--limit 3 --method likelihood --prompt-style plain --concurrency 2"),
                &out),
            0)
      << out;
  const EvalReport plain = read_report(dir.path() / "plain" / "report.json");
  EXPECT_EQ(plain.model, "tiny-eval-model");
  EXPECT_FALSE(plain.mcq_generation.has_value());

  out.clear();
  ASSERT_EQ(run(eval_command(testing::runner_files().qa, dir.path() / "qa", "--max-tokens 6"), &out), 0) << out;
  EXPECT_NE(out.find("ROUGE-L"), std::string::npos) << out;
  EXPECT_EQ(read_report(dir.path() / "qa").qa->total, 3);

  out.clear();
  ASSERT_EQ(run(cat(STEPWISE_BINARY, " eval compare --reports ", dir.path() / "base" / "report.json", " ",
                    dir.path() / "plain", " --names sft,base-plain --out ", dir.path() / "cmp"),
                &out),
            0)
      << out;
  const std::string md = read_text(dir.path() / "cmp" / "report.md");
  EXPECT_NE(md.find("sft"), std::string::npos) << md;
  EXPECT_NE(md.find("base-plain"), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(dir.path() / "cmp" / "report.svg"));

  out.clear();
  EXPECT_EQ(run(cat(STEPWISE_BINARY, " eval compare --reports ", dir.path() / "base", " --names a,b --out ",
                    dir.path() / "cmp2"),
                &out),
            2)
      << out;
  EXPECT_NE(out.find("--names gives 2 names for 1 reports"), std::string::npos) << out;
}

TEST(EvalCli, BadInputExitsTwoWithTheLocation) {
  testing::TempPath bad("cli_bad.jsonl");
  {
    std::ofstream f(bad.path());
    f << testing::cmb_record("x", "内科", "A").dump() << "\n"
      << testing::cmb_record("y", "内科", "F").dump() << "\n";
  }
  testing::TempPath out_dir("cli_bad_out");
  std::string out;
  EXPECT_EQ(run(eval_command(bad.path(), out_dir.path(), ""), &out), 2) << out;
  EXPECT_NE(out.find(bad.path().string() + ":2"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(out_dir.path() / "report.json"));

  out.clear();
  EXPECT_EQ(run(eval_command(testing::runner_files().mcq, out_dir.path(), "--method greedy"), &out), 2) << out;
  EXPECT_NE(out.find("method 'greedy'"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run(cat(STEPWISE_BINARY, " eval --bench ", testing::runner_files().mcq, " --out ", out_dir.path()), &out),
            2)
      << out;
  EXPECT_NE(out.find("exactly one of --model DIR and --server URL"), std::string::npos) << out;
}

}  // namespace
}  // namespace stepwise::eval
