// Helpers shared by the importer tests: fixture paths, a scratch directory per test, and small file utilities.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "core/fs.h"

namespace stepwise::import_test {

inline fs::path fixture(const std::string& name) {
  return fs::path(STEPWISE_SOURCE_DIR) / "tests/data/fixtures/import" / name;
}

// A fresh, empty directory named after the running test.
inline fs::path scratch_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::temp_directory_path() / (std::string("stepwise_import_") + info->test_suite_name() + "_" + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Names of the files in `dir` that start with ".tmp-" (left-overs of an atomic write).
inline int temp_files_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(".tmp-", 0) == 0;
  return n;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace stepwise::import_test
