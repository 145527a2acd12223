// Tests that drive the real `stepwise` binary: `data generate` writes the same bytes as the library with the same
// seed, `data stats` prints its table; and CorpusCommitted.RegeneratesByteIdentical checks a committed corpus
// (data/medical-zh/*.jsonl) against a fresh generation from data/medical-zh/kb with the default seed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "data/corpus_generate.h"
#include "test_corpus_util.h"

using namespace stepwise;
using stepwise::test::fixture_kb;
using stepwise::test::fresh_dir;

namespace {

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return out;
}

}  // namespace

TEST(CorpusCli, GenerateMatchesLibraryAndStatsPrintsTable) {
  if (!fs::exists(STEPWISE_BINARY)) GTEST_SKIP() << "stepwise binary not built: " << STEPWISE_BINARY;
  const fs::path cli = fresh_dir("cli"), lib = fresh_dir("lib");
  run_capture(cat(STEPWISE_BINARY, " data generate --kb ", fixture_kb(), " --out ", cli,
                  " --seed 11 --sft-per-condition 5 2>&1"));
  CorpusOptions o;
  o.seed = 11;
  o.sft_per_condition = 5;
  write_corpus(generate_corpus(load_knowledge_base(fixture_kb()), o), lib);
  for (const char* file : kCorpusFiles) EXPECT_EQ(read_file(cli / file), read_file(lib / file)) << file;
  const std::string table = run_capture(cat(STEPWISE_BINARY, " data stats ", cli));
  EXPECT_NE(table.find("sft.jsonl"), std::string::npos) << table;
  EXPECT_NE(table.find(cat(jsonl_read(cli / "sft.jsonl").size())), std::string::npos) << table;
  fs::remove_all(cli);
  fs::remove_all(lib);
}

TEST(CorpusCommitted, RegeneratesByteIdentical) {
  const fs::path committed = fs::path(STEPWISE_SOURCE_DIR) / "data/medical-zh";
  if (!fs::exists(committed / "pretrain.jsonl"))
    GTEST_SKIP() << "no committed corpus at " << committed << " (generate it with: stepwise data generate --kb "
                 << committed / "kb" << " --out " << committed << ")";
  const auto start = std::chrono::steady_clock::now();
  const fs::path fresh = fresh_dir("regen");
  write_corpus(generate_corpus(load_knowledge_base(committed / "kb"), CorpusOptions{}), fresh);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const char* file : kCorpusFiles)
    EXPECT_TRUE(read_file(committed / file) == read_file(fresh / file))
        << file << " differs from a fresh generation with the default seed";
  EXPECT_LT(seconds, 20.0) << "generation of the full corpus must stay fast";
  fs::remove_all(fresh);
}
