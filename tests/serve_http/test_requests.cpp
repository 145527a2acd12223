// Tests of the typed request parsers: every field parsed into its typed place, and every bad input rejected with a
// RequestError naming the field.
#include <gtest/gtest.h>

#include "serve/http/requests.h"

namespace stepwise::http {
namespace {

// Runs `parse`, expecting a RequestError whose param is `param` and whose message contains `fragment`.
template <class Parse>
void expect_rejected(Parse&& parse, const std::string& body, const std::string& param, const std::string& fragment) {
  try {
    parse(body);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const RequestError& e) {
    EXPECT_EQ(e.param(), param) << body << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << body << " -> " << e.what();
  }
}

void expect_completion_rejected(const std::string& body, const std::string& param, const std::string& fragment) {
  expect_rejected(parse_completion_request, body, param, fragment);
}

void expect_chat_rejected(const std::string& body, const std::string& param, const std::string& fragment) {
  expect_rejected(parse_chat_completion_request, body, param, fragment);
}

TEST(CompletionRequest, ParsesEveryField) {
  const CompletionRequest r = parse_completion_request(R"({
    "model": "tiny", "prompt": "发热三天", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
    "seed": 42, "stop": ["。", "\n"], "n": 1, "stream": true, "stream_options": {"include_usage": true},
    "echo": true, "logprobs": 3, "user": "u1", "presence_penalty": 0, "best_of": 1})");
  EXPECT_EQ(r.model, "tiny");
  EXPECT_EQ(r.prompt_text, "发热三天");
  EXPECT_TRUE(r.prompt_tokens.empty());
  EXPECT_EQ(r.sampling.max_tokens, 7);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 0.5);
  EXPECT_DOUBLE_EQ(r.sampling.top_p, 0.9);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"。", "\n"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(r.sampling.logprobs, 3);
  EXPECT_TRUE(r.sampling.prompt_logprobs);  // echo + logprobs: likelihood of the prompt
}

TEST(CompletionRequest, DefaultsFollowOpenAI) {
  const CompletionRequest r = parse_completion_request(R"({"prompt": "x"})");
  EXPECT_FALSE(r.model);
  EXPECT_EQ(r.sampling.max_tokens, 16);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 1.0);
  EXPECT_DOUBLE_EQ(r.sampling.top_p, 1.0);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FALSE(r.sampling.seed);
  EXPECT_TRUE(r.sampling.stop.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.echo);
  EXPECT_FALSE(r.logprobs);
  EXPECT_FALSE(r.sampling.prompt_logprobs);
}

TEST(CompletionRequest, NullMeansDefault) {
  const CompletionRequest r = parse_completion_request(R"({"prompt": "x", "max_tokens": null, "stop": null, "seed": null})");
  EXPECT_EQ(r.sampling.max_tokens, 16);
  EXPECT_FALSE(r.sampling.seed);
}

TEST(CompletionRequest, PromptForms) {
  EXPECT_EQ(parse_completion_request(R"({"prompt": [5, 6, 7]})").prompt_tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(parse_completion_request(R"({"prompt": ["only one"]})").prompt_text, "only one");
  EXPECT_EQ(parse_completion_request(R"({"prompt": [[1, 2]]})").prompt_tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "stop": "。"})").sampling.stop, std::vector<std::string>{"。"});
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "top_k": -1})").sampling.top_k, 0);
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "max_tokens": 0, "echo": true})").sampling.max_tokens, 0);
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "seed": -1})").sampling.seed, ~uint64_t(0));
}

TEST(CompletionRequest, RejectsMalformedBodies) {
  expect_completion_rejected("", "", "malformed JSON");
  expect_completion_rejected("{\"prompt\": \"x\"", "", "malformed JSON");
  expect_completion_rejected("[1, 2]", "", "must be a JSON object");
  expect_completion_rejected("\"prompt\"", "", "must be a JSON object");
  expect_completion_rejected("{\"prompt\": \"x\"} trailing", "", "malformed JSON");
}

