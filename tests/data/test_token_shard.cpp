// Tests of token shards: round trips of every kind (u16 and i32 tokens), every corruption case giving an Error that
// names the file, JSONL record errors, and the cache rebuilding when the source or the tokenizer changes.
#include <gtest/gtest.h>

#include <cstring>

#include "data/chat_template.h"
#include "data/jsonl.h"
#include "data/token_shard.h"
#include "tokens_fixture.h"

using namespace stepwise;
using namespace stepwise::test;

namespace {

std::vector<int32_t> all_tokens(const TokenShard& s) {
  std::vector<int32_t> out(size_t(s.num_tokens()));
  s.copy_tokens(0, s.num_tokens(), out.data());
  return out;
}

void expect_same(const TokenShard& s, const ShardContent& c) {
  EXPECT_EQ(s.kind(), c.kind);
  EXPECT_EQ(s.vocab_size(), c.vocab_size);
  EXPECT_EQ(s.tokenizer_hash(), c.tokenizer_hash);
  EXPECT_EQ(s.source_hash(), c.source_hash);
  EXPECT_EQ(all_tokens(s), c.tokens);
  EXPECT_EQ(std::vector<uint64_t>(s.offsets().begin(), s.offsets().end()), c.offsets);
  EXPECT_EQ(std::vector<uint8_t>(s.mask().begin(), s.mask().end()), c.mask);
}

// Rewrites `bytes` at `at` in a copy of `src` and returns the copy's path.
fs::path corrupt(const fs::path& src, const std::string& name, size_t at, const void* bytes, size_t n) {
  std::string data = read_file(src);
  std::memcpy(data.data() + at, bytes, n);
  const fs::path out = src.parent_path() / name;
  write_file_atomic(out, data);
  return out;
}

}  // namespace

TEST(TokenShard, RoundTripsEveryKind) {
  const Tokenizer& tok = fixture_tokenizer();
  const fs::path dir = scratch_dir("shard_roundtrip");
  for (const char* kind : {"pretrain", "sft", "preference"}) {
    const ShardContent c = tokenize_jsonl(parse_shard_kind(kind), tokens_fixture(cat(kind, ".jsonl")), tok);
    const fs::path path = dir / cat(kind, ".swshard");
    write_shard(path, c);
    const auto s = TokenShard::open(path);
    expect_same(*s, c);
    EXPECT_EQ(s->num_samples(), int64_t(jsonl_read(tokens_fixture(cat(kind, ".jsonl"))).size()));
    EXPECT_EQ(s->tokenizer_hash(), tok.hash());
    EXPECT_EQ(s->source_hash(), content_hash(read_file(tokens_fixture(cat(kind, ".jsonl")))));
  }
  // Sample content: the first pretrain document decodes to its text + <|end_of_document|>.
  const auto pre = TokenShard::open(dir / "pretrain.swshard");
  const std::string text = jsonl_read(tokens_fixture("pretrain.jsonl"))[0]["text"];
  EXPECT_EQ(tok.decode(pre->part_tokens(0)), text + std::string(kEndOfDocumentToken));
  // Preference parts: prompt ends with <|assistant|>, replies decode to chosen / rejected + <|end_of_turn|>.
  const auto pref = TokenShard::open(dir / "preference.swshard");
  const json rec = jsonl_read(tokens_fixture("preference.jsonl"))[1];
  EXPECT_EQ(pref->part_tokens(1, 0).back(), tok.assistant());
  EXPECT_EQ(tok.decode(pref->part_tokens(1, 1)), rec["chosen"].get<std::string>() + std::string(kEndOfTurnToken));
  EXPECT_EQ(tok.decode(pref->part_tokens(1, 2)), rec["rejected"].get<std::string>() + std::string(kEndOfTurnToken));
  const auto [pb, pe] = pref->part_range(1, 0);
  for (int64_t i = pb; i < pe; ++i) EXPECT_EQ(pref->mask()[size_t(i)], 0);
}

TEST(TokenShard, WideVocabularyUsesInt32Tokens) {
  ShardContent c;
  c.kind = ShardKind::sft;
  c.vocab_size = 100000;
  c.tokenizer_hash = "0123456789abcdef";
  c.source_hash = "fedcba9876543210";
  c.tokens = {5, 70000, 99999, 0, 65535, 65536};
  c.offsets = {0, 2, 6};
  c.mask = {0, 1, 1, 0, 0, 1};
  const fs::path path = scratch_dir("shard_wide") / "wide.swshard";
  write_shard(path, c);
  EXPECT_EQ(fs::file_size(path), 128u + 24u + 24u + 6u);
  expect_same(*TokenShard::open(path), c);
}

