// `stepwise data generate` (the synthetic medical corpus from the knowledge base) and `stepwise data stats`
// (records, Han characters and departments per split). Parsing only; the work is in src/data.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "core/log.h"
#include "data/corpus_generate.h"
#include "data/corpus_stats.h"
#include "data/tokenizer.h"
#include "data/kb.h"

namespace stepwise::cli {
namespace {

struct GenerateArgs {
  std::string kb = "data/medical-zh/kb";
  std::string out;
  CorpusOptions options;
};

void run_generate(const GenerateArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const KnowledgeBase kb = load_knowledge_base(args.kb);
  const Corpus corpus = generate_corpus(kb, args.options);
  write_corpus(corpus, args.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("knowledge base: ", kb.conditions.size(), " conditions, ", kb.formulas.size(), " formulas, ",
           kb.herbs.size(), " herbs");
  log_info("wrote ", args.out, " in ", seconds, " s: pretrain ", corpus.pretrain.size(), ", sft ", corpus.sft.size(),
           ", preference ", corpus.preference.size(), ", eval_mcq ", corpus.eval_mcq.size(), ", eval_qa ",
           corpus.eval_qa.size());
}

}  // namespace

void register_data_commands(CLI::App& data) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* generate = data.add_subcommand("generate", "generate the synthetic medical corpus from the knowledge base");
  generate->add_option("--kb", args->kb, "knowledge base directory")->capture_default_str();
  generate->add_option("--out", args->out, "output directory")->required();
  generate->add_option("--seed", args->options.seed, "random seed (same seed => byte-identical files)")
      ->capture_default_str();
  generate->add_option("--pretrain-per-condition", args->options.pretrain_per_condition,
                       "pretraining documents per condition")->capture_default_str();
  generate->add_option("--sft-per-condition", args->options.sft_per_condition, "SFT conversations per condition")
      ->capture_default_str();
  generate->add_option("--exam-per-condition", args->options.exam_per_condition,
                       "exam-format SFT dialogues (lettered options) per condition")->capture_default_str();
  generate->add_option("--preference-per-condition", args->options.preference_per_condition,
                       "preference pairs per condition")->capture_default_str();
  generate->add_option("--mcq-per-condition", args->options.mcq_per_condition,
                       "held-out multiple-choice questions per condition")->capture_default_str();
  generate->add_option("--qa-per-condition", args->options.qa_per_condition,
                       "held-out open questions per condition")->capture_default_str();
  generate->add_option("--min-document-chars", args->options.min_document_chars,
                       "Han characters a pretraining document is grown to at least")->capture_default_str();
  generate->callback([args] { run_generate(*args); });

  auto dir = std::make_shared<std::string>();
  CLI::App* stats = data.add_subcommand("stats", "records, Chinese characters and departments of each corpus split");
  auto tokenizer = std::make_shared<std::string>();
  stats->add_option("DIR", *dir, "corpus directory (pretrain.jsonl, sft.jsonl, ...)")->required();
  stats->add_option("--tokenizer", *tokenizer, "tokenizer directory: also count tokens per split");
  stats->callback([dir, tokenizer] {
    std::optional<Tokenizer> tok;
    if (!tokenizer->empty()) tok = Tokenizer::load(*tokenizer);
    std::fputs(format_corpus_stats(compute_corpus_stats(*dir, tok ? &*tok : nullptr)).c_str(), stdout);
  });
}

}  // namespace stepwise::cli
