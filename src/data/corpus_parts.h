// Internal interface between the corpus generator's parts: one function per split (corpus_pretrain.cpp,
// corpus_sft.cpp + corpus_exam.cpp, corpus_preference.cpp, corpus_eval.cpp). Not for use outside the generator.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/corpus_facts.h"
#include "data/corpus_generate.h"
#include "data/corpus_text.h"

namespace stepwise {

// A random stream for one split and one subject (condition id, herb name, ...): the records of a subject do not
// change when other subjects are added to the KB.
inline CorpusRng corpus_rng(const CorpusOptions& options, const std::string& split, const std::string& subject) {
  return CorpusRng(corpus_stream_seed(options.seed, split + "/" + subject));
}

std::vector<nlohmann::json> generate_pretrain(const KnowledgeBase& kb, const CorpusOptions& options);
// `exam` (generate_sft_exam) is mixed into the conversations before the split is shuffled and numbered.
std::vector<nlohmann::json> generate_sft(const KnowledgeBase& kb, const CorpusOptions& options,
                                         std::vector<nlohmann::json> exam);
// Exam-format dialogues (corpus_exam.cpp); never asks a (condition, correct fact) that one of `eval_mcq` asks.
std::vector<nlohmann::json> generate_sft_exam(const KnowledgeBase& kb, const CorpusOptions& options,
                                              const FactOverlap& overlap, const std::vector<nlohmann::json>& eval_mcq);
std::vector<nlohmann::json> generate_preference(const KnowledgeBase& kb, const CorpusOptions& options,
                                                const FactOverlap& overlap);
std::vector<nlohmann::json> generate_eval_mcq(const KnowledgeBase& kb, const CorpusOptions& options,
                                              const FactOverlap& overlap);
std::vector<nlohmann::json> generate_eval_qa(const KnowledgeBase& kb, const CorpusOptions& options);

// "pretrain-000042"
std::string corpus_record_id(const std::string& prefix, size_t index);

// Shuffles a training split deterministically (so any slice, e.g. the held-out tail the trainer uses, mixes every
// department and document kind), then numbers the records "<prefix>-000001", ...
void shuffle_and_number(std::vector<nlohmann::json>& records, const CorpusOptions& options, const std::string& prefix);

// The same deterministic shuffle, keeping the records' ids (eval splits name the asked condition in their ids).
void shuffle_records(std::vector<nlohmann::json>& records, const CorpusOptions& options, const std::string& split);

}  // namespace stepwise
