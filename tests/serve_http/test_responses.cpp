// Tests of the OpenAI response bodies, SSE framing, logprobs layouts and the engine -> HTTP event channel.
#include <gtest/gtest.h>

#include <thread>

#include "serve/http/event_channel.h"
#include "serve/http/responses.h"

namespace stepwise::http {
namespace {

// A stand-in vocabulary for the token-text function: id -> "t<id>" with id 7 a two-byte character.
std::string fake_token_text(int32_t id) { return id == 7 ? "热" : "t" + std::to_string(id); }

const ResponseMeta kMeta{"cmpl-abc", 1700000000, "tiny"};

TEST(Responses, TokenSurfaceOfPieces) {
  EXPECT_EQ(token_surface("\xE2\x96\x81hello"), " hello");
  EXPECT_EQ(token_surface("a\xE2\x96\x81" "b\xE2\x96\x81"), "a b ");
  EXPECT_EQ(token_surface("<0xE4>"), std::string(1, char(0xE4)));
  EXPECT_EQ(token_surface("<0x0A>"), "\n");
  EXPECT_EQ(token_surface("<0xZZ>"), "<0xZZ>");
  EXPECT_EQ(token_surface("<|user|>"), "<|user|>");
  EXPECT_EQ(token_surface("发热"), "发热");
}

TEST(Responses, DumpReplacesInvalidUtf8) {
  const std::string lone_byte(1, char(0xE4));
  EXPECT_EQ(dump_json(json{{"t", lone_byte}}), "{\"t\":\"\xEF\xBF\xBD\"}");
  EXPECT_EQ(dump_json(json{{"t", "发"}}), "{\"t\":\"发\"}");
}

TEST(Responses, SseFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // A newline inside a value is escaped by JSON, so an event never spans lines.
  EXPECT_EQ(sse_event(json{{"text", "a\nb"}}), "data: {\"text\":\"a\\nb\"}\n\n");
}

TEST(Responses, ErrorBodyShape) {
  const json body = error_body("bad", "invalid_request_error", "max_tokens", "");
  EXPECT_EQ(body["error"]["message"], "bad");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "max_tokens");
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_TRUE(error_body("m", "t", "", "c")["error"]["param"].is_null());
}

TEST(Responses, CompletionBody) {
  const json body = completion_body(kMeta, "发热", json(), "length", 5, 2);
  EXPECT_EQ(body["id"], "cmpl-abc");
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "tiny");
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], "发热");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"], (json{{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}}));
}

TEST(Responses, ChatBodyAndChunks) {
  const json body = chat_completion_body(kMeta, "你好", json(), "stop", 3, 1);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "你好"}}));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["total_tokens"], 4);

  const json chunk = chat_chunk(kMeta, {{"content", "你"}}, json(), "");
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "你");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(chunk.contains("usage"));

  const json last = completion_chunk(kMeta, "", json(), "stop");
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json usage = usage_chunk(kMeta, "chat.completion.chunk", 3, 4);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

TEST(Responses, CompletionLogprobsWithEcho) {
  CompletionLogprobs builder(fake_token_text, 0);
  // Prompt [1, 7, 3]: the engine reports logprobs of tokens 7 and 3 given their prefixes.
  const std::vector<TokenLogprob> prompt_logprobs = {{7, -1.5, {{7, -1.5}, {2, -2.0}}}, {3, -0.25, {}}};
  const json prompt = builder.prompt({1, 7, 3}, prompt_logprobs);
  EXPECT_EQ(prompt["tokens"], (json{"t1", "热", "t3"}));
  EXPECT_TRUE(prompt["token_logprobs"][0].is_null());
  EXPECT_TRUE(prompt["top_logprobs"][0].is_null());
  EXPECT_EQ(prompt["token_logprobs"][1], -1.5);
  EXPECT_EQ(prompt["top_logprobs"][1], (json{{"热", -1.5}, {"t2", -2.0}}));
  EXPECT_EQ(prompt["token_logprobs"][2], -0.25);
  EXPECT_EQ(prompt["text_offset"], (json{0, 2, 5}));  // "t1" is 2 bytes, "热" is 3

  const json generated = builder.generated({{4, -0.5, {{4, -0.5}}}});
  EXPECT_EQ(generated["tokens"], json{"t4"});
  EXPECT_EQ(generated["text_offset"], json{7});  // continues after the prompt
  const json joined = CompletionLogprobs::join(prompt, generated);
  EXPECT_EQ(joined["tokens"].size(), 4u);
  EXPECT_EQ(joined["token_logprobs"][3], -0.5);
  EXPECT_EQ(joined["text_offset"], (json{0, 2, 5, 7}));
}

