// Shared set-up of the token tests: the Chinese medical fixtures, a tokenizer trained on them once per process,
// and a scratch directory unique to the process.
#pragma once
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/tokenizer.h"

namespace stepwise::test {

inline fs::path tokens_fixture(const std::string& name) {
  return fs::path(STEPWISE_SOURCE_DIR) / "tests/data/fixtures/tokens" / name;
}

inline fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / cat("stepwise_tokens_", ::getpid()) / name;
  fs::create_directories(dir);
  return dir;
}

inline TokenizerTrainOptions fixture_train_options() {
  TokenizerTrainOptions o;
  o.inputs = {tokens_fixture("pretrain.jsonl"), tokens_fixture("sft.jsonl"), tokens_fixture("preference.jsonl")};
  o.vocab_size = 2000;  // the fixtures support ~1000 pieces; the rest is capped by hard_vocab_limit = false
  return o;
}

inline const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::train(fixture_train_options(), scratch_dir("fixture_tokenizer"));
  return tokenizer;
}

// Runs `fn`, expecting an Error whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error mentioning " << *parts.begin();
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace stepwise::test