TEST(CompletionRequest, RejectsWrongTypesAndRanges) {
  expect_completion_rejected(R"({})", "prompt", "required");
  expect_completion_rejected(R"({"prompt": ""})", "prompt", "empty");
  expect_completion_rejected(R"({"prompt": []})", "prompt", "empty");
  expect_completion_rejected(R"({"prompt": 5})", "prompt", "string or a list");
  expect_completion_rejected(R"({"prompt": ["a", "b"]})", "prompt", "batched");
  expect_completion_rejected(R"({"prompt": [1, -2]})", "prompt[1]", "not a token id");
  expect_completion_rejected(R"({"prompt": [1, 4294967296]})", "prompt[1]", "not a token id");
  expect_completion_rejected(R"({"prompt": [1, 2.5]})", "prompt[1]", "integer");
  expect_completion_rejected(R"({"prompt": "x", "model": 3})", "model", "string");
  expect_completion_rejected(R"({"prompt": "x", "max_tokens": -1})", "max_tokens", ">= 0");
  expect_completion_rejected(R"({"prompt": "x", "max_tokens": "5"})", "max_tokens", "integer");
  expect_completion_rejected(R"({"prompt": "x", "max_tokens": 1e30})", "max_tokens", "integer");
  expect_completion_rejected(R"({"prompt": "x", "max_tokens": 18446744073709551615})", "max_tokens", "too large");
  expect_completion_rejected(R"({"prompt": "x", "temperature": -0.1})", "temperature", "[0, 2]");
  expect_completion_rejected(R"({"prompt": "x", "temperature": 2.5})", "temperature", "[0, 2]");
  expect_completion_rejected(R"({"prompt": "x", "temperature": "hot"})", "temperature", "number");
  expect_completion_rejected(R"({"prompt": "x", "top_p": 0})", "top_p", "(0, 1]");
  expect_completion_rejected(R"({"prompt": "x", "top_p": 1.5})", "top_p", "(0, 1]");
  expect_completion_rejected(R"({"prompt": "x", "top_k": -2})", "top_k", "-1");
  expect_completion_rejected(R"({"prompt": "x", "seed": 1.5})", "seed", "integer");
  expect_completion_rejected(R"({"prompt": "x", "stop": 3})", "stop", "string or a list");
  expect_completion_rejected(R"({"prompt": "x", "stop": [""]})", "stop", "empty");
  expect_completion_rejected(R"({"prompt": "x", "stop": ["a", 1]})", "stop[1]", "string");
  expect_completion_rejected(
      R"({"prompt": "x", "stop": ["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})", "stop",
      "at most 16");
  expect_completion_rejected(R"({"prompt": "x", "stream": "yes"})", "stream", "boolean");
  expect_completion_rejected(R"({"prompt": "x", "stream_options": true})", "stream_options", "object");
  expect_completion_rejected(R"({"prompt": "x", "stream_options": {"include_usage": 1}})", "stream_options.include_usage", "boolean");
  expect_completion_rejected(R"({"prompt": "x", "stream_options": {"usage": true}})", "stream_options.usage", "unrecognized");
  expect_completion_rejected(R"({"prompt": "x", "echo": 1})", "echo", "boolean");
  expect_completion_rejected(R"({"prompt": "x", "logprobs": 21})", "logprobs", "[0, 20]");
  expect_completion_rejected(R"({"prompt": "x", "logprobs": -1})", "logprobs", "[0, 20]");
  expect_completion_rejected(R"({"prompt": "x", "logprobs": true})", "logprobs", "integer");
}

TEST(CompletionRequest, RejectsUnsupportedOptionsAndUnknownFields) {
  expect_completion_rejected(R"({"prompt": "x", "n": 2})", "n", "n = 1");
  expect_completion_rejected(R"({"prompt": "x", "best_of": 3})", "best_of", "best_of = 1");
  expect_completion_rejected(R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty", "not supported");
  expect_completion_rejected(R"({"prompt": "x", "frequency_penalty": 1})", "frequency_penalty", "not supported");
  expect_completion_rejected(R"({"prompt": "x", "logit_bias": {"5": 10}})", "logit_bias", "not supported");
  expect_completion_rejected(R"({"prompt": "x", "suffix": "end"})", "suffix", "not supported");
  expect_completion_rejected(R"({"prompt": "x", "max_token": 5})", "max_token", "did you mean 'max_tokens'");
  expect_completion_rejected(R"({"prompt": "x", "messages": []})", "messages", "unrecognized");
}

TEST(ChatCompletionRequest, ParsesMessagesAndFields) {
  const ChatCompletionRequest r = parse_chat_completion_request(R"({
    "model": "tiny",
    "messages": [{"role": "system", "content": "你是医生"},
                 {"role": "user", "content": [{"type": "text", "text": "头痛"}, {"type": "text", "text": "怎么办"}]},
                 {"role": "assistant", "content": null},
                 {"role": "user", "content": "还有呢", "name": "p"}],
    "max_completion_tokens": 9, "temperature": 0, "logprobs": true, "top_logprobs": 2, "stream": true,
    "stream_options": {"include_usage": false}, "response_format": {"type": "text"}, "tool_choice": "none"})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, ChatRole::system);
  EXPECT_EQ(r.messages[0].content, "你是医生");
  EXPECT_EQ(r.messages[1].role, ChatRole::user);
  EXPECT_EQ(r.messages[1].content, "头痛怎么办");
  EXPECT_EQ(r.messages[2].role, ChatRole::assistant);
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].content, "还有呢");
  EXPECT_EQ(r.max_tokens, 9);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 0);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_EQ(r.sampling.logprobs, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.include_usage);
}