TEST(TokenShard, EveryCorruptionIsAnErrorNamingTheFile) {
  const Tokenizer& tok = fixture_tokenizer();
  const fs::path dir = scratch_dir("shard_corrupt");
  const fs::path good = dir / "good.swshard";
  const ShardContent c = tokenize_jsonl(ShardKind::sft, tokens_fixture("sft.jsonl"), tok);
  write_shard(good, c);
  const std::string data = read_file(good);
  const size_t token_bytes = c.tokens.size() * 2, at_offsets = 128 + (token_bytes + 7) / 8 * 8;
  const size_t at_mask = at_offsets + c.offsets.size() * 8;

  write_file_atomic(dir / "cut.swshard", data.substr(0, data.size() - 5));
  expect_error([&] { TokenShard::open(dir / "cut.swshard"); }, {"cut.swshard", "size mismatch", "truncated"});
  write_file_atomic(dir / "tiny.swshard", data.substr(0, 40));
  expect_error([&] { TokenShard::open(dir / "tiny.swshard"); }, {"tiny.swshard", "truncated"});
  write_file_atomic(dir / "long.swshard", data + "x");
  expect_error([&] { TokenShard::open(dir / "long.swshard"); }, {"long.swshard", "size mismatch"});
  expect_error([&] { TokenShard::open(dir / "absent.swshard"); }, {"absent.swshard", "cannot open"});

  expect_error([&] { TokenShard::open(corrupt(good, "magic.swshard", 0, "SWSHARX", 7)); },
               {"magic.swshard", "wrong magic"});
  const uint32_t v9 = 9, kind7 = 7, dtype_i32 = 2, dtype5 = 5;
  expect_error([&] { TokenShard::open(corrupt(good, "version.swshard", 8, &v9, 4)); },
               {"version.swshard", "unknown version 9"});
  expect_error([&] { TokenShard::open(corrupt(good, "dtype.swshard", 12, &dtype5, 4)); },
               {"dtype.swshard", "dtype"});
  expect_error([&] { TokenShard::open(corrupt(good, "dtype2.swshard", 12, &dtype_i32, 4)); },
               {"dtype2.swshard", "does not match vocab"});
  expect_error([&] { TokenShard::open(corrupt(good, "kind.swshard", 16, &kind7, 4)); },
               {"kind.swshard", "unknown kind 7"});
  const uint64_t huge = uint64_t(1) << 60, one_more = c.tokens.size() + 1;
  expect_error([&] { TokenShard::open(corrupt(good, "count.swshard", 24, &huge, 8)); },
               {"count.swshard", "exceed the file size"});
  expect_error([&] { TokenShard::open(corrupt(good, "count2.swshard", 24, &one_more, 8)); },
               {"count2.swshard", "size mismatch"});

  const uint64_t back = c.offsets[1];  // offsets[2] == offsets[1]: an empty sample
  expect_error([&] { TokenShard::open(corrupt(good, "offsets.swshard", at_offsets + 2 * 8, &back, 8)); },
               {"offsets.swshard", "not strictly increasing at index 2"});
  const uint64_t past_end = c.tokens.size() + 10;
  expect_error([&] { TokenShard::open(corrupt(good, "offsets2.swshard", at_offsets + (c.offsets.size() - 1) * 8,
                                              &past_end, 8)); },
               {"offsets2.swshard", "last offset", "out of range"});
  const uint64_t nonzero_start = 1;
  expect_error([&] { TokenShard::open(corrupt(good, "offsets3.swshard", at_offsets, &nonzero_start, 8)); },
               {"offsets3.swshard", "offsets[0]"});
  const uint16_t big_id = uint16_t(tok.vocab_size());
  expect_error([&] { TokenShard::open(corrupt(good, "vocab.swshard", 128 + 2 * 3, &big_id, 2)); },
               {"vocab.swshard", "token 3", "outside the vocabulary"});
  const uint8_t two = 2;
  expect_error([&] { TokenShard::open(corrupt(good, "mask.swshard", at_mask + 1, &two, 1)); },
               {"mask.swshard", "mask value 2"});
  expect_error([&] { TokenShard::open(corrupt(good, "hash.swshard", 40, "zz", 2)); },
               {"hash.swshard", "tokenizer_hash"});
  EXPECT_NO_THROW(TokenShard::open(good));
}

