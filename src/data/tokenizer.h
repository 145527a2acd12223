// The stepwise tokenizer: a sentencepiece unigram model with byte fallback (no character is ever unknown), trained on
// the text of canonical JSONL corpora, plus the reserved chat/document special tokens. Holds no chat formatting
// (chat_template.h does) and never changes text: decode(encode(s)) == s for any valid UTF-8 s.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace stepwise {

// Surface strings of the special tokens (user-defined symbols of the model; each is one id).
inline constexpr std::string_view kSystemToken = "<|system|>";
inline constexpr std::string_view kUserToken = "<|user|>";
inline constexpr std::string_view kAssistantToken = "<|assistant|>";
inline constexpr std::string_view kEndOfTurnToken = "<|end_of_turn|>";
inline constexpr std::string_view kEndOfDocumentToken = "<|end_of_document|>";
inline constexpr std::string_view kPadToken = "<pad>";

struct TokenizerTrainOptions {
  std::vector<fs::path> inputs;       // canonical JSONL files (pretrain / sft / preference records)
  int32_t vocab_size = 32000;         // upper bound; a small corpus may yield fewer pieces (see tokenizer.json)
  double character_coverage = 0.9995; // rarer characters fall back to UTF-8 byte pieces
  int64_t max_training_bytes = 5 << 20;   // deterministic sample of sentences above this many bytes of text
  uint64_t seed = 1234;               // fixes the sample; training itself uses a fixed thread count
};

class Tokenizer {
 public:
  // Trains a model on the text fields of the inputs and writes DIR/tokenizer.model + DIR/tokenizer.json.
  static Tokenizer train(const TokenizerTrainOptions& options, const fs::path& out_dir);
  // Loads DIR/tokenizer.model and checks it against DIR/tokenizer.json; Error naming the file when missing or wrong.
  static Tokenizer load(const fs::path& dir);
  // Writes tokenizer.model + tokenizer.json into `dir` (e.g. a checkpoint directory), atomically.
  void save(const fs::path& dir) const;

  // Text -> ids. Special-token strings inside `text` become their single ids.
  std::vector<int32_t> encode(std::string_view text) const;
  // Text -> ids where special-token strings are kept as plain text (chat contents: no injection of turn markers).
  std::vector<int32_t> encode_literal(std::string_view text) const;
  // Ids -> text; special tokens render as their surface strings, pad as nothing. Error on ids outside the vocab.
  std::string decode(std::span<const int32_t> ids) const;
  // The piece string of one id (e.g. "▁", "<0xE4>", "<|user|>").
  std::string piece(int32_t id) const;

  int32_t vocab_size() const { return vocab_size_; }
  // No bos/eos tokens: documents end with eod(), chat turns with eot() (the stop token for generation).
  int32_t unk() const { return unk_; }
  int32_t pad() const { return pad_; }
  int32_t system() const { return system_; }
  int32_t user() const { return user_; }
  int32_t assistant() const { return assistant_; }
  int32_t eot() const { return eot_; }
  int32_t eod() const { return eod_; }
  bool is_special(int32_t id) const;
  // Content hash of tokenizer.model (hex FNV-1a 64); keys token-shard caches.
  const std::string& hash() const { return hash_; }

 private:
  static Tokenizer from_model_bytes(std::string model_bytes, const std::string& origin);

  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  std::string model_bytes_;
  std::string hash_;
  int32_t vocab_size_ = 0;
  int32_t unk_ = -1, pad_ = -1, system_ = -1, user_ = -1, assistant_ = -1, eot_ = -1, eod_ = -1;
};

}  // namespace stepwise
