// Tokenizer training, loading and encoding over libsentencepiece (see tokenizer.h). Training reads every text field
// of the canonical JSONL records, cuts it into sentence-sized pieces, samples them deterministically to a byte budget
// and trains a unigram model with identity normalisation so that decoding gives back the exact input text.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <array>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "data/jsonl.h"

// Exported by libsentencepiece but not declared in its public headers: silences its per-iteration training log.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

namespace stepwise {
namespace {

constexpr int kTokenizerJsonVersion = 1;
constexpr int kTrainingThreads = 2;          // fixed: the unigram EM sums per-thread, so the count shapes the result
constexpr size_t kMaxSentenceBytes = 1024;   // training pieces; sentencepiece skips sentences over its own limit

const std::array<std::string_view, 5> kUserSymbols = {kSystemToken, kUserToken, kAssistantToken, kEndOfTurnToken,
                                                      kEndOfDocumentToken};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Length of the UTF-8 sequence starting with byte `c` (1 for continuation / invalid bytes, to always progress).
size_t utf8_length(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

bool ends_sentence(std::string_view s, size_t end) {
  for (std::string_view mark : {"。", "！", "？", "；"})
    if (end >= mark.size() && s.substr(end - mark.size(), mark.size()) == mark) return true;
  return false;
}

// Cuts text into training sentences: newlines separate them (and are dropped); a run longer than
// kMaxSentenceBytes is cut at its last sentence end or, failing that, at a character boundary.
void split_sentences(std::string_view text, const std::function<void(std::string_view)>& emit) {
  size_t start = 0, last_break = 0;
  auto emit_range = [&](size_t begin, size_t end) {
    std::string_view s = text.substr(begin, end - begin);
    while (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (!s.empty()) emit(s);
  };
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\n') {
      emit_range(start, i);
      start = last_break = ++i;
      continue;
    }
    const size_t next = std::min(text.size(), i + utf8_length(static_cast<unsigned char>(text[i])));
    if (next - start > kMaxSentenceBytes) {
      const size_t cut = last_break > start ? last_break : i;
      emit_range(start, cut);
      start = last_break = cut;
    }
    i = next;
    if (ends_sentence(text, i)) last_break = i;
  }
  emit_range(start, text.size());
}

// Calls `fn` on every text field of one canonical record (pretrain, sft or preference schema).
void for_each_text_field(const json& record, const std::function<void(std::string_view)>& fn) {
  auto take = [&](const json& v) {
    if (v.is_string()) fn(v.get_ref<const std::string&>());
    else if (v.is_object() && v.contains("content") && v["content"].is_string())
      fn(v["content"].get_ref<const std::string&>());
  };
  if (!record.is_object()) return;
  if (record.contains("text")) take(record["text"]);
  if (record.contains("conversations") && record["conversations"].is_array())
    for (const json& turn : record["conversations"]) take(turn);
  if (record.contains("chosen")) take(record["chosen"]);
  if (record.contains("rejected")) take(record["rejected"]);
}

void for_each_training_sentence(const std::vector<fs::path>& inputs,
                                const std::function<void(std::string_view)>& emit) {
  for (const fs::path& input : inputs) {
    int64_t records_with_text = 0;
    jsonl_for_each(input, [&](const json& record, int64_t) {
      bool any = false;
      for_each_text_field(record, [&](std::string_view text) {
        any = true;
        split_sentences(text, emit);
      });
      records_with_text += any;
    });
    if (records_with_text == 0)
      fail(input.string(), ": no text fields (text, conversations[].content, chosen, rejected) in any record");
  }
}

class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& s) : sentences_(s) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

std::string join_symbols() {
  std::string out;
  for (std::string_view s : kUserSymbols) out += cat(out.empty() ? "" : ",", s);
  return out;
}

json tokenizer_json(const Tokenizer& t) {
  json special = json::object();
  special[std::string(kPadToken)] = t.pad();
  special[std::string(kSystemToken)] = t.system();
  special[std::string(kUserToken)] = t.user();
  special[std::string(kAssistantToken)] = t.assistant();
  special[std::string(kEndOfTurnToken)] = t.eot();
  special[std::string(kEndOfDocumentToken)] = t.eod();
  return {{"format", "stepwise-tokenizer"}, {"version", kTokenizerJsonVersion}, {"model", "tokenizer.model"},
          {"model_type", "unigram"},        {"byte_fallback", true},            {"vocab_size", t.vocab_size()},
          {"unk_id", t.unk()},              {"bos_id", -1},                     {"eos_id", -1},
          {"special_tokens", special},      {"model_hash", t.hash()}};
}

}  // namespace

