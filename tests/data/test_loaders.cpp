// Tests of the loaders: packing invariants (segments, positions, targets) for pretraining and SFT, preference
// examples and pair batches, deterministic shuffling, hold-out splits, and state save/restore continuing exactly.
#include <gtest/gtest.h>

#include <map>

#include "data/chat_template.h"
#include "data/loaders.h"
#include "tokens_fixture.h"

using namespace stepwise;
using namespace stepwise::test;

namespace {

std::shared_ptr<const TokenShard> fixture_shard(ShardKind kind) {
  const fs::path source = tokens_fixture(cat(shard_kind_name(kind), ".jsonl"));
  return TokenShard::open(ensure_shard(kind, source, fixture_tokenizer(), scratch_dir("loader_cache")));
}

LoaderOptions options(int64_t B, int64_t T, uint64_t seed, bool shuffle, bool repeat) {
  LoaderOptions o;
  o.batch_size = B;
  o.seq_len = T;
  o.seed = seed;
  o.shuffle = shuffle;
  o.repeat = repeat;
  return o;
}

// Invariants every packed batch satisfies: shapes; in each row segments start at 0 and grow by one; positions
// restart at 0 with each segment and grow by one inside it; a target, when present, is the next input of the same
// segment unless it is the segment's last position.
void check_packing(const TokenBatch& b) {
  ASSERT_EQ(b.tokens.size(), size_t(b.B * b.T));
  ASSERT_EQ(b.targets.size(), b.tokens.size());
  ASSERT_EQ(b.pos.size(), b.tokens.size());
  ASSERT_EQ(b.seg.size(), b.tokens.size());
  for (int64_t r = 0; r < b.B; ++r) {
    const size_t row = size_t(r * b.T);
    EXPECT_EQ(b.seg[row], 0);
    EXPECT_EQ(b.pos[row], 0);
    for (int64_t t = 1; t < b.T; ++t) {
      const size_t i = row + size_t(t);
      if (b.seg[i] == b.seg[i - 1]) {
        if (b.targets[i] != kIgnoreTarget || b.targets[i - 1] != kIgnoreTarget) {
          EXPECT_EQ(b.pos[i], b.pos[i - 1] + 1);
        }
        if (b.targets[i - 1] != kIgnoreTarget) EXPECT_EQ(b.targets[i - 1], b.tokens[i]) << "row " << r << " t " << t;
      } else {
        EXPECT_EQ(b.seg[i], b.seg[i - 1] + 1);
        EXPECT_EQ(b.pos[i], 0);
      }
    }
  }
}

// The (input, target) pairs of the real (non-padding) positions of a batch, row-major.
std::vector<std::pair<int32_t, int32_t>> pairs_of(const TokenBatch& b) {
  std::vector<std::pair<int32_t, int32_t>> out;
  for (size_t i = 0; i < b.tokens.size(); ++i)
    if (b.targets[i] != kIgnoreTarget) out.emplace_back(b.tokens[i], b.targets[i]);
  return out;
}

bool same_batch(const TokenBatch& a, const TokenBatch& b) {
  return a.B == b.B && a.T == b.T && a.tokens == b.tokens && a.targets == b.targets && a.pos == b.pos &&
         a.seg == b.seg;
}

}  // namespace

