// `stepwise tokenizer train|encode|decode|shard`: trains the sentencepiece tokenizer on canonical JSONL corpora, lets
// a user look at how text maps to ids, and builds (or checks) the token shard of a corpus with its packing stats.
// Parsing and reporting only; the work is in src/data (tokenizer, token_shard, loaders).
#include <chrono>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "core/error.h"
#include "data/loaders.h"
#include "data/tokenizer.h"

namespace stepwise::cli {
namespace {

std::string read_stdin() {
  return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      const long long v = std::stoll(word, &used);
      if (used != word.size() || v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(word);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::logic_error&) {
      fail("tokenizer decode: '", word, "' is not a token id");
    }
  }
  return ids;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One non-repeating pass of the kind's loader over the shard: rows of seq_len and the share of positions trained.
void report_packing(const std::shared_ptr<const TokenShard>& shard, const Tokenizer& tok, int64_t seq_len) {
  LoaderOptions o;
  o.batch_size = 8;
  o.seq_len = seq_len;
  o.repeat = false;
  int64_t rows = 0, targets = 0;
  const auto start = std::chrono::steady_clock::now();
  if (shard->kind() == ShardKind::preference) {
    PreferenceLoader loader(shard, tok, o);
    std::vector<PreferenceExample> batch;
    while (loader.next(batch)) {
      const TokenBatch b = preference_pair_batch(batch, seq_len, tok.pad());
      rows += b.B;
      targets += b.num_targets();
    }
  } else {
    TokenBatch b;
    auto drain = [&](auto& loader) {
      while (loader.next(b)) {
        rows += b.B;
        targets += b.num_targets();
      }
    };
    if (shard->kind() == ShardKind::pretrain) {
      PretrainLoader loader(shard, tok, o);
      drain(loader);
    } else {
      SftLoader loader(shard, tok, o);
      drain(loader);
    }
  }
  std::cout << "packed: " << rows << " rows of " << seq_len << " in " << seconds_since(start) << " s, "
            << targets << " targets (" << 100.0 * double(targets) / double(std::max<int64_t>(1, rows * seq_len))
            << "% of positions)\n";
}

}  // namespace

void register_tokenizer_commands(CLI::App& app) {
  CLI::App* tok = app.add_subcommand("tokenizer", "train a tokenizer, encode and decode text");
  tok->require_subcommand(1);

  auto train_opts = std::make_shared<TokenizerTrainOptions>();
  auto out_dir = std::make_shared<std::string>();
  CLI::App* train = tok->add_subcommand("train", "train a sentencepiece (unigram, byte fallback) tokenizer on JSONL");
  train->add_option("--in", train_opts->inputs, "canonical JSONL files (pretrain, sft, preference)")->required()
      ->check(CLI::ExistingFile);
  train->add_option("--vocab-size", train_opts->vocab_size, "vocabulary size (upper bound)")->capture_default_str();
  train->add_option("--character-coverage", train_opts->character_coverage, "share of characters kept whole")
      ->capture_default_str();
  train->add_option("--max-bytes", train_opts->max_training_bytes, "sample sentences down to this much text")
      ->capture_default_str();
  train->add_option("--seed", train_opts->seed, "seed of the sentence sample")->capture_default_str();
  train->add_option("--out", *out_dir, "output directory (tokenizer.model, tokenizer.json)")->required();
  train->callback([train_opts, out_dir] {
    const Tokenizer t = Tokenizer::train(*train_opts, *out_dir);
    std::cout << "wrote " << (fs::path(*out_dir) / "tokenizer.model").string() << " (vocab " << t.vocab_size()
              << ", hash " << t.hash() << ")\n";
  });

  auto model_dir = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto show_pieces = std::make_shared<bool>(false);
  CLI::App* encode = tok->add_subcommand("encode", "print the token ids of text (from --text or stdin)");
  encode->add_option("--model", *model_dir, "tokenizer directory")->required();
  encode->add_option("--text", *text, "text to encode; stdin when absent");
  encode->add_flag("--pieces", *show_pieces, "print pieces instead of ids");
  encode->callback([model_dir, text, show_pieces, encode] {
    const Tokenizer t = Tokenizer::load(*model_dir);
    const std::string input = encode->count("--text") ? *text : read_stdin();
    const std::vector<int32_t> ids = t.encode(input);
    for (size_t i = 0; i < ids.size(); ++i)
      std::cout << (i ? " " : "") << (*show_pieces ? t.piece(ids[i]) : std::to_string(ids[i]));
    std::cout << "\n";
  });

  auto ids_text = std::make_shared<std::string>();
  CLI::App* decode = tok->add_subcommand("decode", "print the text of token ids (from --ids or stdin)");
  decode->add_option("--model", *model_dir, "tokenizer directory")->required();
  decode->add_option("--ids", *ids_text, "space-separated ids; stdin when absent");
  decode->callback([model_dir, ids_text, decode] {
    const Tokenizer t = Tokenizer::load(*model_dir);
    const std::vector<int32_t> ids = parse_ids(decode->count("--ids") ? *ids_text : read_stdin());
    std::cout << t.decode(ids) << "\n";
  });

  auto kind = std::make_shared<std::string>("pretrain");
  auto source = std::make_shared<std::string>();
  auto cache = std::make_shared<std::string>();
  auto seq_len = std::make_shared<int64_t>(0);
  CLI::App* shard = tok->add_subcommand("shard", "tokenize a JSONL corpus into a cached token shard (or reuse it)");
  shard->add_option("--kind", *kind, "pretrain | sft | preference")->capture_default_str();
  shard->add_option("--in", *source, "canonical JSONL file")->required()->check(CLI::ExistingFile);
  shard->add_option("--model", *model_dir, "tokenizer directory")->required();
  shard->add_option("--cache", *cache, "shard cache directory")->required();
  shard->add_option("--seq-len", *seq_len, "also run one packing pass with rows of this length");
  shard->callback([kind, source, cache, seq_len, model_dir] {
    const Tokenizer t = Tokenizer::load(*model_dir);
    auto start = std::chrono::steady_clock::now();
    const fs::path path = ensure_shard(parse_shard_kind(*kind), *source, t, *cache);
    const double build_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const auto s = TokenShard::open(path);
    std::cout << path.string() << ": " << s->num_samples() << " samples, " << s->num_tokens() << " tokens (ready in "
              << build_s << " s, opened + validated in " << seconds_since(start) << " s)\n";
    if (*seq_len > 0) report_packing(s, t, *seq_len);
  });
}

}  // namespace stepwise::cli
