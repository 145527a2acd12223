// Tests of JSON Lines reading and writing: round trip with Chinese text, blank lines, FILE:LINE on invalid JSON.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/jsonl.h"

using namespace stepwise;

TEST(Jsonl, RoundTripChinese) {
  fs::path p = fs::temp_directory_path() / "stepwise_test.jsonl";
  std::vector<json> recs = {{{"id", "1"}, {"text", "高血压的常见症状"}}, {{"id", "2"}, {"text", "咳嗽"}}};
  jsonl_write(p, recs);
  EXPECT_NE(read_file(p).find("高血压"), std::string::npos);  // written as UTF-8, not \u escapes
  EXPECT_EQ(jsonl_read(p), recs);
  fs::remove(p);
}

TEST(Jsonl, InvalidLineNamesFileAndLine) {
  fs::path p = fs::temp_directory_path() / "stepwise_bad.jsonl";
  write_file_atomic(p, "{\"a\":1}\n\n{\"a\":\n");
  try {
    jsonl_read(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stepwise_bad.jsonl:3: invalid JSON"), std::string::npos) << e.what();
  }
  fs::remove(p);
}
