// The deterministic synthetic medical corpus: generated from the knowledge base (kb.h) into five JSONL splits.
// Same KB + same options (seed included) => byte-identical files on every platform.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/fs.h"
#include "data/kb.h"

namespace stepwise {

// Counts are per condition (herb and formula records of 中医科 come on top); the defaults meet the corpus targets
// (>= 3,000 pretraining documents and >= 1.5M Han characters, >= 6,000 SFT (exam dialogues on top), >= 1,000 preference, >= 500 MCQ and
// >= 200 open eval questions) with a KB of >= 150 conditions.
struct CorpusOptions {
  uint64_t seed = 20250101;
  int pretrain_per_condition = 20;
  int sft_per_condition = 42;
  int exam_per_condition = 12;    // exam-format SFT dialogues (options -> "<option text>。答案：C。解析：...")
  int preference_per_condition = 8;
  int mcq_per_condition = 4;
  int qa_per_condition = 2;
  int min_document_chars = 480;   // Han characters a pretraining document is grown to at least
};

struct Corpus {
  std::vector<nlohmann::json> pretrain;    // {"id","text","source","department"}
  std::vector<nlohmann::json> sft;         // {"id","conversations":[{"role","content"}],"department"}
  std::vector<nlohmann::json> preference;  // {"id","conversations":[prompt turns],"chosen","rejected","reason","department"}
  std::vector<nlohmann::json> eval_mcq;    // CMB-Exam schema, held out
  std::vector<nlohmann::json> eval_qa;     // {"id","question","answer"}, held out
};

// The split files write_corpus produces, in this order.
inline constexpr const char* kCorpusFiles[] = {"pretrain.jsonl", "sft.jsonl", "preference.jsonl", "eval_mcq.jsonl",
                                               "eval_qa.jsonl"};

// Generates every split. Throws stepwise::Error when an option is out of range or the KB is too small to build
// held-out distractors.
Corpus generate_corpus(const KnowledgeBase& kb, const CorpusOptions& options);

// Writes the five files into `dir` (created if needed), each atomically.
void write_corpus(const Corpus& corpus, const fs::path& dir);

}  // namespace stepwise
