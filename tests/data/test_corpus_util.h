// Helpers shared by the corpus tests: the fixture KB, fresh temporary directories, reading a split's texts.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/fs.h"
#include "data/jsonl.h"
#include "data/kb.h"

namespace stepwise::test {

inline fs::path fixture_kb() { return fs::path(STEPWISE_SOURCE_DIR) / "tests/data/fixtures/kb-mini"; }

// An empty directory unique to the running test.
inline fs::path fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::temp_directory_path() /
                 (std::string("stepwise_corpus_") + info->test_suite_name() + "_" + info->name() + "_" + tag + "_" +
                  std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A copy of the fixture KB that a test may break.
inline fs::path copy_fixture(const std::string& tag) {
  fs::path dir = fresh_dir(tag);
  for (const auto& entry : fs::directory_iterator(fixture_kb())) fs::copy_file(entry.path(), dir / entry.path().filename());
  return dir;
}

// Every text a training split shows a model (pretrain text, SFT turns, preference prompts and answers).
inline std::vector<std::string> training_texts(const fs::path& corpus_dir) {
  std::vector<std::string> texts;
  for (const auto& r : jsonl_read(corpus_dir / "pretrain.jsonl")) texts.push_back(r["text"]);
  for (const char* split : {"sft.jsonl", "preference.jsonl"})
    for (const auto& r : jsonl_read(corpus_dir / split)) {
      for (const auto& turn : r["conversations"]) texts.push_back(turn["content"]);
      if (r.contains("chosen")) texts.push_back(r["chosen"]);
      if (r.contains("rejected")) texts.push_back(r["rejected"]);
    }
  return texts;
}

// The condition of the KB whose name is the longest one found in `text` (nullptr when none is).
inline const KbCondition* condition_named_in(const KnowledgeBase& kb, const std::string& text) {
  const KbCondition* best = nullptr;
  for (const auto& c : kb.conditions)
    if (text.find(c.name) != std::string::npos && (!best || c.name.size() > best->name.size())) best = &c;
  return best;
}

inline bool overlaps(const std::vector<std::string>& facts, const std::string& item) {
  for (const auto& f : facts)
    if (f.find(item) != std::string::npos || item.find(f) != std::string::npos) return true;
  return false;
}

}  // namespace stepwise::test
