// Pretraining, SFT and preference loaders over token shards (see loaders.h).
#include "data/loaders.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace stepwise {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform integer in [0, n) from a 64-bit stream by rejection (no modulo bias); portable, unlike std::shuffle.
uint64_t uniform_below(uint64_t n, uint64_t& stream) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t r = splitmix64(stream++);
    if (r < limit) return r % n;
  }
}

void reset_batch(TokenBatch& b, int64_t B, int64_t T, int32_t pad) {
  b.B = B;
  b.T = T;
  b.tokens.assign(size_t(B * T), pad);
  b.targets.assign(size_t(B * T), kIgnoreTarget);
  b.pos.assign(size_t(B * T), 0);
  b.seg.assign(size_t(B * T), 0);
}

// Marks positions [from, T) of row `r` as padding: its own segment `seg` (so no real token attends to it).
void pad_row(TokenBatch& b, int64_t r, int64_t from, int32_t seg) {
  for (int64_t t = from; t < b.T; ++t) b.seg[size_t(r * b.T + t)] = seg;
}

}  // namespace

int64_t TokenBatch::num_targets() const {
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t != kIgnoreTarget; });
}

std::pair<SampleRange, SampleRange> split_holdout(int64_t num_samples, const HoldOut& hold_out) {
  if (hold_out.count < 0 || hold_out.fraction < 0 || hold_out.fraction >= 1)
    fail("hold-out: count ", hold_out.count, " / fraction ", hold_out.fraction, " out of range");
  const int64_t held =
      std::max(hold_out.count, int64_t(std::llround(hold_out.fraction * double(num_samples))));
  if (held >= num_samples)
    fail("hold-out of ", held, " samples leaves nothing to train on (", num_samples, " samples)");
  return {SampleRange{0, num_samples - held}, SampleRange{num_samples - held, num_samples}};
}

ShardLoader::ShardLoader(std::shared_ptr<const TokenShard> shard, ShardKind kind, const Tokenizer& tokenizer,
                         const LoaderOptions& options)
    : shard_(std::move(shard)), options_(options), pad_(tokenizer.pad()) {
  SW_CHECK(shard_ != nullptr);
  const std::string where = shard_->path().string();
  if (shard_->kind() != kind)
    fail(where, ": a ", shard_kind_name(shard_->kind()), " shard given to the ", shard_kind_name(kind), " loader");
  if (shard_->tokenizer_hash() != tokenizer.hash())
    fail(where, ": built with tokenizer ", shard_->tokenizer_hash(), ", not the loaded one (", tokenizer.hash(),
         "); rebuild it with ensure_shard");
  if (options_.batch_size <= 0) fail("loader: batch size ", options_.batch_size, " must be positive");
  if (kind != ShardKind::preference && options_.seq_len <= 0)
    fail("loader: seq_len ", options_.seq_len, " must be positive");
  range_ = options_.range;
  if (range_.end < 0) range_.end = shard_->num_samples();
  if (range_.begin < 0 || range_.begin >= range_.end || range_.end > shard_->num_samples())
    fail(where, ": sample range [", range_.begin, ", ", range_.end, ") is empty or outside the shard's ",
         shard_->num_samples(), " samples");
  state_.seed = options_.seed;
  build_order();
}

void ShardLoader::build_order() {
  order_.resize(size_t(range_.size()));
  for (int64_t i = 0; i < range_.size(); ++i) order_[size_t(i)] = range_.begin + i;
  if (!options_.shuffle) return;
  uint64_t stream = splitmix64(state_.seed) ^ splitmix64(uint64_t(state_.epoch) + 0x5157u);
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[uniform_below(i, stream)]);
}

int64_t ShardLoader::current_sample() {
  if (state_.cursor >= range_.size()) {
    if (!options_.repeat) return -1;
    ++state_.epoch;
    state_.cursor = 0;
    state_.offset = 0;
    build_order();
  }
  return order_[size_t(state_.cursor)];
}

void ShardLoader::advance() {
  ++state_.cursor;
  state_.offset = 0;
}

json ShardLoader::state_json() const {
  return {{"kind", shard_kind_name(shard_->kind())},
          {"shard_samples", shard_->num_samples()},
          {"source_hash", shard_->source_hash()},
          {"range", {range_.begin, range_.end}},
          {"shuffle", options_.shuffle},
          {"seed", state_.seed},
          {"epoch", state_.epoch},
          {"cursor", state_.cursor},
          {"offset", state_.offset}};
}

void ShardLoader::restore(const json& saved) {
  const json expected = state_json();
  try {
    for (const char* key : {"kind", "shard_samples", "source_hash", "range", "shuffle"})
      if (saved.at(key) != expected[key])
        fail("loader state: '", key, "' is ", saved.at(key).dump(), " but this loader has ", expected[key].dump(),
             " (different data or options)");
    LoaderState s;
    s.seed = saved.at("seed").get<uint64_t>();
    s.epoch = saved.at("epoch").get<int64_t>();
    s.cursor = saved.at("cursor").get<int64_t>();
    s.offset = saved.at("offset").get<int64_t>();
    if (s.epoch < 0 || s.cursor < 0 || s.cursor > range_.size() || s.offset < 0)
      fail("loader state: epoch/cursor/offset out of range: ", saved.dump());
    state_ = s;
  } catch (const json::exception& e) {
    fail("loader state: ", e.what());
  }
  build_order();
  if (state_.cursor < range_.size()) {
    const auto [begin, end] = shard_->part_range(order_[size_t(state_.cursor)]);
    if (state_.offset >= end - begin) fail("loader state: offset ", state_.offset, " beyond its sample");
  }
}

