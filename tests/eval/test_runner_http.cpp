// The HTTP eval backend: URL parsing, request bodies and response parsing as pure functions, then the backend and
// the runner against a small OpenAI-shaped server on loopback whose "model" is a known function (one token per
// code point, log-prob fixed per character), so that scores and replies can be checked exactly. The server also
// exercises bearer auth, retries after 429 and the max_tokens = 0 -> 1 fallback.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "eval/eval_fixtures.h"
#include "eval/runner.h"
#include "eval/runner_http.h"
#include "eval/utf8.h"

namespace stepwise::eval {
namespace {

TEST(HttpUrl, SplitsHostAndApiPath) {
  ServerUrl u = parse_server_url("http://127.0.0.1:8000");
  EXPECT_EQ(u.scheme_host_port, "http://127.0.0.1:8000");
  EXPECT_EQ(u.api_path, "/v1");
  u = parse_server_url("http://localhost:9/v1/");
  EXPECT_EQ(u.scheme_host_port, "http://localhost:9");
  EXPECT_EQ(u.api_path, "/v1");
  u = parse_server_url("https://example.org/openai");
  EXPECT_EQ(u.scheme_host_port, "https://example.org");
  EXPECT_EQ(u.api_path, "/openai/v1");
  EXPECT_THROW(parse_server_url("127.0.0.1:8000"), Error);
  EXPECT_THROW(parse_server_url("ftp://host"), Error);
  EXPECT_THROW(parse_server_url("http:///v1"), Error);
}

TEST(HttpBodies, AreGreedyOpenAiRequests) {
  const json c = completion_request_body("m", "问题", 64);
  EXPECT_EQ(c.at("model"), "m");
  EXPECT_EQ(c.at("prompt"), "问题");
  EXPECT_EQ(c.at("max_tokens"), 64);
  EXPECT_EQ(c.at("temperature"), 0);
  EXPECT_FALSE(c.contains("echo"));
  const json chat = chat_request_body("m", "问题", 32);
  ASSERT_EQ(chat.at("messages").size(), 1u);
  EXPECT_EQ(chat.at("messages")[0].at("role"), "user");
  EXPECT_EQ(chat.at("messages")[0].at("content"), "问题");
  EXPECT_EQ(chat.at("temperature"), 0);
  const json s = echo_score_request_body("m", "答案：A", 0);
  EXPECT_EQ(s.at("echo"), true);
  EXPECT_EQ(s.at("logprobs"), 1);
  EXPECT_EQ(s.at("max_tokens"), 0);
  EXPECT_EQ(scoring_text({"问题", PromptStyle::plain}), "问题");
  EXPECT_EQ(scoring_text({"问题", PromptStyle::chat}), "<|user|>问题<|end_of_turn|><|assistant|>");
}

TEST(HttpResponses, ParseTextsAndModelIds) {
  EXPECT_EQ(completion_text(json::parse(R"({"choices":[{"text":"答案是B"}]})"), "w"), "答案是B");
  EXPECT_EQ(chat_text(json::parse(R"({"choices":[{"message":{"role":"assistant","content":"C"}}]})"), "w"), "C");
  EXPECT_EQ(chat_text(json::parse(R"({"choices":[{"message":{"content":null}}]})"), "w"), "");
  EXPECT_EQ(first_model_id(json::parse(R"({"object":"list","data":[{"id":"tiny"},{"id":"x"}]})"), "w"), "tiny");
  try {
    completion_text(json::parse(R"({"choices":[]})"), "POST /v1/completions (task 3)");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("POST /v1/completions (task 3): response field 'choices'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(completion_text(json::parse(R"({"choices":[{"text":5}]})"), "w"), Error);
  EXPECT_THROW(chat_text(json::parse(R"({"choices":[{"text":"x"}]})"), "w"), Error);
  EXPECT_THROW(first_model_id(json::parse(R"({"data":[]})"), "w"), Error);
}

TEST(HttpResponses, EchoedPromptDropsGeneratedTokens) {
  const json body = json::parse(R"({"choices":[{"text":"abcx","logprobs":{"tokens":["a","b","c","x"],
      "token_logprobs":[null,-0.5,-0.25,-3.0],"top_logprobs":[null,{},{},{}],"text_offset":[0,1,2,3]}}],
      "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})");
  EchoedPrompt e = echoed_prompt(body, 1, "w");
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(e.logprobs, (std::vector<double>{0.0, -0.5, -0.25}));
  json no_usage = body;
  no_usage.erase("usage");
  EXPECT_EQ(echoed_prompt(no_usage, 1, "w").tokens.size(), 3u);
  EXPECT_EQ(echoed_prompt(no_usage, 0, "w").tokens.size(), 4u);
  json no_logprobs = body;
  no_logprobs["choices"][0]["logprobs"] = nullptr;
  EXPECT_THROW(echoed_prompt(no_logprobs, 0, "w"), Error);
  json bad_value = body;
  bad_value["choices"][0]["logprobs"]["token_logprobs"][1] = nullptr;
  EXPECT_THROW(echoed_prompt(bad_value, 0, "w"), Error);
}

TEST(ContinuationLogprob, StartsAfterTheCommonTokenPrefix) {
  // "ab|c" + "d": the server merged "c" and "d" into one token, which then belongs to the continuation.
  const OptionLogProb merged =
      continuation_logprob<std::string>({"ab", "c"}, {"ab", "cd"}, {0.0, -2.0}, "w");
  EXPECT_DOUBLE_EQ(merged.logprob, -2.0);
  EXPECT_EQ(merged.num_tokens, 1);
  const OptionLogProb two = continuation_logprob<int32_t>({5, 6}, {5, 6, 7, 8}, {0.0, -1.0, -0.5, -0.25}, "w");
  EXPECT_DOUBLE_EQ(two.logprob, -0.75);
  EXPECT_EQ(two.num_tokens, 2);
  EXPECT_THROW(continuation_logprob<int32_t>({5, 6}, {5, 6}, {0.0, -1.0}, "w"), Error);
}

// ---- a loopback server with a known "model" ----

double char_logprob(char32_t c) { return -static_cast<double>((static_cast<uint32_t>(c) * 7919u) % 13u + 1u) / 10.0; }

class FakeOpenAiServer {
 public:
  explicit FakeOpenAiServer(bool refuse_zero_max_tokens, int busy_answers)
      : refuse_zero_(refuse_zero_max_tokens), busy_left_(busy_answers) {
    server_.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res)) return;
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})", "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res) || busy(res)) return;
      const json body = json::parse(req.body);
      ++completions_;
      const std::string prompt = body.at("prompt").get<std::string>();
      const int64_t max_tokens = body.at("max_tokens").get<int64_t>();
      if (max_tokens == 0 && refuse_zero_) return error(res, 400, "max_tokens must be at least 1");
      if (!body.value("echo", false)) {
        res.set_content(json{{"choices", {{{"text", "答案是C。"}}}}}.dump(), "application/json");
        return;
      }
      json tokens = json::array(), values = json::array();
      const std::u32string cps = utf8_decode(prompt);
      for (size_t i = 0; i < cps.size(); ++i) {
        tokens.push_back(utf8_encode(cps.substr(i, 1)));
        values.push_back(i == 0 ? json(nullptr) : json(char_logprob(cps[i])));
      }
      std::string text = prompt;
      for (int64_t g = 0; g < max_tokens; ++g) {
        tokens.push_back("x");
        values.push_back(-9.0);
        text += "x";
      }
      const json logprobs = {{"tokens", tokens}, {"token_logprobs", values}};
      const json usage = {{"prompt_tokens", cps.size()}, {"completion_tokens", max_tokens}};
      res.set_content(json{{"choices", {{{"text", text}, {"logprobs", logprobs}}}}, {"usage", usage}}.dump(),
                      "application/json");
    });
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res) || busy(res)) return;
      const json body = json::parse(req.body);
      ++chats_;
      if (body.at("messages").size() != 1 || body.at("messages")[0].at("role") != "user")
        return error(res, 400, "expected one user message");
      res.set_content(json{{"choices", {{{"message", {{"role", "assistant"}, {"content", "正确选项为B"}}}}}}}.dump(),
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeOpenAiServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return cat("http://127.0.0.1:", port_); }
  int completions() const { return completions_; }
  int chats() const { return chats_; }

 private:
  static void error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", {{"message", message}, {"type", "invalid_request_error"}}}}.dump(),
                    "application/json");
  }
  bool authorised(const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") == "Bearer secret") return true;
    error(res, 401, "bad api key");
    return false;
  }
  bool busy(httplib::Response& res) {
    if (busy_left_.fetch_sub(1) <= 0) return false;
    error(res, 429, "queue full");
    return true;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  bool refuse_zero_;
  std::atomic<int> busy_left_;
  std::atomic<int> completions_{0}, chats_{0};
};

