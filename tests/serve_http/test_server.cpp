// The HTTP server over real loopback HTTP and the real engine on a tiny random checkpoint (tests/serve's fixture):
// completions and chat equal the engine's own output, streamed chunks reassemble to the non-streamed text, 36
// concurrent requests are all correct, every bad input gets its status code, a client hanging up mid-stream cancels
// its request (KV blocks back to 0), auth, 429 and /health.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "data/chat_template.h"
#include "http_test_util.h"
#include "serve/http/server.h"
#include "serve/serve_fixture.h"

namespace stepwise::http {
namespace {

using test::HttpReply;
using test::json;
using test::post_json;

struct ServerFixture : ::testing::Test {
  static void SetUpTestSuite() {
    engine = new Engine(test::tiny_options());
    server = new HttpServer(ServerOptions{});
    server->attach(*engine);
    port = server->bind("127.0.0.1", 0);
    serving = new std::thread([] { server->serve(); });
  }
  static void TearDownTestSuite() {
    server->stop();
    serving->join();
    delete serving;
    delete server;
    delete engine;
  }

  // The engine's own answer for a prompt (what the HTTP layer must reproduce).
  static test::Collected direct(std::vector<int32_t> prompt, SamplingParams sampling) {
    GenerationRequest request;
    request.prompt = std::move(prompt);
    request.sampling = std::move(sampling);
    return test::run_all(*engine, {request})[0];
  }
  static SamplingParams greedy(int64_t max_tokens) {
    SamplingParams sampling;
    sampling.temperature = 0;
    sampling.max_tokens = max_tokens;
    return sampling;
  }
  static const Tokenizer& tokenizer() { return engine->tokenizer(); }

