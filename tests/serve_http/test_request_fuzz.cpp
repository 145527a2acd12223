// Mutation fuzzing of the request parsers without clang: a few thousand deterministic mutations of valid bodies
// (byte flips, insertions, deletions, truncations, splices, values swapped for other JSON types) go through the same
// harness as the libFuzzer target (tests/fuzz/request_parser_harness.h).
#include <gtest/gtest.h>

#include <random>

#include "fuzz/request_parser_harness.h"

namespace stepwise::fuzz {
namespace {

const char* const kFragments[] = {"null", "true", "-1", "0", "1e309", "18446744073709551616", "\"\"", "[]", "{}",
                                  "[[[[", "\"\\ud800\"", "\xff\xfe", ",", ":", "\"prompt\"", "\"messages\"", "2.5",
                                  "[{\"role\":\"user\"}]", "{\"type\":\"text\"}", "-9223372036854775808"};

std::string mutate(std::string input, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  const auto pick = [&](size_t n) { return n == 0 ? size_t(0) : size_t(rng() % n); };
  const int steps = 1 + int(rng() % 4);
  for (int step = 0; step < steps; ++step) {
    switch (rng() % 6) {
      case 0:
        if (!input.empty()) input[pick(input.size())] ^= char(1 << (rng() % 8));
        break;
      case 1:
        input.insert(pick(input.size() + 1), 1, char(rng() % 256));
        break;
      case 2:
        if (!input.empty()) input.erase(pick(input.size()), 1 + pick(8));
        break;
      case 3:
        input.resize(pick(input.size() + 1));
        break;
      case 4: {
        const std::string& other = seeds[pick(seeds.size())];
        const size_t from = pick(other.size());
        input.insert(pick(input.size() + 1), other.substr(from, 1 + pick(40)));
        break;
      }
      default: {
        // Replace the text after a ':' up to the next ',' or '}' with another JSON fragment.
        const size_t colon = input.find(':', pick(input.size()));
        if (colon == std::string::npos) break;
        const size_t end = input.find_first_of(",}", colon + 1);
        input.replace(colon + 1, (end == std::string::npos ? input.size() : end) - colon - 1,
                      kFragments[pick(std::size(kFragments))]);
      }
    }
  }
  return input;
}

TEST(RequestParserFuzz, SeedsAreAcceptedByTheirParser) {
  const std::vector<std::string> seeds = request_parser_seeds();
  EXPECT_NO_THROW(http::parse_completion_request(seeds[0]));
  EXPECT_NO_THROW(http::parse_completion_request(seeds[1]));
  EXPECT_NO_THROW(http::parse_chat_completion_request(seeds[3]));
  EXPECT_NO_THROW(http::parse_detokenize_request(seeds[6]));
}

TEST(RequestParserFuzz, MutatedBodiesAreAcceptedValidOrRejectedCleanly) {
  const std::vector<std::string> seeds = request_parser_seeds();
  std::mt19937_64 rng(20240611);
  int accepted_somewhere = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string input = mutate(seeds[i % seeds.size()], seeds, rng);
    ASSERT_NO_THROW(exercise_request_parsers(input)) << "input #" << i << ": " << input;
    for (const auto parse : {+[](std::string_view s) { http::parse_completion_request(s); },
                             +[](std::string_view s) { http::parse_chat_completion_request(s); },
                             +[](std::string_view s) { http::parse_tokenize_request(s); },
                             +[](std::string_view s) { http::parse_detokenize_request(s); }}) {
      try {
        parse(input);
        ++accepted_somewhere;
      } catch (const http::RequestError&) {
      }
    }
  }
  // Some mutations must stay valid bodies so that the typed checks, not only the JSON parser, are exercised.
  EXPECT_GT(accepted_somewhere, 60) << accepted_somewhere;  // 123 with this seed
}

TEST(RequestParserFuzz, DeepNestingAndHugeInputsAreRejectedCleanly) {
  EXPECT_NO_THROW(exercise_request_parsers(std::string(100000, '[')));
  EXPECT_NO_THROW(exercise_request_parsers("{\"prompt\":" + std::string(20000, '[') + std::string(20000, ']') + "}"));
  EXPECT_NO_THROW(exercise_request_parsers(std::string(1 << 20, 'x')));
}

}  // namespace
}  // namespace stepwise::fuzz
