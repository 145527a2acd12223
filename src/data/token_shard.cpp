// Token shard writer, validating mmap reader, JSONL tokenization and the shard cache (see token_shard.h).
#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "data/chat_template.h"
#include "data/jsonl.h"
#include "data/tokenizer.h"

namespace stepwise {

static_assert(std::endian::native == std::endian::little, "token shards are little-endian");

namespace {

constexpr char kMagic[8] = {'S', 'W', 'S', 'H', 'A', 'R', 'D', '\0'};
constexpr uint32_t kDtypeU16 = 1, kDtypeI32 = 2;
constexpr size_t kHashBytes = 32;

// Byte offsets of the header fields.
constexpr size_t kAtVersion = 8, kAtDtype = 12, kAtKind = 16, kAtVocab = 20, kAtTokens = 24, kAtSamples = 32,
                 kAtTokenizerHash = 40, kAtSourceHash = 72;

uint32_t dtype_for_vocab(int64_t vocab) { return vocab <= 65535 ? kDtypeU16 : kDtypeI32; }
size_t dtype_bytes(uint32_t dtype) { return dtype == kDtypeU16 ? 2 : 4; }
uint64_t round_up8(uint64_t n) { return (n + 7) / 8 * 8; }
int64_t parts_of(ShardKind kind) { return kind == ShardKind::preference ? 3 : 1; }
bool has_mask(ShardKind kind) { return kind != ShardKind::pretrain; }

bool valid_kind(uint32_t k) { return k >= 1 && k <= 3; }

std::string hash_field(const uint8_t* p, const std::string& where, const char* name) {
  std::string s(reinterpret_cast<const char*>(p), kHashBytes);
  s.resize(std::strlen(s.c_str()));
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) fail(where, ": header field '", name, "' is not a hex hash");
  for (size_t i = s.size(); i < kHashBytes; ++i)
    if (p[i] != 0) fail(where, ": header field '", name, "' is not NUL-padded");
  return s;
}

// Checks offsets, token ids and mask of a shard body; shared by the writer and the reader.
template <class TokenAt>
void check_body(const std::string& where, ShardKind kind, int64_t vocab, int64_t num_tokens, int64_t num_samples,
                std::span<const uint64_t> offsets, std::span<const uint8_t> mask, TokenAt token_at) {
  const int64_t expected_offsets = parts_of(kind) * num_samples + 1;
  if (int64_t(offsets.size()) != expected_offsets)
    fail(where, ": ", offsets.size(), " offsets for ", num_samples, " samples (expected ", expected_offsets, ")");
  if (offsets[0] != 0) fail(where, ": offsets[0] is ", offsets[0], ", expected 0");
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] <= offsets[i - 1])
      fail(where, ": offsets not strictly increasing at index ", i, " (", offsets[i - 1], " then ", offsets[i], ")");
  if (offsets.back() != uint64_t(num_tokens))
    fail(where, ": last offset ", offsets.back(), " out of range (expected num_tokens = ", num_tokens, ")");
  for (int64_t i = 0; i < num_tokens; ++i) {
    const int64_t id = token_at(i);
    if (id < 0 || id >= vocab) fail(where, ": token ", i, " has id ", id, " outside the vocabulary [0, ", vocab, ")");
  }
  if (has_mask(kind)) {
    if (int64_t(mask.size()) != num_tokens) fail(where, ": mask has ", mask.size(), " entries for ", num_tokens,
                                                 " tokens");
    for (int64_t i = 0; i < num_tokens; ++i)
      if (mask[i] > 1) fail(where, ": mask value ", int(mask[i]), " at token ", i, " (expected 0 or 1)");
  } else if (!mask.empty()) {
    fail(where, ": a ", shard_kind_name(kind), " shard has no mask");
  }
}

void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
uint64_t get_u64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

void write_all(std::FILE* f, const void* data, size_t bytes, const fs::path& path) {
  if (bytes && std::fwrite(data, 1, bytes, f) != bytes) fail(path.string(), ": write failed: ", std::strerror(errno));
}

}  // namespace

const char* shard_kind_name(ShardKind kind) {
  switch (kind) {
    case ShardKind::pretrain: return "pretrain";
    case ShardKind::sft: return "sft";
    case ShardKind::preference: return "preference";
  }
  return "unknown";
}

