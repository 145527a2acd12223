// The HTTP backend against the real `stepwise serve` on loopback, serving the tiny checkpoint: the same benchmark run
// over HTTP and in process gives the same replies, the same chosen options and the same option log-probs (up to
// float noise of different batching), for both prompt styles.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "eval/runner.h"
#include "eval/runner_engine.h"
#include "eval/runner_fixture.h"
#include "eval/runner_http.h"

extern char** environ;

namespace stepwise::eval {
namespace {

// `stepwise serve --port 0` started as a child process; its stdout goes to a file where the URL is read from.
class ServeProcess {
 public:
  explicit ServeProcess(const fs::path& model) : log_("serve_stdout.txt") {
    const std::string binary = STEPWISE_BINARY, model_dir = model.string(), log = log_.path().string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> args = {binary, "serve", "--model", model_dir, "--port", "0", "--api-key", "key-1"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (pid_ > 0 && url_.empty() && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(log);
      std::string line;
      while (std::getline(in, line)) {
        const size_t at = line.find("listening on ");
        if (at != std::string::npos) url_ = line.substr(at + 13);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~ServeProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  const std::string& url() const { return url_; }

 private:
  testing::TempPath log_;
  pid_t pid_ = -1;
  std::string url_;
};

TEST(ServeEndToEnd, HttpRunMatchesTheInProcessRun) {
  ServeProcess serve(testing::runner_files().checkpoint);
  ASSERT_FALSE(serve.url().empty()) << "stepwise serve printed no 'listening on' line";
  HttpBackendOptions http;
  http.url = serve.url();
  http.api_key = "key-1";
  http.concurrency = 4;
  HttpBackend over_http(http);
  EXPECT_EQ(over_http.model_label(), "tiny-eval-model");
  EngineOptions engine;
  engine.model_dir = testing::runner_files().checkpoint;
  EngineBackend in_process(engine, 4);

  for (const PromptStyle style : {PromptStyle::chat, PromptStyle::plain}) {
    EvalOptions o;
    o.bench = testing::runner_files().mcq;
    o.prompt_style = style;
    o.max_tokens = 8;
    o.progress = false;
    const EvalReport a = run_eval(over_http, o);
    const EvalReport b = run_eval(in_process, o);
    ASSERT_EQ(a.mcq_records.size(), b.mcq_records.size());
    for (size_t i = 0; i < a.mcq_records.size(); ++i) {
      const McqRecord &x = a.mcq_records[i], &y = b.mcq_records[i];
      EXPECT_EQ(x.method, y.method);
      EXPECT_EQ(x.output, y.output) << x.id << " " << prompt_style_name(style);
      EXPECT_EQ(x.predicted, y.predicted) << x.id << " " << prompt_style_name(style);
      ASSERT_EQ(x.option_scores.size(), y.option_scores.size());
      for (size_t k = 0; k < x.option_scores.size(); ++k)
        EXPECT_NEAR(x.option_scores[k], y.option_scores[k], 1e-4) << x.id << " option " << k;
    }
    EXPECT_EQ(report_to_json(a).at("mcq").dump(), report_to_json(b).at("mcq").dump());
  }
}

}  // namespace
}  // namespace stepwise::eval