HttpBackendOptions client_options(const std::string& url) {
  HttpBackendOptions o;
  o.url = url;
  o.api_key = "secret";
  o.concurrency = 4;
  o.timeout_s = 30;
  return o;
}

class HttpRunner : public ::testing::TestWithParam<bool> {};  // param: server refuses max_tokens = 0

TEST_P(HttpRunner, LikelihoodAndGenerationThroughTheServer) {
  FakeOpenAiServer server(GetParam(), 3);
  HttpBackend backend(client_options(server.url()));
  EXPECT_EQ(backend.model_label(), "fake-model");

  testing::TempPath bench("http_mcq.jsonl");
  jsonl_write(bench.path(), {testing::cmb_record("h1", "内科", "A"), testing::cmb_record("h2", "外科", "B")});
  for (const PromptStyle style : {PromptStyle::plain, PromptStyle::chat}) {
    EvalOptions o;
    o.bench = bench.path();
    o.prompt_style = style;
    o.progress = false;
    const EvalReport report = run_eval(backend, o);
    ASSERT_TRUE(report.mcq_generation && report.mcq_likelihood);
    EXPECT_EQ(report.meta.at("backend"), "http");
    const std::vector<McqItem> items = load_mcq_benchmark(bench.path());
    ASSERT_EQ(report.mcq_records.size(), 4u);
    for (size_t i = 0; i < items.size(); ++i) {
      const McqRecord& generated = report.mcq_records[i];
      EXPECT_EQ(generated.predicted, style == PromptStyle::chat ? "B" : "C");
      const McqRecord& scored = report.mcq_records[items.size() + i];
      ASSERT_EQ(scored.option_scores.size(), items[i].options.size());
      char best = 'A';
      double best_score = -1e9;
      for (size_t k = 0; k < items[i].options.size(); ++k) {
        const double expected = char_logprob(static_cast<char32_t>(items[i].options[k].letter));
        EXPECT_DOUBLE_EQ(scored.option_scores[k], expected);
        if (expected > best_score) {
          best_score = expected;
          best = items[i].options[k].letter;
        }
      }
      EXPECT_EQ(scored.predicted, std::string(1, best));
    }
  }
  EXPECT_EQ(server.chats(), 2);
}

INSTANTIATE_TEST_SUITE_P(MaxTokens, HttpRunner, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "refuses_zero" : "accepts_zero"); });

TEST(HttpBackendErrors, NameTheRequestAndTheServerMessage) {
  FakeOpenAiServer server(false, 0);
  HttpBackendOptions o = client_options(server.url());
  o.api_key = "wrong";
  try {
    HttpBackend backend(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 401: bad api key"), std::string::npos) << e.what();
  }
  HttpBackendOptions nowhere = client_options("http://127.0.0.1:1");
  nowhere.retries = 0;
  nowhere.model = "m";
  HttpBackend unreachable(nowhere);
  try {
    unreachable.generate({{{"问题", PromptStyle::plain}, 4}}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no answer from the server"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepwise::eval
