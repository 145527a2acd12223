// The corpus generator's entry points (see corpus_generate.h): option checks, the five splits, atomic writes.
#include "data/corpus_generate.h"

#include <cstdio>

#include "data/corpus_parts.h"
#include "data/jsonl.h"

namespace stepwise {

std::string corpus_record_id(const std::string& prefix, size_t index) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06zu", index);
  return prefix + "-" + digits;
}

void shuffle_records(std::vector<nlohmann::json>& records, const CorpusOptions& options, const std::string& split) {
  CorpusRng rng = corpus_rng(options, "order", split);
  rng.shuffle(records);
}

void shuffle_and_number(std::vector<nlohmann::json>& records, const CorpusOptions& options, const std::string& prefix) {
  shuffle_records(records, options, prefix);
  for (size_t i = 0; i < records.size(); ++i) records[i]["id"] = corpus_record_id(prefix, i + 1);
}

Corpus generate_corpus(const KnowledgeBase& kb, const CorpusOptions& options) {
  const std::pair<const char*, int> counts[] = {{"pretrain_per_condition", options.pretrain_per_condition},
                                                {"sft_per_condition", options.sft_per_condition},
                                                {"exam_per_condition", options.exam_per_condition},
                                                {"preference_per_condition", options.preference_per_condition},
                                                {"mcq_per_condition", options.mcq_per_condition},
                                                {"qa_per_condition", options.qa_per_condition}};
  for (const auto& [name, value] : counts)
    if (value < 0 || value > 10000) fail("corpus option ", name, " = ", value, " is out of range [0, 10000]");
  if (options.min_document_chars < 0 || options.min_document_chars > 20000)
    fail("corpus option min_document_chars = ", options.min_document_chars, " is out of range [0, 20000]");
  if (kb.conditions.empty()) fail("knowledge base has no conditions");
  Corpus corpus;
  corpus.pretrain = generate_pretrain(kb, options);
  const FactOverlap overlap(kb);
  corpus.eval_mcq = generate_eval_mcq(kb, options, overlap);  // first: the exam dialogues avoid what it asks
  corpus.sft = generate_sft(kb, options, generate_sft_exam(kb, options, overlap, corpus.eval_mcq));
  corpus.preference = generate_preference(kb, options, overlap);
  corpus.eval_qa = generate_eval_qa(kb, options);
  return corpus;
}

void write_corpus(const Corpus& corpus, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir.string(), ": cannot create directory: ", ec.message());
  const std::vector<nlohmann::json>* splits[] = {&corpus.pretrain, &corpus.sft, &corpus.preference, &corpus.eval_mcq,
                                                 &corpus.eval_qa};
  for (size_t i = 0; i < 5; ++i) jsonl_write(dir / kCorpusFiles[i], *splits[i]);
}

}  // namespace stepwise
