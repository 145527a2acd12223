// Shared fixtures of the eval tests: temporary files and directories removed at scope exit, and CMB-Exam records.
#pragma once
#include <unistd.h>

#include <string>

#include "core/fs.h"
#include "data/jsonl.h"
#include "eval/benchmark.h"

namespace stepwise::eval::testing {

// A path under the system temp directory, removed (recursively) when the object goes out of scope.
class TempPath {
 public:
  explicit TempPath(const std::string& name)
      : path_(fs::temp_directory_path() / ("stepwise_eval_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
  }
  ~TempPath() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A valid CMB-Exam record; tests modify fields to make it bad.
inline json cmb_record(const std::string& id, const std::string& subject, const std::string& answer,
                       const std::string& question_type = "单项选择题") {
  return {{"id", id},
          {"exam_type", "医师考试"},
          {"exam_class", "执业医师"},
          {"exam_subject", subject},
          {"question", "患者男，45岁，突发胸骨后压榨性疼痛2小时，最可能的诊断是"},
          {"option", {{"A", "急性心肌梗死"}, {"B", "主动脉夹层"}, {"C", "肺栓塞"}, {"D", "急性心包炎"}, {"E", "气胸"}}},
          {"answer", answer},
          {"question_type", question_type}};
}

inline McqItem cmb_item(const std::string& id, const std::string& subject, const std::string& answer,
                        const std::string& question_type = "单项选择题") {
  McqItem item = parse_mcq_record(cmb_record(id, subject, answer, question_type), "test");
  item.id = id;
  return item;
}

}  // namespace stepwise::eval::testing