ShardKind parse_shard_kind(const std::string& name) {
  if (name == "pretrain") return ShardKind::pretrain;
  if (name == "sft") return ShardKind::sft;
  if (name == "preference") return ShardKind::preference;
  fail("unknown shard kind '", name, "' (expected pretrain, sft or preference)");
}

void write_shard(const fs::path& path, const ShardContent& c) {
  const std::string where = path.string() + " (writing)";
  if (c.vocab_size <= 0) fail(where, ": vocab size ", c.vocab_size);
  if (c.tokenizer_hash.size() > kHashBytes || c.source_hash.size() > kHashBytes) fail(where, ": hash too long");
  const int64_t parts = parts_of(c.kind);
  if (c.offsets.empty() || (int64_t(c.offsets.size()) - 1) % parts != 0)
    fail(where, ": ", c.offsets.size(), " offsets is not parts x samples + 1");
  const int64_t num_tokens = int64_t(c.tokens.size()), num_samples = (int64_t(c.offsets.size()) - 1) / parts;
  check_body(where, c.kind, c.vocab_size, num_tokens, num_samples, c.offsets, c.mask,
             [&](int64_t i) { return c.tokens[size_t(i)]; });

  uint8_t header[kShardHeaderBytes] = {};
  const uint32_t dtype = dtype_for_vocab(c.vocab_size);
  std::memcpy(header, kMagic, 8);
  put_u32(header + kAtVersion, kShardVersion);
  put_u32(header + kAtDtype, dtype);
  put_u32(header + kAtKind, uint32_t(c.kind));
  put_u32(header + kAtVocab, uint32_t(c.vocab_size));
  put_u64(header + kAtTokens, uint64_t(num_tokens));
  put_u64(header + kAtSamples, uint64_t(num_samples));
  std::memcpy(header + kAtTokenizerHash, c.tokenizer_hash.data(), c.tokenizer_hash.size());
  std::memcpy(header + kAtSourceHash, c.source_hash.data(), c.source_hash.size());

  write_file_atomic_with(path, [&](std::FILE* f) {
    write_all(f, header, sizeof header, path);
    if (dtype == kDtypeU16) {
      std::vector<uint16_t> narrow(c.tokens.begin(), c.tokens.end());
      write_all(f, narrow.data(), narrow.size() * 2, path);
    } else {
      write_all(f, c.tokens.data(), c.tokens.size() * 4, path);
    }
    const uint64_t token_bytes = uint64_t(num_tokens) * dtype_bytes(dtype);
    const uint8_t zeros[8] = {};
    write_all(f, zeros, round_up8(token_bytes) - token_bytes, path);
    write_all(f, c.offsets.data(), c.offsets.size() * 8, path);
    write_all(f, c.mask.data(), c.mask.size(), path);
  });
}

std::shared_ptr<const TokenShard> TokenShard::open(const fs::path& path) {
  std::shared_ptr<TokenShard> shard(new TokenShard());
  shard->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path.string(), ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path.string(), ": cannot stat: ", std::strerror(errno));
  }
  shard->map_bytes_ = size_t(st.st_size);
  if (shard->map_bytes_ < kShardHeaderBytes) {
    ::close(fd);
    fail(path.string(), ": truncated: ", shard->map_bytes_, " bytes, smaller than the ", kShardHeaderBytes,
         "-byte header");
  }
  void* map = ::mmap(nullptr, shard->map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path.string(), ": cannot mmap: ", std::strerror(errno));
  shard->map_ = map;
  shard->validate();
  return shard;
}

TokenShard::~TokenShard() {
  if (map_) ::munmap(map_, map_bytes_);
}