TEST(TokenShard, WriterRejectsInconsistentContent) {
  ShardContent c;
  c.kind = ShardKind::pretrain;
  c.vocab_size = 10;
  c.tokens = {1, 2, 3};
  c.offsets = {0, 3};
  const fs::path dir = scratch_dir("shard_writer");
  c.tokens[1] = 10;
  expect_error([&] { write_shard(dir / "a.swshard", c); }, {"a.swshard", "outside the vocabulary"});
  c.tokens[1] = 2;
  c.offsets = {0, 2};
  expect_error([&] { write_shard(dir / "b.swshard", c); }, {"b.swshard", "last offset"});
  c.offsets = {0, 3};
  c.mask = {1, 1, 1};
  expect_error([&] { write_shard(dir / "c.swshard", c); }, {"c.swshard", "no mask"});
  EXPECT_FALSE(fs::exists(dir / "a.swshard"));
}

TEST(TokenShard, RecordErrorsNameFileLineAndField) {
  const Tokenizer& tok = fixture_tokenizer();
  const fs::path dir = scratch_dir("shard_records");
  write_file_atomic(dir / "pre.jsonl", "{\"id\":\"1\",\"text\":\"咳嗽\"}\n{\"id\":\"2\",\"txt\":\"发热\"}\n");
  expect_error([&] { tokenize_jsonl(ShardKind::pretrain, dir / "pre.jsonl", tok); },
               {"pre.jsonl:2", "missing field 'text'"});
  write_file_atomic(dir / "sft.jsonl", R"({"id":"1","conversations":[{"role":"user","content":"问"}]})" "\n");
  expect_error([&] { tokenize_jsonl(ShardKind::sft, dir / "sft.jsonl", tok); }, {"sft.jsonl:1", "no assistant"});
  write_file_atomic(dir / "pref.jsonl",
                    R"({"conversations":[{"role":"user","content":"问"},{"role":"assistant","content":"答"}],)"
                    R"("chosen":"好","rejected":"坏"})" "\n");
  expect_error([&] { tokenize_jsonl(ShardKind::preference, dir / "pref.jsonl", tok); },
               {"pref.jsonl:1", "end with a user turn"});
  write_file_atomic(dir / "pref2.jsonl", R"({"conversations":[{"role":"user","content":"问"}],"chosen":"好"})" "\n");
  expect_error([&] { tokenize_jsonl(ShardKind::preference, dir / "pref2.jsonl", tok); },
               {"pref2.jsonl:1", "'rejected'"});
}

TEST(TokenShard, CacheRebuildsWhenSourceOrTokenizerChanges) {
  const Tokenizer& tok = fixture_tokenizer();
  const fs::path dir = scratch_dir("shard_cache");
  const fs::path source = dir / "pretrain.jsonl";
  fs::copy_file(tokens_fixture("pretrain.jsonl"), source, fs::copy_options::overwrite_existing);
  const fs::path cache = dir / "cache";

  const fs::path first = ensure_shard(ShardKind::pretrain, source, tok, cache);
  const int64_t docs = TokenShard::open(first)->num_samples();
  const auto stamp = fs::last_write_time(first);
  EXPECT_EQ(ensure_shard(ShardKind::pretrain, source, tok, cache), first);
  EXPECT_EQ(fs::last_write_time(first), stamp);  // reused, not rebuilt

  // Source changes: one more document.
  std::string text = read_file(source);
  text += R"({"id":"extra","text":"新增文档：痛风患者应限制高嘌呤饮食。","source":"fixture","department":"风湿免疫科"})" "\n";
  write_file_atomic(source, text);
  EXPECT_EQ(ensure_shard(ShardKind::pretrain, source, tok, cache), first);
  auto rebuilt = TokenShard::open(first);
  EXPECT_EQ(rebuilt->num_samples(), docs + 1);
  EXPECT_EQ(rebuilt->source_hash(), content_hash(text));

  // Tokenizer changes: a different vocabulary size gives a different model.
  TokenizerTrainOptions o = fixture_train_options();
  o.vocab_size = 1020;
  const Tokenizer other = Tokenizer::train(o, dir / "other_tokenizer");
  ASSERT_NE(other.hash(), tok.hash());
  ensure_shard(ShardKind::pretrain, source, other, cache);
  rebuilt = TokenShard::open(first);
  EXPECT_EQ(rebuilt->tokenizer_hash(), other.hash());
  EXPECT_EQ(rebuilt->vocab_size(), other.vocab_size());

  // A corrupt cache file is rebuilt too.
  write_file_atomic(first, "garbage");
  ensure_shard(ShardKind::pretrain, source, other, cache);
  EXPECT_EQ(TokenShard::open(first)->num_samples(), docs + 1);
  // Other kinds of the same source live in their own files.
  EXPECT_NE(ensure_shard(ShardKind::sft, tokens_fixture("sft.jsonl"), tok, cache), first);
}