TEST(PretrainLoader, PacksEveryDocumentPairExactlyOncePerEpoch) {
  const auto shard = fixture_shard(ShardKind::pretrain);
  const Tokenizer& tok = fixture_tokenizer();
  PretrainLoader loader(shard, tok, options(2, 48, 0, /*shuffle=*/false, /*repeat=*/false));
  std::vector<std::pair<int32_t, int32_t>> seen;
  TokenBatch b;
  int64_t batches = 0, eod_targets = 0;
  while (loader.next(b)) {
    check_packing(b);
    for (auto p : pairs_of(b)) seen.push_back(p);
    eod_targets += std::count(b.targets.begin(), b.targets.end(), tok.eod());
    ++batches;
  }
  // In order (no shuffle): the stream of pairs is every document's (token, next token) pairs, concatenated.
  std::vector<std::pair<int32_t, int32_t>> expected;
  for (int64_t d = 0; d < shard->num_samples(); ++d) {
    const std::vector<int32_t> doc = shard->part_tokens(d);
    EXPECT_EQ(doc.back(), tok.eod());
    for (size_t i = 0; i + 1 < doc.size(); ++i) expected.emplace_back(doc[i], doc[i + 1]);
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(eod_targets, shard->num_samples());  // each document learns to end
  // Rows are full except at the very end of the pass.
  EXPECT_EQ(batches, (int64_t(expected.size()) + 2 * 48 - 1) / (2 * 48));
  EXPECT_FALSE(loader.next(b));
}

TEST(PretrainLoader, ShufflesDeterministicallyBySeedAndEpoch) {
  const auto shard = fixture_shard(ShardKind::pretrain);
  const Tokenizer& tok = fixture_tokenizer();
  auto first_batches = [&](uint64_t seed, int n) {
    PretrainLoader loader(shard, tok, options(2, 32, seed, true, true));
    std::vector<TokenBatch> out{size_t(n)};
    for (TokenBatch& b : out) {
      EXPECT_TRUE(loader.next(b));
      check_packing(b);
      EXPECT_EQ(b.num_targets(), 2 * 32);  // repeating pretraining rows are always full
    }
    return out;
  };
  const auto a = first_batches(7, 6), again = first_batches(7, 6), other = first_batches(8, 6);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_batch(a[i], again[i]));
  EXPECT_FALSE(same_batch(a[0], other[0]));

  // A shuffled non-repeating pass still covers every pair exactly once.
  PretrainLoader loader(shard, tok, options(3, 40, 11, true, false));
  std::map<std::pair<int32_t, int32_t>, int64_t> count;
  TokenBatch b;
  while (loader.next(b))
    for (auto p : pairs_of(b)) ++count[p];
  std::map<std::pair<int32_t, int32_t>, int64_t> expected;
  for (int64_t d = 0; d < shard->num_samples(); ++d) {
    const std::vector<int32_t> doc = shard->part_tokens(d);
    for (size_t i = 0; i + 1 < doc.size(); ++i) ++expected[{doc[i], doc[i + 1]}];
  }
  EXPECT_EQ(count, expected);
}

TEST(SftLoader, TargetsExactlyOnAssistantTokensAndConversationsNeverCrossRows) {
  const auto shard = fixture_shard(ShardKind::sft);
  const Tokenizer& tok = fixture_tokenizer();
  int64_t longest = 0;
  for (int64_t s = 0; s < shard->num_samples(); ++s)
    longest = std::max(longest, shard->part_range(s).second - shard->part_range(s).first);
  const int64_t T = longest + 8;  // nothing truncated
  SftLoader loader(shard, tok, options(2, T, 0, false, false));
  TokenBatch b;
  int64_t sample = 0;
  while (loader.next(b)) {
    check_packing(b);
    for (int64_t r = 0; r < b.B; ++r) {
      // Walk the segments of the row; each must be sample `sample` of the shard, in order, whole.
      int64_t t = 0;
      while (t < T) {
        const size_t at = size_t(r * T + t);
        if (b.targets[at] == kIgnoreTarget && b.tokens[at] == tok.pad()) break;  // padding to the row end
        ASSERT_LT(sample, shard->num_samples());
        const auto [begin, end] = shard->part_range(sample);
        const std::vector<int32_t> conv = shard->part_tokens(sample);
        const int64_t n = end - begin - 1;
        ASSERT_LE(t + n, T);
        EXPECT_TRUE(b.tokens[at] == tok.system() || b.tokens[at] == tok.user());
        for (int64_t j = 0; j < n; ++j) {
          const size_t i = at + size_t(j);
          EXPECT_EQ(b.tokens[i], conv[size_t(j)]);
          EXPECT_EQ(b.pos[i], j);
          EXPECT_EQ(b.seg[i], b.seg[at]);
          const bool trained = shard->mask()[size_t(begin + j + 1)] != 0;
          EXPECT_EQ(b.targets[i], trained ? conv[size_t(j + 1)] : kIgnoreTarget);
        }
        EXPECT_EQ(b.targets[at + size_t(n - 1)], tok.eot());  // the last reply's end-of-turn is learned
        t += n;
        ++sample;
      }
    }
  }
  EXPECT_EQ(sample, shard->num_samples());
  EXPECT_EQ(loader.skipped_without_targets(), 0);
}