void TokenShard::validate() {
  const std::string where = path_.string();
  const auto* base = static_cast<const uint8_t*>(map_);
  const uint64_t file_bytes = map_bytes_;
  if (std::memcmp(base, kMagic, 8) != 0) fail(where, ": wrong magic (not a stepwise token shard)");
  const uint32_t version = get_u32(base + kAtVersion);
  if (version != kShardVersion) fail(where, ": unknown version ", version, " (this build reads ", kShardVersion, ")");
  dtype_ = get_u32(base + kAtDtype);
  if (dtype_ != kDtypeU16 && dtype_ != kDtypeI32) fail(where, ": unknown token dtype ", dtype_);
  const uint32_t kind = get_u32(base + kAtKind);
  if (!valid_kind(kind)) fail(where, ": unknown kind ", kind);
  kind_ = ShardKind(kind);
  const uint32_t vocab = get_u32(base + kAtVocab);
  if (vocab == 0 || vocab > uint32_t(INT32_MAX)) fail(where, ": vocab size ", vocab, " out of range");
  vocab_size_ = int32_t(vocab);
  if (dtype_ != dtype_for_vocab(vocab_size_))
    fail(where, ": token dtype ", dtype_, " does not match vocab size ", vocab_size_);
  const uint64_t num_tokens = get_u64(base + kAtTokens), num_samples = get_u64(base + kAtSamples);
  if (num_tokens > file_bytes || num_samples > file_bytes)
    fail(where, ": header counts (", num_tokens, " tokens, ", num_samples, " samples) exceed the file size ",
         file_bytes);
  tokenizer_hash_ = hash_field(base + kAtTokenizerHash, where, "tokenizer_hash");
  source_hash_ = hash_field(base + kAtSourceHash, where, "source_hash");
  for (size_t i = kAtSourceHash + kHashBytes; i < kShardHeaderBytes; ++i)
    if (base[i] != 0) fail(where, ": reserved header bytes are not zero");

  const uint64_t token_bytes = num_tokens * dtype_bytes(dtype_);
  const uint64_t num_offsets = uint64_t(parts_of(kind_)) * num_samples + 1;
  const uint64_t at_offsets = kShardHeaderBytes + round_up8(token_bytes);
  const uint64_t at_mask = at_offsets + num_offsets * 8;
  const uint64_t expected = at_mask + (has_mask(kind_) ? num_tokens : 0);
  if (expected != file_bytes)
    fail(where, ": size mismatch: header says ", num_tokens, " tokens and ", num_samples, " samples (", expected,
         " bytes) but the file has ", file_bytes, " bytes", expected > file_bytes ? " (truncated)" : "");
  num_tokens_ = int64_t(num_tokens);
  num_samples_ = int64_t(num_samples);
  tokens_ = base + kShardHeaderBytes;
  offsets_ = {reinterpret_cast<const uint64_t*>(base + at_offsets), size_t(num_offsets)};
  if (has_mask(kind_)) mask_ = {base + at_mask, size_t(num_tokens)};
  check_body(where, kind_, vocab_size_, num_tokens_, num_samples_, offsets_, mask_,
             [&](int64_t i) { return int64_t(token(i)); });
}

int32_t TokenShard::token(int64_t i) const {
  if (dtype_ == kDtypeU16) {
    uint16_t v;
    std::memcpy(&v, tokens_ + 2 * i, 2);
    return v;
  }
  int32_t v;
  std::memcpy(&v, tokens_ + 4 * i, 4);
  return v;
}

void TokenShard::copy_tokens(int64_t begin, int64_t end, int32_t* out) const {
  SW_CHECK(0 <= begin && begin <= end && end <= num_tokens_);
  for (int64_t i = begin; i < end; ++i) out[i - begin] = token(i);
}

std::pair<int64_t, int64_t> TokenShard::part_range(int64_t sample, int64_t part) const {
  SW_CHECK(0 <= sample && sample < num_samples_ && 0 <= part && part < parts_per_sample());
  const size_t k = size_t(sample * parts_per_sample() + part);
  return {int64_t(offsets_[k]), int64_t(offsets_[k + 1])};
}

std::vector<int32_t> TokenShard::part_tokens(int64_t sample, int64_t part) const {
  const auto [begin, end] = part_range(sample, part);
  std::vector<int32_t> out(size_t(end - begin));
  copy_tokens(begin, end, out.data());
  return out;
}