TEST(ChatCompletionRequest, DefaultsAndDeveloperRole) {
  const ChatCompletionRequest r =
      parse_chat_completion_request(R"({"messages": [{"role": "developer", "content": "s"}, {"role": "user", "content": "u"}]})");
  EXPECT_EQ(r.messages[0].role, ChatRole::system);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.logprobs);
  EXPECT_EQ(r.sampling.logprobs, 0);
  EXPECT_EQ(parse_chat_completion_request(R"({"messages": [{"role": "user", "content": "u"}], "max_tokens": 3})").max_tokens, 3);
}

TEST(ChatCompletionRequest, RejectsBadMessages) {
  expect_chat_rejected(R"({})", "messages", "required");
  expect_chat_rejected(R"({"messages": []})", "messages", "empty");
  expect_chat_rejected(R"({"messages": {"role": "user"}})", "messages", "must be a list");
  expect_chat_rejected(R"({"messages": ["hi"]})", "messages[0]", "object");
  expect_chat_rejected(R"({"messages": [{"content": "hi"}]})", "messages[0].role", "required");
  expect_chat_rejected(R"({"messages": [{"role": "tool", "content": "hi"}]})", "messages[0].role", "system, user or assistant");
  expect_chat_rejected(R"({"messages": [{"role": 1, "content": "hi"}]})", "messages[0].role", "string");
  expect_chat_rejected(R"({"messages": [{"role": "user"}]})", "messages[0].content", "required");
  expect_chat_rejected(R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content", "string or a list");
  expect_chat_rejected(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
                       "messages[0].content[0]", "type \"text\"");
  expect_chat_rejected(R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", "messages[0].content[0].text",
                       "required");
  expect_chat_rejected(R"({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}]})",
                       "messages[1]", "only come first");
  expect_chat_rejected(R"({"messages": [{"role": "user", "content": "a", "tool_calls": []}]})", "messages[0].tool_calls",
                       "unrecognized");
}

TEST(ChatCompletionRequest, RejectsBadOptions) {
  const std::string messages = R"("messages": [{"role": "user", "content": "a"}])";
  expect_chat_rejected("{" + messages + R"(, "max_tokens": 0})", "max_tokens", ">= 1");
  expect_chat_rejected("{" + messages + R"(, "max_completion_tokens": -5})", "max_completion_tokens", ">= 1");
  expect_chat_rejected("{" + messages + R"(, "top_logprobs": 2})", "top_logprobs", "needs 'logprobs'");
  expect_chat_rejected("{" + messages + R"(, "logprobs": true, "top_logprobs": 50})", "top_logprobs", "[0, 20]");
  expect_chat_rejected("{" + messages + R"(, "logprobs": 1})", "logprobs", "boolean");
  expect_chat_rejected("{" + messages + R"(, "n": 3})", "n", "n = 1");
  expect_chat_rejected("{" + messages + R"(, "tools": [{"type": "function"}]})", "tools", "not supported");
  expect_chat_rejected("{" + messages + R"(, "tool_choice": "auto"})", "tool_choice", "not supported");
  expect_chat_rejected("{" + messages + R"(, "response_format": {"type": "json_object"}})", "response_format", "text");
  expect_chat_rejected("{" + messages + R"(, "prompt": "x"})", "prompt", "unrecognized");
  expect_chat_rejected("{" + messages + R"(, "metadata": 3})", "metadata", "object");
}

TEST(TokenizeRequests, ParseAndReject) {
  EXPECT_EQ(parse_tokenize_request(R"({"prompt": "发热"})").prompt, "发热");
  const TokenizeRequest chat = parse_tokenize_request(R"({"messages": [{"role": "user", "content": "u"}]})");
  EXPECT_FALSE(chat.prompt);
  ASSERT_EQ(chat.messages.size(), 1u);
  expect_rejected(parse_tokenize_request, R"({})", "prompt", "required");
  expect_rejected(parse_tokenize_request, R"({"prompt": 1})", "prompt", "string");
  expect_rejected(parse_tokenize_request, R"({"prompt": "a", "messages": []})", "prompt", "not both");
  expect_rejected(parse_tokenize_request, R"({"text": "a"})", "text", "unrecognized");

  EXPECT_EQ(parse_detokenize_request(R"({"tokens": [3, 4]})").tokens, (std::vector<int32_t>{3, 4}));
  EXPECT_TRUE(parse_detokenize_request(R"({"tokens": []})").tokens.empty());
  expect_rejected(parse_detokenize_request, R"({})", "tokens", "required");
  expect_rejected(parse_detokenize_request, R"({"tokens": "abc"})", "tokens", "list of token ids");
  expect_rejected(parse_detokenize_request, R"({"tokens": [1, "2"]})", "tokens[1]", "integer");
  expect_rejected(parse_detokenize_request, "not json", "", "malformed JSON");
}

}  // namespace
}  // namespace stepwise::http