Tokenizer Tokenizer::train(const TokenizerTrainOptions& options, const fs::path& out_dir) {
  if (options.inputs.empty()) fail("tokenizer train: no input files");
  if (options.vocab_size < 300 || options.vocab_size > (1 << 24))
    fail("tokenizer train: vocab size ", options.vocab_size, " out of range [300, 16777216] (256 byte pieces + specials"
         " need room)");
  if (!(options.character_coverage > 0.9 && options.character_coverage <= 1.0))
    fail("tokenizer train: character coverage ", options.character_coverage, " out of range (0.9, 1]");

  int64_t total_bytes = 0;
  for_each_training_sentence(options.inputs, [&](std::string_view s) { total_bytes += s.size(); });
  const double keep_fraction =
      total_bytes <= options.max_training_bytes ? 1.0 : double(options.max_training_bytes) / double(total_bytes);
  std::vector<std::string> sentences;
  uint64_t index = 0;
  for_each_training_sentence(options.inputs, [&](std::string_view s) {
    const double u = double(splitmix64(options.seed ^ splitmix64(index++)) >> 11) * 0x1.0p-53;
    if (u < keep_fraction) sentences.emplace_back(s);
  });
  log_info("tokenizer: training on ", sentences.size(), " sentences (", total_bytes, " bytes of text, keeping ",
           keep_fraction, ")");

  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", cat(options.character_coverage)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"max_sentence_length", "4096"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(kTrainingThreads)},
      {"seed_sentencepiece_size", std::to_string(std::max<int64_t>(100000, 8 * int64_t(options.vocab_size)))},
      {"unk_id", "0"},
      {"pad_id", "1"},
      {"pad_piece", std::string(kPadToken)},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"user_defined_symbols", join_symbols()},
  };
  if (log_level() > LogLevel::debug) sentencepiece::logging::SetMinLogLevel(1);
  VectorSentenceIterator it(sentences);
  std::string model_bytes;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model_bytes);
  if (!status.ok()) fail("tokenizer train: sentencepiece failed: ", status.ToString());
  Tokenizer tokenizer = from_model_bytes(std::move(model_bytes), "trained model");
  tokenizer.save(out_dir);
  if (tokenizer.vocab_size() < options.vocab_size)
    log_warn("tokenizer: corpus supports only ", tokenizer.vocab_size(), " pieces (asked for ", options.vocab_size, ")");
  return tokenizer;
}

Tokenizer Tokenizer::from_model_bytes(std::string model_bytes, const std::string& origin) {
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(model_bytes);
  if (!status.ok()) fail(origin, ": not a sentencepiece model: ", status.ToString());
  Tokenizer t;
  t.vocab_size_ = sp->GetPieceSize();
  auto id_of = [&](std::string_view piece) {
    const int id = sp->PieceToId(std::string(piece));
    if (id == sp->unk_id() || sp->IdToPiece(id) != piece)
      fail(origin, ": special token ", piece, " is missing from the model (not trained by stepwise tokenizer train?)");
    return static_cast<int32_t>(id);
  };
  t.unk_ = sp->unk_id();
  t.pad_ = id_of(kPadToken);
  t.system_ = id_of(kSystemToken);
  t.user_ = id_of(kUserToken);
  t.assistant_ = id_of(kAssistantToken);
  t.eot_ = id_of(kEndOfTurnToken);
  t.eod_ = id_of(kEndOfDocumentToken);
  if (!sp->IsByte(sp->PieceToId("<0xE4>"))) fail(origin, ": model has no byte fallback pieces");
  t.hash_ = content_hash(model_bytes);
  t.model_bytes_ = std::move(model_bytes);
  t.sp_ = std::move(sp);
  return t;
}

Tokenizer Tokenizer::load(const fs::path& dir) {
  const fs::path model_path = dir / "tokenizer.model", json_path = dir / "tokenizer.json";
  if (!fs::exists(model_path)) fail(model_path.string(), ": missing (expected a stepwise tokenizer directory)");
  if (!fs::exists(json_path)) fail(json_path.string(), ": missing (expected a stepwise tokenizer directory)");
  Tokenizer t = from_model_bytes(read_file(model_path), model_path.string());
  json meta;
  try {
    meta = json::parse(read_file(json_path));
  } catch (const json::parse_error& e) {
    fail(json_path.string(), ": invalid JSON: ", e.what());
  }
  const json expected = tokenizer_json(t);
  for (const char* key : {"format", "vocab_size", "special_tokens", "model_hash"}) {
    if (!meta.is_object() || !meta.contains(key))
      fail(json_path.string(), ": missing field '", key, "'");
    if (meta[key] != expected[key])
      fail(json_path.string(), ": field '", key, "' is ", meta[key].dump(), " but ", model_path.string(), " gives ",
           expected[key].dump());
  }
  if (meta.value("version", 0) != kTokenizerJsonVersion)
    fail(json_path.string(), ": unsupported version ", meta.value("version", json()).dump());
  return t;
}

void Tokenizer::save(const fs::path& dir) const {
  write_file_atomic(dir / "tokenizer.model", model_bytes_);
  write_file_atomic(dir / "tokenizer.json", tokenizer_json(*this).dump(2) + "\n");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail("tokenizer: encode failed: ", status.ToString());
  return {ids.begin(), ids.end()};
}

std::vector<int32_t> Tokenizer::encode_literal(std::string_view text) const {
  // Cuts the text one byte into every special-token string so that sentencepiece cannot match it as a symbol; the
  // pieces decode back to the same text.
  std::vector<int32_t> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t cut = std::string_view::npos;
    for (std::string_view s : kUserSymbols) cut = std::min(cut, text.find(s, start));
    const size_t end = cut == std::string_view::npos ? text.size() : cut + 1;
    std::vector<int32_t> part = encode(text.substr(start, end - start));
    out.insert(out.end(), part.begin(), part.end());
    start = end;
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) fail("tokenizer: id ", id, " outside the vocabulary [0, ", vocab_size_, ")");
    if (id != pad_) v.push_back(id);
  }
  std::string text;
  const auto status = sp_->Decode(v, &text);
  if (!status.ok()) fail("tokenizer: decode failed: ", status.ToString());
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size_) fail("tokenizer: id ", id, " outside the vocabulary [0, ", vocab_size_, ")");
  return sp_->IdToPiece(id);
}

bool Tokenizer::is_special(int32_t id) const {
  return id == pad_ || id == system_ || id == user_ || id == assistant_ || id == eot_ || id == eod_;
}

}  // namespace stepwise