PretrainLoader::PretrainLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer,
                               const LoaderOptions& options)
    : ShardLoader(std::move(shard), ShardKind::pretrain, tokenizer, options) {}

bool PretrainLoader::next(TokenBatch& batch) {
  const int64_t B = options_.batch_size, T = options_.seq_len;
  reset_batch(batch, B, T, pad_);
  std::vector<int32_t> piece(size_t(T + 1));
  bool any = false;
  for (int64_t r = 0; r < B; ++r) {
    int64_t p = 0;
    int32_t seg = 0;
    while (p < T) {
      const int64_t sample = current_sample();
      if (sample < 0) break;
      const auto [begin, end] = shard_->part_range(sample);
      const int64_t pairs = end - begin - 1;  // (input, next token) pairs of this document
      const int64_t take = std::min(pairs - state_.offset, T - p);
      if (take > 0) {
        shard_->copy_tokens(begin + state_.offset, begin + state_.offset + take + 1, piece.data());
        for (int64_t j = 0; j < take; ++j) {
          const size_t at = size_t(r * T + p + j);
          batch.tokens[at] = piece[size_t(j)];
          batch.targets[at] = piece[size_t(j + 1)];
          batch.pos[at] = int32_t(j);
          batch.seg[at] = seg;
        }
        p += take;
        ++seg;
        state_.offset += take;
        any = true;
      }
      if (state_.offset >= pairs) advance();
    }
    pad_row(batch, r, p, seg);
  }
  return any;
}

SftLoader::SftLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer, const LoaderOptions& options)
    : ShardLoader(std::move(shard), ShardKind::sft, tokenizer, options) {}

bool SftLoader::next(TokenBatch& batch) {
  const int64_t B = options_.batch_size, T = options_.seq_len;
  reset_batch(batch, B, T, pad_);
  const auto mask = shard_->mask();
  std::vector<int32_t> conv;
  bool any = false;
  for (int64_t r = 0; r < B; ++r) {
    int64_t p = 0;
    int32_t seg = 0;
    while (p < T) {
      const int64_t sample = current_sample();
      if (sample < 0) break;
      const auto [begin, end] = shard_->part_range(sample);
      const int64_t n = std::min(end - begin - 1, T);  // positions this conversation takes
      bool has_target = false;
      for (int64_t j = 1; j <= n; ++j) has_target |= mask[size_t(begin + j)] != 0;
      if (!has_target) {
        ++skipped_;
        advance();
        continue;
      }
      if (n > T - p) break;  // does not fit: next row
      conv.resize(size_t(n + 1));
      shard_->copy_tokens(begin, begin + n + 1, conv.data());
      for (int64_t j = 0; j < n; ++j) {
        const size_t at = size_t(r * T + p + j);
        batch.tokens[at] = conv[size_t(j)];
        batch.targets[at] = mask[size_t(begin + j + 1)] ? conv[size_t(j + 1)] : kIgnoreTarget;
        batch.pos[at] = int32_t(j);
        batch.seg[at] = seg;
      }
      p += n;
      ++seg;
      any = true;
      advance();
    }
    pad_row(batch, r, p, seg);
  }
  return any;
}

PreferenceLoader::PreferenceLoader(std::shared_ptr<const TokenShard> shard, const Tokenizer& tokenizer,
                                   const LoaderOptions& options)
    : ShardLoader(std::move(shard), ShardKind::preference, tokenizer, options) {}

bool PreferenceLoader::next(std::vector<PreferenceExample>& batch) {
  batch.clear();
  while (int64_t(batch.size()) < options_.batch_size) {
    const int64_t sample = current_sample();
    if (sample < 0) break;
    batch.push_back({sample, shard_->part_tokens(sample, 0), shard_->part_tokens(sample, 1),
                     shard_->part_tokens(sample, 2)});
    advance();
  }
  return !batch.empty();
}

TokenBatch preference_pair_batch(const std::vector<PreferenceExample>& examples, int64_t seq_len, int32_t pad_id) {
  if (seq_len < 2) fail("preference batch: seq_len ", seq_len, " must be at least 2");
  const int64_t n = int64_t(examples.size()), T = seq_len, keep = T + 1;
  TokenBatch batch;
  reset_batch(batch, 2 * n, T, pad_id);
  for (int64_t i = 0; i < n; ++i) {
    const PreferenceExample& ex = examples[size_t(i)];
    const int64_t longest_reply = int64_t(std::max(ex.chosen.size(), ex.rejected.size()));
    const int64_t prompt_keep = std::min(ex.prompt_len(), std::max(keep - longest_reply, keep / 2));
    for (int64_t side = 0; side < 2; ++side) {
      const std::vector<int32_t>& reply = side == 0 ? ex.chosen : ex.rejected;
      std::vector<int32_t> row(ex.prompt.end() - prompt_keep, ex.prompt.end());
      row.insert(row.end(), reply.begin(), reply.begin() + std::min(int64_t(reply.size()), keep - prompt_keep));
      const int64_t r = side * n + i, L = int64_t(row.size());
      for (int64_t j = 0; j + 1 < L; ++j) {
        const size_t at = size_t(r * T + j);
        batch.tokens[at] = row[size_t(j)];
        batch.targets[at] = j + 1 >= prompt_keep ? row[size_t(j + 1)] : kIgnoreTarget;
        batch.pos[at] = int32_t(j);
      }
      pad_row(batch, r, L - 1, 1);
    }
  }
  return batch;
}

}  // namespace stepwise