  static Engine* engine;
  static HttpServer* server;
  static std::thread* serving;
  static int port;
};
Engine* ServerFixture::engine = nullptr;
HttpServer* ServerFixture::server = nullptr;
std::thread* ServerFixture::serving = nullptr;
int ServerFixture::port = 0;

const char* const kPrompts[] = {"患者出现发热、咳嗽三天，体温38.5度。", "高血压的常见症状有哪些？", "糖尿病",
                                "请解释一下慢性胃炎的治疗方法。", "头痛"};

std::string completion_body(const std::string& prompt, int64_t max_tokens, json extra = json::object()) {
  json body = {{"model", "tiny-step3"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  body.update(extra);
  return body.dump();
}

TEST_F(ServerFixture, HealthAndModels) {
  EXPECT_EQ(test::get(port, "/health").status, 200);
  const HttpReply models = test::get(port, "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.parsed()["data"][0]["id"], "tiny-step3");
  EXPECT_EQ(models.parsed()["data"][0]["max_model_len"], 256);
}

TEST_F(ServerFixture, CompletionEqualsTheEngine) {
  for (const char* prompt : kPrompts) {
    const HttpReply reply = post_json(port, "/v1/completions", completion_body(prompt, 12));
    ASSERT_EQ(reply.status, 200) << reply.body;
    const json body = reply.parsed();
    const test::Collected expected = direct(tokenizer().encode(prompt), greedy(12));
    EXPECT_EQ(body["object"], "text_completion");
    EXPECT_EQ(body["model"], "tiny-step3");
    EXPECT_EQ(body["choices"][0]["text"], expected.text);
    EXPECT_EQ(body["choices"][0]["finish_reason"], expected.finish_reason);
    EXPECT_EQ(body["usage"]["prompt_tokens"], tokenizer().encode(prompt).size());
    EXPECT_EQ(body["usage"]["completion_tokens"], expected.tokens.size());
    EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  }
}

TEST_F(ServerFixture, TokenPromptEqualsTextPrompt) {
  const std::vector<int32_t> ids = tokenizer().encode(kPrompts[1]);
  const json by_ids = post_json(port, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 8}, {"temperature", 0}}.dump()).parsed();
  const json by_text = post_json(port, "/v1/completions", completion_body(kPrompts[1], 8)).parsed();
  EXPECT_EQ(by_ids["choices"][0]["text"], by_text["choices"][0]["text"]);
  EXPECT_EQ(by_ids["usage"], by_text["usage"]);
}

TEST_F(ServerFixture, StreamedCompletionReassemblesToTheNonStreamedText) {
  const json plain = post_json(port, "/v1/completions", completion_body(kPrompts[0], 20)).parsed();
  const HttpReply streamed = post_json(port, "/v1/completions",
                                       completion_body(kPrompts[0], 20, {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  bool done = false;
  const std::vector<json> chunks = test::sse_payloads(streamed.body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 3u);
  std::string text;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i]["object"], "text_completion");
    EXPECT_EQ(chunks[i]["id"], chunks[0]["id"]);
    text += chunks[i]["choices"][0]["text"].get<std::string>();
    const bool last_choice = i + 2 == chunks.size();
    EXPECT_EQ(chunks[i]["choices"][0]["finish_reason"].is_null(), !last_choice);
  }
  EXPECT_EQ(text, plain["choices"][0]["text"]);
  EXPECT_EQ(chunks[chunks.size() - 2]["choices"][0]["finish_reason"], plain["choices"][0]["finish_reason"]);
  EXPECT_TRUE(chunks.back()["choices"].empty());
  EXPECT_EQ(chunks.back()["usage"], plain["usage"]);
}

TEST_F(ServerFixture, ChatEqualsTheEngineOnTheRenderedPrompt) {
  const Conversation conversation = {{ChatRole::system, "你是医生"}, {ChatRole::user, "头痛怎么办？"}};
  const json request = {{"messages", conversation_to_json(conversation)}, {"max_tokens", 10}, {"temperature", 0}};
  const HttpReply reply = post_json(port, "/v1/chat/completions", request.dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json body = reply.parsed();
  const std::vector<int32_t> prompt = render_prompt(tokenizer(), conversation);
  const test::Collected expected = direct(prompt, greedy(10));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], expected.text);
  EXPECT_EQ(body["usage"]["prompt_tokens"], prompt.size());

  json streamed_request = request;
  streamed_request["stream"] = true;
  bool done = false;
  const std::vector<json> chunks =
      test::sse_payloads(post_json(port, "/v1/chat/completions", streamed_request.dump()).body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (const json& chunk : chunks) {
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    text += chunk["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, expected.text);
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], body["choices"][0]["finish_reason"]);
}

TEST_F(ServerFixture, CompletionLogprobs) {
  const json body = post_json(port, "/v1/completions", completion_body(kPrompts[2], 6, {{"logprobs", 3}})).parsed();
  const json& logprobs = body["choices"][0]["logprobs"];
  const size_t n = body["usage"]["completion_tokens"].get<size_t>();
  ASSERT_EQ(logprobs["tokens"].size(), n);
  ASSERT_EQ(logprobs["token_logprobs"].size(), n);
  ASSERT_EQ(logprobs["top_logprobs"].size(), n);
  EXPECT_EQ(logprobs["text_offset"][0], std::string(kPrompts[2]).size());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_LE(logprobs["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_GE(logprobs["top_logprobs"][i].size(), 1u);
    EXPECT_LE(logprobs["top_logprobs"][i].size(), 3u);
  }
  const json chat = post_json(port, "/v1/chat/completions",
                              json{{"messages", {{{"role", "user"}, {"content", "糖尿病"}}}}, {"max_tokens", 4},
                                   {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}}.dump()).parsed();
  const json& content = chat["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), chat["usage"]["completion_tokens"].get<size_t>());
  for (const json& entry : content) {
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    EXPECT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_FALSE(entry["bytes"].empty());
  }
}

TEST_F(ServerFixture, EchoWithZeroMaxTokensScoresThePrompt) {
  const std::string prompt = kPrompts[0];
  const HttpReply reply = post_json(port, "/v1/completions",
                                    completion_body(prompt, 0, {{"echo", true}, {"logprobs", 1}}));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json body = reply.parsed();
  const std::vector<int32_t> ids = tokenizer().encode(prompt);
  SamplingParams sampling = greedy(1);
  sampling.prompt_logprobs = true;
  const test::Collected expected = direct(ids, sampling);
  EXPECT_EQ(body["choices"][0]["text"], prompt);
  EXPECT_EQ(body["usage"]["completion_tokens"], 0);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  const json& logprobs = body["choices"][0]["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), ids.size());
  EXPECT_TRUE(logprobs["token_logprobs"][0].is_null());
  ASSERT_EQ(expected.prompt_logprobs.size(), ids.size() - 1);
  for (size_t i = 1; i < ids.size(); ++i)
    EXPECT_DOUBLE_EQ(logprobs["token_logprobs"][i].get<double>(), expected.prompt_logprobs[i - 1].logprob) << i;
}

TEST_F(ServerFixture, ThirtySixConcurrentRequestsAreAllCorrect) {
  constexpr size_t kRequests = 36;
  std::vector<std::string> expected(kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    const std::vector<int32_t> prompt = test::test_prompt(tokenizer(), i);
    expected[i] = direct(prompt, greedy(int64_t(4 + i % 5))).text;
  }
  std::vector<HttpReply> replies(kRequests);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      const json request = {{"prompt", test::test_prompt(tokenizer(), i)}, {"max_tokens", 4 + i % 5},
                            {"temperature", 0}, {"stream", i % 2 == 1}};
      replies[i] = post_json(port, "/v1/completions", request.dump());
    });
  }
  for (std::thread& client : clients) client.join();
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_EQ(replies[i].status, 200) << i << ": " << replies[i].body;
    std::string text;
    if (i % 2 == 1) {
      bool done = false;
      for (const json& chunk : test::sse_payloads(replies[i].body, &done)) text += chunk["choices"][0]["text"].get<std::string>();
      EXPECT_TRUE(done);
    } else {
      text = replies[i].parsed()["choices"][0]["text"];
    }
    EXPECT_EQ(text, expected[i]) << "request " << i;
  }
  EXPECT_EQ(engine->metrics().kv_blocks_used, 0);
}

void expect_status(int port, const std::string& path, const std::string& body, int status, const std::string& param) {
  const HttpReply reply = post_json(port, path, body);
  EXPECT_EQ(reply.status, status) << path << " " << body << " -> " << reply.body;
  const json parsed = json::parse(reply.body, nullptr, false);
  ASSERT_TRUE(parsed.is_object() && parsed.contains("error")) << reply.body;
  EXPECT_TRUE(parsed["error"]["message"].is_string());
  EXPECT_TRUE(parsed["error"]["type"].is_string());
  if (!param.empty()) {
    EXPECT_EQ(parsed["error"]["param"], param) << reply.body;
  }
}

TEST_F(ServerFixture, BadInputsGetTheirStatusCodes) {
  const std::string completions = "/v1/completions", chat = "/v1/chat/completions";
  expect_status(port, completions, "{not json", 400, "");
  expect_status(port, completions, R"({"prompt": 42})", 400, "prompt");
  expect_status(port, completions, R"({"prompt": "x", "temperature": "hot"})", 400, "temperature");
  expect_status(port, completions, R"({"prompt": "x", "max_tokens": -1})", 400, "max_tokens");
  expect_status(port, completions, R"({"prompt": "x", "max_tokens": 100000})", 400, "max_tokens");
  expect_status(port, completions, R"({"prompt": "x", "n": 2})", 400, "n");
  expect_status(port, completions, R"({"prompt": [1, 99999]})", 400, "prompt");
  expect_status(port, completions, json{{"prompt", std::vector<int32_t>(300, 5)}, {"max_tokens", 1}}.dump(), 400, "prompt");
  expect_status(port, completions, R"({"prompt": "x", "model": "gpt-4"})", 404, "model");
  expect_status(port, chat, R"({"messages": []})", 400, "messages");
  expect_status(port, chat, R"({"messages": [{"role": "robot", "content": "x"}]})", 400, "messages[0].role");
  expect_status(port, chat, R"({"messages": [{"role": "user", "content": "x"}], "model": "nope"})", 404, "model");
  expect_status(port, chat, R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1000})", 400, "max_tokens");
  expect_status(port, "/detokenize", R"({"tokens": [99999]})", 400, "tokens");
  expect_status(port, "/v1/nothing", "{}", 404, "");
  EXPECT_EQ(test::get(port, "/v1/completions").status, 404);  // GET on a POST route
  EXPECT_EQ(test::get(port, "/health").status, 200);          // the server is still fine
}

TEST_F(ServerFixture, TokenizeAndDetokenizeRoundTrip) {
  const HttpReply tokens = post_json(port, "/tokenize", json{{"prompt", kPrompts[3]}}.dump());
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const std::vector<int32_t> ids = tokens.parsed()["tokens"];
  EXPECT_EQ(ids, tokenizer().encode(kPrompts[3]));
  const HttpReply text = post_json(port, "/detokenize", json{{"tokens", ids}}.dump());
  ASSERT_EQ(text.status, 200) << text.body;
  EXPECT_EQ(text.parsed()["prompt"], kPrompts[3]);
  const Conversation conversation = {{ChatRole::user, "头痛"}};
  const HttpReply chat = post_json(port, "/tokenize", json{{"messages", conversation_to_json(conversation)}}.dump());
  EXPECT_EQ(chat.parsed()["tokens"].get<std::vector<int32_t>>(), render_prompt(tokenizer(), conversation));
}

TEST_F(ServerFixture, MetricsPage) {
  ASSERT_EQ(post_json(port, "/v1/completions", completion_body(kPrompts[4], 5)).status, 200);
  const HttpReply metrics = test::get(port, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string& text = metrics.body;
  for (const char* needle : {"# TYPE stepwise_time_to_first_token_seconds histogram", "stepwise_inter_token_latency_seconds_bucket",
                             "stepwise_prompt_tokens_total ", "stepwise_generation_tokens_total ", "stepwise_requests_running ",
                             "stepwise_requests_waiting ", "stepwise_kv_cache_usage_ratio ",
                             "stepwise_afd_attention_wait_seconds_total{layer=\"2\"}", "stepwise_afd_ffn_wait_seconds_total{layer=\"0\"}",
                             "stepwise_http_responses_total{code=\"200\"}"})
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
  EXPECT_EQ(text.find("stepwise_time_to_first_token_seconds_count 0\n"), std::string::npos);
}

TEST_F(ServerFixture, ClientHangingUpMidStreamCancelsTheRequest) {
  const int64_t generated_before = engine->metrics().generation_tokens_total;
  {
    test::RawConnection connection(port);
    ASSERT_TRUE(connection.connected());
    connection.send_post("/v1/completions", json{{"prompt", "头痛"}, {"max_tokens", 240}, {"temperature", 0},
                                                 {"stream", true}}.dump());
    ASSERT_TRUE(connection.read_until("data: ")) << connection.received();
  }  // closed after the first chunk
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  EngineMetrics metrics = engine->metrics();
  while ((metrics.kv_blocks_used != 0 || metrics.running != 0) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    metrics = engine->metrics();
  }
  EXPECT_EQ(metrics.kv_blocks_used, 0);
  EXPECT_EQ(metrics.running, 0);
  EXPECT_LT(metrics.generation_tokens_total - generated_before, 240) << "the request ran to its end: not cancelled";
}

TEST_F(ServerFixture, ApiKeyIsRequiredWhenConfigured) {
  ServerOptions options;
  options.api_key = "s3cret";
  HttpServer guarded(options);
  guarded.attach(*engine);
  const int guarded_port = guarded.bind("127.0.0.1", 0);
  std::thread serving_thread([&] { guarded.serve(); });
  const std::string body = completion_body("头痛", 2);
  const HttpReply missing = post_json(guarded_port, "/v1/completions", body);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.parsed()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(post_json(guarded_port, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(post_json(guarded_port, "/v1/completions", body, {{"Authorization", "s3cret"}}).status, 401);
  EXPECT_EQ(test::get(guarded_port, "/v1/models").status, 401);
  EXPECT_EQ(post_json(guarded_port, "/v1/completions", body, {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(test::get(guarded_port, "/health").status, 200);  // probes need no key
  guarded.stop();
  serving_thread.join();
}

TEST_F(ServerFixture, FullQueueIs429AndNotReadyIs503) {
  EngineOptions options = test::tiny_options();
  options.max_queue = 0;  // every submission finds the queue full
  Engine full(options);
  HttpServer busy(ServerOptions{});
  const int busy_port = busy.bind("127.0.0.1", 0);
  std::thread serving_thread([&] { busy.serve(); });
  EXPECT_EQ(test::get(busy_port, "/health").status, 503);  // no engine attached yet: loading
  EXPECT_EQ(post_json(busy_port, "/v1/completions", completion_body("头痛", 2)).status, 503);
  busy.attach(full);
  EXPECT_EQ(test::get(busy_port, "/health").status, 200);
  const HttpReply reply = post_json(busy_port, "/v1/completions", completion_body("头痛", 2));
  EXPECT_EQ(reply.status, 429) << reply.body;
  EXPECT_EQ(reply.parsed()["error"]["code"], "rate_limit_exceeded");
  full.drain();
  EXPECT_EQ(test::get(busy_port, "/health").status, 503);  // draining: not accepting
  busy.stop();
  serving_thread.join();
}

}  // namespace
}  // namespace stepwise::http
