// Tests of the atomic file helpers: content round-trips, failed writes leave the old file, no temp files remain.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"

using namespace stepwise;

TEST(Fs, AtomicWriteRoundTripAndReplace) {
  fs::path dir = fs::temp_directory_path() / "stepwise_test_fs";
  fs::remove_all(dir);
  write_file_atomic(dir / "a.txt", "first");
  EXPECT_EQ(read_file(dir / "a.txt"), "first");
  write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(read_file(dir / "a.txt"), "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Fs, FailedWriteKeepsOldContentAndRemovesTemp) {
  fs::path dir = fs::temp_directory_path() / "stepwise_test_fs2";
  fs::remove_all(dir);
  write_file_atomic(dir / "b.txt", "keep me");
  EXPECT_THROW(write_file_atomic_with(dir / "b.txt",
                                      [](std::FILE* f) {
                                        std::fputs("partial", f);
                                        fail("simulated failure");
                                      }),
               Error);
  EXPECT_EQ(read_file(dir / "b.txt"), "keep me");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Fs, MissingFileNamesPath) {
  try {
    read_file("/nonexistent/stepwise/file.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/stepwise/file.txt"), std::string::npos);
  }
}

TEST(Fs, ContentHashDiffers) {
  EXPECT_NE(content_hash("a"), content_hash("b"));
  EXPECT_EQ(content_hash("abc"), content_hash("abc"));
  EXPECT_EQ(content_hash("abc").size(), 16u);
}