TEST(Responses, CompletionLogprobsWithoutEchoStartAfterThePrompt) {
  CompletionLogprobs builder(fake_token_text, 10);
  const json first = builder.generated({{1, -0.1, {}}, {7, -0.2, {}}});
  const json second = builder.generated({{2, -0.3, {}}});
  EXPECT_EQ(first["text_offset"], (json{10, 12}));
  EXPECT_EQ(second["text_offset"], json{15});
  EXPECT_EQ(first["top_logprobs"][0], json::object());
}

TEST(Responses, ChatLogprobs) {
  const json logprobs = chat_logprobs({{7, -0.5, {{7, -0.5}, {1, -1.25}}}}, fake_token_text);
  ASSERT_EQ(logprobs["content"].size(), 1u);
  const json& entry = logprobs["content"][0];
  EXPECT_EQ(entry["token"], "热");
  EXPECT_EQ(entry["logprob"], -0.5);
  EXPECT_EQ(entry["bytes"], (json{0xE7, 0x83, 0xAD}));
  ASSERT_EQ(entry["top_logprobs"].size(), 2u);
  EXPECT_EQ(entry["top_logprobs"][1], (json{{"token", "t1"}, {"logprob", -1.25}, {"bytes", {116, 49}}}));
}

TEST(Responses, ModelsBody) {
  const json body = models_body("tiny", 5, 512);
  EXPECT_EQ(body["object"], "list");
  EXPECT_EQ(body["data"][0]["id"], "tiny");
  EXPECT_EQ(body["data"][0]["object"], "model");
  EXPECT_EQ(body["data"][0]["max_model_len"], 512);
}

TEST(Responses, GenerationResultFoldsEvents) {
  GenerationResult result;
  GenerationEvent first;
  first.prompt_logprobs = {{3, -1.0, {}}};
  first.tokens = {{5, -0.1, {}}};
  first.text = "发";
  first.prompt_tokens = 2;
  first.completion_tokens = 1;
  GenerationEvent last;
  last.tokens = {{6, -0.2, {}}};
  last.text = "热";
  last.finished = true;
  last.finish_reason = "length";
  last.prompt_tokens = 2;
  last.completion_tokens = 2;
  result.add(first);
  EXPECT_FALSE(result.finished);
  result.add(last);
  EXPECT_TRUE(result.finished);
  EXPECT_EQ(result.text, "发热");
  EXPECT_EQ(result.tokens.size(), 2u);
  EXPECT_EQ(result.prompt_logprobs.size(), 1u);
  EXPECT_EQ(result.finish_reason, "length");
  EXPECT_EQ(result.completion_tokens, 2);
}

TEST(EventChannel, HandsEventsAcrossThreadsInOrder) {
  EventChannel channel;
  std::thread engine([&] {
    for (int i = 0; i < 100; ++i) {
      GenerationEvent event;
      event.text = std::to_string(i);
      event.finished = i == 99;
      EXPECT_TRUE(channel.push(event));
    }
  });
  std::vector<std::string> seen;
  bool finished = false;
  while (!finished) {
    for (const GenerationEvent& event : channel.take(std::chrono::milliseconds(1000))) {
      seen.push_back(event.text);
      finished = event.finished;
    }
  }
  engine.join();
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], std::to_string(i));
}

TEST(EventChannel, AbandonedChannelRefusesEvents) {
  EventChannel channel;
  EXPECT_TRUE(channel.push(GenerationEvent{}));
  channel.abandon();
  EXPECT_TRUE(channel.abandoned());
  EXPECT_FALSE(channel.push(GenerationEvent{}));  // the engine's callback returns false: cancel
  EXPECT_TRUE(channel.take(std::chrono::milliseconds(1)).empty());
}

}  // namespace
}  // namespace stepwise::http