TEST(SftLoader, TruncatesLongConversationsAndSkipsThoseLeftWithoutTargets) {
  const auto shard = fixture_shard(ShardKind::sft);
  const Tokenizer& tok = fixture_tokenizer();
  const int64_t T = 12;
  SftLoader loader(shard, tok, options(4, T, 0, false, false));
  TokenBatch b;
  int64_t used = 0;
  while (loader.next(b)) {
    check_packing(b);
    for (int64_t i = 0; i < b.B * b.T; ++i) used += b.seg[size_t(i)] == 0 && b.pos[size_t(i)] == 0 &&
                                                     b.tokens[size_t(i)] != tok.pad();
  }
  // Every conversation either filled a row of its own (truncated) or was skipped (a prompt longer than T).
  EXPECT_EQ(used + loader.skipped_without_targets(), shard->num_samples());
  EXPECT_GT(loader.skipped_without_targets(), 0);
  EXPECT_GT(used, 0);
}

TEST(PreferenceLoader, YieldsPromptChosenRejectedAndPairBatches) {
  const auto shard = fixture_shard(ShardKind::preference);
  const Tokenizer& tok = fixture_tokenizer();
  PreferenceLoader loader(shard, tok, options(2, 0, 0, false, false));
  std::vector<PreferenceExample> batch;
  int64_t seen = 0;
  while (loader.next(batch)) {
    for (const PreferenceExample& ex : batch) {
      EXPECT_EQ(ex.sample, seen++);
      EXPECT_EQ(ex.prompt.back(), tok.assistant());
      EXPECT_EQ(ex.chosen.back(), tok.eot());
      EXPECT_EQ(ex.rejected.back(), tok.eot());
      EXPECT_EQ(ex.prompt, shard->part_tokens(ex.sample, 0));
    }
    const int64_t n = int64_t(batch.size()), T = 64;
    const TokenBatch pairs = preference_pair_batch(batch, T, tok.pad());
    ASSERT_EQ(pairs.B, 2 * n);
    check_packing(pairs);
    for (int64_t i = 0; i < n; ++i) {
      const PreferenceExample& ex = batch[size_t(i)];
      for (int side = 0; side < 2; ++side) {
        const std::vector<int32_t>& reply = side == 0 ? ex.chosen : ex.rejected;
        const int64_t r = side * n + i;
        std::vector<int32_t> trained;
        for (int64_t t = 0; t < T; ++t)
          if (pairs.targets[size_t(r * T + t)] != kIgnoreTarget) trained.push_back(pairs.targets[size_t(r * T + t)]);
        if (ex.prompt_len() + int64_t(reply.size()) <= T + 1) {
          EXPECT_EQ(trained, reply);  // exactly the reply tokens, each once
          EXPECT_EQ(pairs.tokens[size_t(r * T)], ex.prompt[0]);
        } else {
          EXPECT_FALSE(trained.empty());
        }
      }
    }
  }
  EXPECT_EQ(seen, shard->num_samples());

  // Truncation (T = 16, 17 tokens kept): the prompt keeps its last max(17 - 12, 16 / 2) = 8 tokens on both rows;
  // the chosen reply (5) fits, the rejected one (12) is cut to 9.
  PreferenceExample ex{0, std::vector<int32_t>(30, 7), std::vector<int32_t>(5, 8), std::vector<int32_t>(12, 9)};
  ex.prompt.back() = tok.assistant();
  const TokenBatch cut = preference_pair_batch({ex}, 16, tok.pad());
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_EQ(cut.tokens[size_t(r * 16 + 7)], tok.assistant());
    EXPECT_EQ(cut.targets[size_t(r * 16 + 6)], kIgnoreTarget);
    EXPECT_EQ(cut.targets[size_t(r * 16 + 7)], r == 0 ? 8 : 9);
  }
  int64_t chosen_targets = 0, rejected_targets = 0;
  for (int64_t t = 0; t < 16; ++t) {
    chosen_targets += cut.targets[size_t(t)] != kIgnoreTarget;
    rejected_targets += cut.targets[size_t(16 + t)] != kIgnoreTarget;
  }
  EXPECT_EQ(chosen_targets, 5);
  EXPECT_EQ(rejected_targets, 9);
}