namespace {

const std::string& required_string(const json& record, const char* field, const std::string& where) {
  if (!record.is_object() || !record.contains(field)) fail(where, ": missing field '", field, "'");
  const json& v = record[field];
  if (!v.is_string()) fail(where, ": field '", field, "' must be a string");
  if (v.get_ref<const std::string&>().empty()) fail(where, ": field '", field, "' is empty");
  return v.get_ref<const std::string&>();
}

// A preference reply: a string, or an {"role": "assistant", "content": ...} object.
std::string reply_text(const json& record, const char* field, const std::string& where) {
  if (record.contains(field) && record[field].is_object()) {
    const json& turn = record[field];
    if (turn.contains("role") && turn["role"] != "assistant")
      fail(where, ": field '", field, "' must be an assistant reply");
    return required_string(turn, "content", cat(where, ": ", field));
  }
  return required_string(record, field, where);
}

void append_part(ShardContent& c, const std::vector<int32_t>& tokens, uint8_t mask_value) {
  c.tokens.insert(c.tokens.end(), tokens.begin(), tokens.end());
  if (has_mask(c.kind)) c.mask.insert(c.mask.end(), tokens.size(), mask_value);
  c.offsets.push_back(c.tokens.size());
}

}  // namespace

ShardContent tokenize_jsonl(ShardKind kind, const fs::path& source, const Tokenizer& tokenizer) {
  ShardContent c;
  c.kind = kind;
  c.vocab_size = tokenizer.vocab_size();
  c.tokenizer_hash = tokenizer.hash();
  c.source_hash = content_hash(read_file(source));
  c.offsets.push_back(0);
  jsonl_for_each(source, [&](const json& record, int64_t line) {
    const std::string where = cat(source.string(), ":", line);
    if (kind == ShardKind::pretrain) {
      std::vector<int32_t> doc = tokenizer.encode_literal(required_string(record, "text", where));
      doc.push_back(tokenizer.eod());
      append_part(c, doc, 0);
    } else if (kind == ShardKind::sft) {
      if (!record.is_object() || !record.contains("conversations")) fail(where, ": missing field 'conversations'");
      const Conversation conv = conversation_from_json(record["conversations"], where);
      bool has_reply = false;
      for (const ChatMessage& m : conv) has_reply |= m.role == ChatRole::assistant;
      if (!has_reply) fail(where, ": conversation has no assistant turn (nothing to train on)");
      RenderedChat r = render_conversation(tokenizer, conv);
      c.tokens.insert(c.tokens.end(), r.tokens.begin(), r.tokens.end());
      c.mask.insert(c.mask.end(), r.loss_mask.begin(), r.loss_mask.end());
      c.offsets.push_back(c.tokens.size());
    } else {
      if (!record.is_object() || !record.contains("conversations")) fail(where, ": missing field 'conversations'");
      const Conversation prompt = conversation_from_json(record["conversations"], where);
      if (prompt.back().role != ChatRole::user) fail(where, ": preference prompt must end with a user turn");
      append_part(c, render_prompt(tokenizer, prompt), 0);
      append_part(c, render_reply(tokenizer, reply_text(record, "chosen", where)), 1);
      append_part(c, render_reply(tokenizer, reply_text(record, "rejected", where)), 1);
    }
  });
  if (c.offsets.size() == 1) fail(source.string(), ": no records");
  return c;
}

fs::path ensure_shard(ShardKind kind, const fs::path& source, const Tokenizer& tokenizer, const fs::path& cache_dir) {
  const std::string source_hash = content_hash(read_file(source));
  const std::string path_key = content_hash(fs::absolute(source).lexically_normal().string()).substr(0, 8);
  const fs::path shard_path =
      cache_dir / cat(source.stem().string(), ".", shard_kind_name(kind), ".", path_key, ".swshard");
  if (fs::exists(shard_path)) {
    std::string stale;
    try {
      const auto shard = TokenShard::open(shard_path);
      if (shard->kind() != kind) stale = "kind differs";
      else if (shard->tokenizer_hash() != tokenizer.hash()) stale = "tokenizer changed";
      else if (shard->source_hash() != source_hash) stale = "source changed";
    } catch (const Error& e) {
      stale = e.what();
    }
    if (stale.empty()) return shard_path;
    log_info("token shard ", shard_path.string(), ": rebuilding (", stale, ")");
  }
  ShardContent content = tokenize_jsonl(kind, source, tokenizer);
  if (content.source_hash != source_hash) fail(source.string(), ": changed while being tokenized");
  write_shard(shard_path, content);
  return shard_path;
}

}  // namespace stepwise
