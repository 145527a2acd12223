// Loaders that turn token shards into training batches: packed pretraining rows, packed + masked SFT rows, and
// (prompt, chosen, rejected) preference examples. Deterministic: the sample order of each epoch is a function of
// (seed, epoch) only, and the loader state (epoch, cursor, seed) saved as JSON resumes the exact same continuation.
//
// Dimension letters: B = rows per batch, T = positions per row (seq_len).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "data/jsonl.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace stepwise {

inline constexpr int32_t kIgnoreTarget = -100;

struct TokenBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;   // (B, T) input ids
  std::vector<int32_t> targets;  // (B, T) next-token ids; -100 where no loss (padding, masked prompt tokens)
  std::vector<int32_t> pos;      // (B, T) position within its own document/conversation (restarts at 0)
  std::vector<int32_t> seg;      // (B, T) segment id per position; attention never crosses segments
  int64_t num_targets() const;   // count of targets != -100
};

// A contiguous range of sample indices of a shard.
struct SampleRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// Held-out samples for eval loss: the last max(count, round(fraction * n)) samples of the shard.
struct HoldOut {
  int64_t count = 0;
  double fraction = 0.0;
};
// Splits [0, num_samples) into (train, eval); Error when the hold-out would leave no training sample.
std::pair<SampleRange, SampleRange> split_holdout(int64_t num_samples, const HoldOut& hold_out);

struct LoaderOptions {
  int64_t batch_size = 1;  // B (preference: examples per batch)
  int64_t seq_len = 0;     // T (unused by the preference loader)
  uint64_t seed = 0;
  bool shuffle = true;          // permute the samples of each epoch by (seed, epoch)
  bool repeat = true;           // false: one pass over the range, then next() returns false (eval)
  SampleRange range{0, -1};     // samples used; end = -1 means up to the last sample
};

// Where a loader is: epoch, index into that epoch's order, and token offset inside the current sample (pretrain
// documents may continue into the next row).
struct LoaderState {
  uint64_t seed = 0;
  int64_t epoch = 0, cursor = 0, offset = 0;
};

// Shared machinery: shard + options + per-epoch order + state save/restore.
class ShardLoader {
 public:
  LoaderState state() const { return state_; }
  json state_json() const;
  // Restores a state saved by state_json() of a loader over the same shard, kind and range; Error otherwise.
  void restore(const json& saved);
  int64_t epoch() const { return state_.epoch; }
  int64_t num_samples() const { return range_.size(); }
  const TokenShard& shard() const { return *shard_; }

 protected:
  ShardLoader(std::shared_ptr<const TokenShard> shard, ShardKind kind, const Tokenizer& tokenizer,
              const LoaderOptions& options);
  // The sample under the cursor, moving to the next epoch first when the current one is done; -1 when done and
  // not repeating.
  int64_t current_sample();
  void advance();  // next sample, offset 0

  std::shared_ptr<const TokenShard> shard_;
  LoaderOptions options_;
  SampleRange range_;
  int32_t pad_ = 0;
  LoaderState state_;

 private:
  void build_order();
  std::vector<int64_t> order_;  // sample indices of state_.epoch
};

// Packs documents (each ending with <|end_of_document|>) into B x T rows. Every position predicts the next token
// of its own document; a document longer than the room left continues in the next row with positions from 0 and
// a new segment. Only the tail of a final, non-repeating pass is padded (pad id, target -100).
class PretrainLoader : public ShardLoader {
 public:
  PretrainLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer, const LoaderOptions& options);
  // Fills `batch`; false when a non-repeating loader has no tokens left.
  bool next(TokenBatch& batch);
};

// Packs rendered conversations several per row without crossing (one segment each). A conversation of L tokens
// takes L - 1 positions (targets = the next token where the loss mask is 1, else -100); longer than T it is cut to
// its first T + 1 tokens; one whose kept part has no assistant token is skipped.
class SftLoader : public ShardLoader {
 public:
  SftLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer, const LoaderOptions& options);
  bool next(TokenBatch& batch);
  int64_t skipped_without_targets() const { return skipped_; }

 private:
  int64_t skipped_ = 0;
};

// One preference example: prompt ends with <|assistant|>; chosen / rejected are replies ending with <|end_of_turn|>.
struct PreferenceExample {
  int64_t sample = 0;  // index in the shard
  std::vector<int32_t> prompt, chosen, rejected;
  int64_t prompt_len() const { return int64_t(prompt.size()); }
};

class PreferenceLoader : public ShardLoader {
 public:
  PreferenceLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer, const LoaderOptions& options);
  // Up to batch_size examples (fewer only at the end of a non-repeating pass); false when none is left.
  bool next(std::vector<PreferenceExample>& batch);
};

// Rows for DPO / reward models: rows [0, n) are prompt + chosen, rows [n, 2n) prompt + rejected; targets only on
// reply tokens; each row one segment, padded to T. Too long: the prompt keeps its last tokens (the same number for
// chosen and rejected, at least T / 2 when the prompt is that long), then replies are cut at the end.
TokenBatch preference_pair_batch(const std::vector<PreferenceExample>& examples, int64_t seq_len, int32_t pad_id);

}  // namespace stepwise
