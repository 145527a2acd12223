// Token shards: a tokenized corpus in one binary file, memory-mapped for the loaders. Layout (little-endian):
//   [0,128)  header: magic "SWSHARD\0", u32 version, u32 dtype (1 = u16, 2 = i32), u32 kind (1 pretrain, 2 sft,
//            3 preference), u32 vocab_size, u64 num_tokens, u64 num_samples, char[32] tokenizer hash,
//            char[32] source hash (hex, NUL-padded), zero padding
//   tokens   num_tokens x dtype (u16 when vocab_size <= 65535), zero padding to a multiple of 8
//   offsets  u64 x (num_samples + 1) (pretrain, sft) or (3 x num_samples + 1) (preference: prompt | chosen | rejected
//            of each sample), starting at 0, strictly increasing, ending at num_tokens
//   mask     u8 x num_tokens (sft, preference only): 1 on assistant content tokens and their <|end_of_turn|>
// Opening validates everything (sizes, offsets, token ids, mask values) and throws Error naming the file.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

class Tokenizer;

enum class ShardKind : uint32_t { pretrain = 1, sft = 2, preference = 3 };
const char* shard_kind_name(ShardKind kind);
ShardKind parse_shard_kind(const std::string& name);  // "pretrain" | "sft" | "preference"

inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 128;

// What a shard holds, in memory (writer input). Pretrain samples are documents, each ending with <|end_of_document|>;
// sft samples are rendered conversations; preference samples are three parts: prompt, chosen reply, rejected reply.
struct ShardContent {
  ShardKind kind = ShardKind::pretrain;
  int32_t vocab_size = 0;
  std::string tokenizer_hash;
  std::string source_hash;
  std::vector<int32_t> tokens;    // (num_tokens,)
  std::vector<uint64_t> offsets;  // (parts * num_samples + 1,)
  std::vector<uint8_t> mask;      // (num_tokens,) for sft / preference; empty for pretrain
};

// Validates `content` (same rules as the reader) and writes it atomically.
void write_shard(const fs::path& path, const ShardContent& content);

// Tokenizes a canonical JSONL file of the given kind; record errors name FILE:LINE and the field.
ShardContent tokenize_jsonl(ShardKind kind, const fs::path& source, const Tokenizer& tokenizer);

// A read-only, memory-mapped, fully validated shard.
class TokenShard {
 public:
  static std::shared_ptr<const TokenShard> open(const fs::path& path);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const fs::path& path() const { return path_; }
  ShardKind kind() const { return kind_; }
  int32_t vocab_size() const { return vocab_size_; }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t num_samples() const { return num_samples_; }
  const std::string& tokenizer_hash() const { return tokenizer_hash_; }
  const std::string& source_hash() const { return source_hash_; }
  // Parts per sample: 1 (pretrain, sft) or 3 (preference: prompt, chosen, rejected).
  int64_t parts_per_sample() const { return kind_ == ShardKind::preference ? 3 : 1; }

  int32_t token(int64_t i) const;
  // Copies tokens [begin, end) widened to int32.
  void copy_tokens(int64_t begin, int64_t end, int32_t* out) const;
  std::span<const uint64_t> offsets() const { return offsets_; }
  std::span<const uint8_t> mask() const { return mask_; }  // empty for pretrain
  // Token range of part `part` of sample `sample`.
  std::pair<int64_t, int64_t> part_range(int64_t sample, int64_t part = 0) const;
  std::vector<int32_t> part_tokens(int64_t sample, int64_t part = 0) const;

 private:
  TokenShard() = default;
  void validate();

  fs::path path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  ShardKind kind_ = ShardKind::pretrain;
  uint32_t dtype_ = 0;
  int32_t vocab_size_ = 0;
  int64_t num_tokens_ = 0, num_samples_ = 0;
  std::string tokenizer_hash_, source_hash_;
  const uint8_t* tokens_ = nullptr;
  std::span<const uint64_t> offsets_;
  std::span<const uint8_t> mask_;
};

// Returns a valid shard of `source` in `cache_dir`, (re)building it when it is missing, corrupt, or was built from
// a different tokenizer (hash) or different source content (hash).
fs::path ensure_shard(ShardKind kind, const fs::path& source, const Tokenizer& tokenizer, const fs::path& cache_dir);

}  // namespace stepwise