TEST(Loaders, SavedStateResumesTheIdenticalContinuation) {
  const Tokenizer& tok = fixture_tokenizer();
  const auto pre = fixture_shard(ShardKind::pretrain), sft = fixture_shard(ShardKind::sft);
  // Runs 25 batches (several epochs); saves the state after `at`; a fresh loader restored from the JSON text must
  // produce the same remaining batches.
  auto check = [&](auto make) {
    for (int at : {0, 3, 11}) {
      auto loader = make();
      TokenBatch b;
      for (int i = 0; i < at; ++i) loader.next(b);
      const std::string saved = loader.state_json().dump();
      std::vector<TokenBatch> rest{25 - size_t(at)};
      for (TokenBatch& r : rest) ASSERT_TRUE(loader.next(r));
      EXPECT_GT(loader.epoch(), 0);
      auto resumed = make();
      resumed.restore(json::parse(saved));
      for (const TokenBatch& r : rest) {
        ASSERT_TRUE(resumed.next(b));
        EXPECT_TRUE(same_batch(b, r));
      }
    }
  };
  check([&] { return PretrainLoader(pre, tok, options(2, 40, 5, true, true)); });
  check([&] { return SftLoader(sft, tok, options(2, 100, 5, true, true)); });

  const auto pref = fixture_shard(ShardKind::preference);
  PreferenceLoader a(pref, tok, options(2, 0, 3, true, true));
  std::vector<PreferenceExample> batch;
  for (int i = 0; i < 4; ++i) a.next(batch);
  const json saved = a.state_json();
  PreferenceLoader b(pref, tok, options(2, 0, 3, true, true));
  b.restore(saved);
  for (int i = 0; i < 6; ++i) {
    std::vector<PreferenceExample> x, y;
    a.next(x);
    b.next(y);
    ASSERT_EQ(x.size(), y.size());
    for (size_t k = 0; k < x.size(); ++k) EXPECT_EQ(x[k].sample, y[k].sample);
  }
}

TEST(Loaders, StateFromOtherDataOrOptionsIsRejected) {
  const Tokenizer& tok = fixture_tokenizer();
  const auto pre = fixture_shard(ShardKind::pretrain);
  PretrainLoader a(pre, tok, options(2, 32, 1, true, true));
  LoaderOptions narrow = options(2, 32, 1, true, true);
  narrow.range = {0, 10};
  PretrainLoader b(pre, tok, narrow);
  expect_error([&] { b.restore(a.state_json()); }, {"loader state", "range"});
  json broken = a.state_json();
  broken["cursor"] = 999;
  expect_error([&] { a.restore(broken); }, {"loader state", "out of range"});
  broken.erase("cursor");
  expect_error([&] { a.restore(broken); }, {"loader state"});
  expect_error([&] { SftLoader(pre, tok, options(2, 32, 1, true, true)); }, {"pretrain shard", "sft loader"});

  TokenizerTrainOptions o = fixture_train_options();
  o.vocab_size = 1010;
  const Tokenizer other = Tokenizer::train(o, scratch_dir("loader_other_tokenizer"));
  expect_error([&] { PretrainLoader(pre, other, options(2, 32, 1, true, true)); }, {"tokenizer", "ensure_shard"});
}

TEST(Loaders, HoldOutSplitsTheLastSamplesForEval) {
  auto [train, eval] = split_holdout(100, {0, 0.1});
  EXPECT_EQ(train.begin, 0);
  EXPECT_EQ(train.end, 90);
  EXPECT_EQ(eval.begin, 90);
  EXPECT_EQ(eval.end, 100);
  std::tie(train, eval) = split_holdout(100, {25, 0.1});
  EXPECT_EQ(eval.size(), 25);
  expect_error([] { split_holdout(5, {5, 0}); }, {"nothing to train on"});

  const Tokenizer& tok = fixture_tokenizer();
  const auto shard = fixture_shard(ShardKind::sft);
  std::tie(train, eval) = split_holdout(shard->num_samples(), {2, 0});
  LoaderOptions train_opts = options(1, 200, 9, true, false), eval_opts = options(1, 200, 9, false, false);
  train_opts.range = train;
  eval_opts.range = eval;
  SftLoader train_loader(shard, tok, train_opts), eval_loader(shard, tok, eval_opts);
  auto first_tokens = [&](SftLoader& l) {
    std::multiset<std::vector<int32_t>> out;
    TokenBatch b;
    while (l.next(b))
      for (int64_t t = 0; t < b.T; ++t)
        if (b.pos[size_t(t)] == 0 && b.tokens[size_t(t)] != tok.pad()) {
          int64_t e = t;
          while (e < b.T && b.seg[size_t(e)] == b.seg[size_t(t)]) ++e;
          out.insert(std::vector<int32_t>(b.tokens.begin() + t, b.tokens.begin() + e));
        }
    return out;
  };
  const auto train_convs = first_tokens(train_loader), eval_convs = first_tokens(eval_loader);
  EXPECT_EQ(int64_t(eval_convs.size()), 2);
  EXPECT_EQ(int64_t(train_convs.size()), shard->num_samples() - 2);
  for (const auto& c : eval_convs) EXPECT_EQ(train_convs.count(c), 0u);
}
