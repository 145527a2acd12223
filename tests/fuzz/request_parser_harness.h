// The shared body of the request-parser fuzzing: feeds one input to every parser of src/serve/http/requests.h and
// checks that each either accepts it with valid typed values or rejects it with a RequestError; anything else
// (another exception type, a crash, a broken invariant) is a bug. Used by the libFuzzer target and by a gtest.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "serve/http/requests.h"

namespace stepwise::fuzz {

inline void check_sampling(const SamplingParams& s) {
  SW_CHECK(s.temperature >= 0 && s.temperature <= 2);
  SW_CHECK(s.top_p > 0 && s.top_p <= 1);
  SW_CHECK(s.top_k >= 0);
  SW_CHECK(s.max_tokens >= 0);
  SW_CHECK(s.logprobs >= 0 && s.logprobs <= http::kMaxTopLogprobs);
  SW_CHECK(s.stop.size() <= http::kMaxStopStrings);
  for (const std::string& stop : s.stop) SW_CHECK(!stop.empty());
}

template <class Parse, class Check>
void try_parse(Parse&& parse, std::string_view input, Check&& check) {
  try {
    check(parse(input));
  } catch (const http::RequestError&) {
    // a rejection with a message and a param: the expected outcome for most inputs
  }
}

inline void exercise_request_parsers(std::string_view input) {
  try_parse(http::parse_completion_request, input, [](const http::CompletionRequest& r) {
    check_sampling(r.sampling);
    SW_CHECK(r.prompt_text ? !r.prompt_text->empty() : !r.prompt_tokens.empty());
    for (const int32_t id : r.prompt_tokens) SW_CHECK(id >= 0);
    SW_CHECK(r.sampling.prompt_logprobs == (r.echo && r.logprobs.has_value()));
  });
  try_parse(http::parse_chat_completion_request, input, [](const http::ChatCompletionRequest& r) {
    check_sampling(r.sampling);
    SW_CHECK(!r.messages.empty());
    for (size_t i = 1; i < r.messages.size(); ++i) SW_CHECK(r.messages[i].role != ChatRole::system);
    SW_CHECK(!r.max_tokens || *r.max_tokens >= 1);
    SW_CHECK(r.logprobs || r.top_logprobs == 0);
  });
  try_parse(http::parse_tokenize_request, input,
            [](const http::TokenizeRequest& r) { SW_CHECK(r.prompt.has_value() == r.messages.empty()); });
  try_parse(http::parse_detokenize_request, input, [](const http::DetokenizeRequest& r) {
    for (const int32_t id : r.tokens) SW_CHECK(id >= 0);
  });
}

// Valid bodies of every endpoint: the starting points of mutation.
inline std::vector<std::string> request_parser_seeds() {
  return {
      R"({"model":"m","prompt":"发热三天","max_tokens":8,"temperature":0.7,"top_p":0.9,"top_k":5,"seed":1,"stop":["。"],"stream":true,"stream_options":{"include_usage":true},"echo":true,"logprobs":2})",
      R"({"prompt":[1,2,3],"max_tokens":0,"echo":true,"logprobs":0})",
      R"({"prompt":[[4,5]],"n":1,"best_of":1,"presence_penalty":0,"frequency_penalty":0,"logit_bias":{},"suffix":""})",
      R"({"messages":[{"role":"system","content":"你是医生"},{"role":"user","content":[{"type":"text","text":"头痛"}]},{"role":"assistant","content":null}],"max_completion_tokens":4,"logprobs":true,"top_logprobs":3})",
      R"({"messages":[{"role":"user","content":"hi","name":"x"}],"stream":false,"stop":"\n","tool_choice":"none","response_format":{"type":"text"}})",
      R"({"prompt":"a","messages":[{"role":"user","content":"u"}]})",
      R"({"tokens":[1,2,3,2147483647]})",
      R"({"prompt":"\u0000\ud83d\ude00 \\ \" /"})",
  };
}

}  // namespace stepwise::fuzz
