// The real `stepwise serve` binary: it binds loopback on a free port, answers /health once loaded, and on SIGTERM
// stops accepting, finishes the stream in flight to its last token and exits 0.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "http_test_util.h"
#include "serve/serve_fixture.h"

namespace stepwise {
namespace {

using test::json;

// Runs `stepwise serve` with stdout on a pipe; the first stdout line names the bound port.
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;

  ServeProcess(const fs::path& model_dir, const std::vector<std::string>& extra_args) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<std::string> args = {STEPWISE_BINARY, "serve", "--model", model_dir.string(),
                                       "--port", "0", "--max-model-len", "256", "--kv-blocks", "256", "--kv-block-size", "4"};
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* stream = ::fdopen(out[0], "r");
    char line[256] = {};
    if (std::fgets(line, sizeof line, stream)) std::sscanf(line, "stepwise serve: listening on http://127.0.0.1:%d", &port);
    std::fclose(stream);
  }

  // Exit code once it ends within `seconds`; -1 if it did not.
  int wait_exit(int seconds) {
    for (int i = 0; i < seconds * 100; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  ~ServeProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

bool wait_healthy(int port, int seconds) {
  for (int i = 0; i < seconds * 50; ++i) {
    if (test::get(port, "/health").status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ServeBinary, SigtermFinishesTheRunningStreamAndExitsZero) {
  ServeProcess serve(test::tiny_checkpoint(), {"--api-key", "k"});
  ASSERT_GT(serve.pid, 0);
  ASSERT_GT(serve.port, 0) << "no 'listening on' line";
  ASSERT_TRUE(wait_healthy(serve.port, 20));

  test::RawConnection stream(serve.port);
  ASSERT_TRUE(stream.connected());
  const std::string body = json{{"prompt", "头痛"}, {"max_tokens", 200}, {"temperature", 0}, {"stream", true},
                                {"stream_options", {{"include_usage", true}}}}.dump();
  stream.send_post("/v1/completions", body, "Authorization: Bearer k\r\n");
  ASSERT_TRUE(stream.read_until("data: ")) << stream.received();
  ASSERT_EQ(::kill(serve.pid, SIGTERM), 0);
  // The stream was still running when the signal came (200 tokens take far longer than the first chunk).
  EXPECT_EQ(stream.received().find("[DONE]"), std::string::npos);

  // The stream in flight runs to its last token, then [DONE]; the process exits 0.
  EXPECT_TRUE(stream.read_until("data: [DONE]")) << stream.received();
  EXPECT_NE(stream.received().find("\"completion_tokens\":200"), std::string::npos) << stream.received();
  EXPECT_NE(stream.received().find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(serve.wait_exit(20), 0);
  EXPECT_FALSE(test::RawConnection(serve.port).connected());  // no longer accepting
}

TEST(ServeBinary, BadModelDirectoryFailsWithExitCode2) {
  ServeProcess serve("/nonexistent/model", {});
  ASSERT_GT(serve.pid, 0);
  EXPECT_EQ(serve.wait_exit(20), 2);
}

}  // namespace
}  // namespace stepwise
