// Integration tests of `stepwise train` through the real binary on a tiny model and a small fixture corpus:
// a killed run resumes with bit-identical losses, SIGTERM saves and exits cleanly, NaN steps are skipped then stop
// the run, and the held-out loss goes down.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "ckpt/checkpoint.h"
#include "data/tokenizer.h"
#include "train/metrics.h"

using namespace stepwise;

namespace {

const fs::path kSource = STEPWISE_SOURCE_DIR;

// A tokenizer trained once on the fixture corpus, and a tiny two-layer model (dense + MoE).
struct Fixture {
  fs::path dir = fs::temp_directory_path() / "stepwise_trainer_test";
  fs::path corpus = dir / "corpus.jsonl";
  Fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    // The first 200 documents of the committed corpus: enough text for a tokenizer and a visible learning curve.
    std::string all = read_file(kSource / "data/medical-zh/pretrain.jsonl"), head;
    size_t pos = 0;
    for (int i = 0; i < 200; ++i) pos = all.find('\n', pos) + 1;
    write_file_atomic(corpus, all.substr(0, pos));
    TokenizerTrainOptions o;
    o.inputs = {corpus};
    o.vocab_size = 3000;
    Tokenizer::train(o, dir / "tok");
    write_file_atomic(dir / "model.yaml",
                      "hidden_size: 32\nnum_hidden_layers: 2\nnum_attention_heads: 2\nnum_attention_groups: 1\n"
                      "head_dim: 16\nshare_q_dim: 24\nintermediate_size: 48\nmoe_layers_enum: \"1\"\n"
                      "moe_num_experts: 4\nmoe_top_k: 2\nmoe_intermediate_size: 16\nshare_expert_dim: 16\n"
                      "vocab_size: 3000\nrope_theta: 10000\nmax_position_embedding: 512\n");
    write_file_atomic(dir / "recipe.yaml",
                      "stage: pretrain\nmodel: " + (dir / "model.yaml").string() + "\ndata:\n  train: " +
                          corpus.string() + "\n  tokenizer: " + (dir / "tok").string() + "\n  cache_dir: " +
                          (dir / "cache").string() + "\n  seq_len: 32\n  eval_samples: 2\ntrain:\n  micro_batch: 2\n"
                          "  max_steps: 12\n  warmup_steps: 2\n  lr: 3.0e-3\n  eval_every: 6\n  eval_batches: 2\n"
                          "output:\n  save_every: 4\n  keep_last: 3\n");
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

struct RunResult {
  int status = -1;
  std::string output;
};

// Runs `stepwise train <recipe> <args>` to completion, capturing stdout+stderr.
RunResult run_train(const std::vector<std::string>& args) {
  std::string cmd = std::string(STEPWISE_BINARY) + " train " + (fixture().dir / "recipe.yaml").string();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = pclose(p);
  return r;
}

// Starts `stepwise train` in the background; returns its pid.
pid_t spawn_train(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<std::string> all = {STEPWISE_BINARY, "train", (fixture().dir / "recipe.yaml").string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stderr);
    freopen("/dev/null", "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::vector<double> losses(const fs::path& run) {
  std::vector<double> out;
  for (const auto& r : read_metrics(run / "metrics.jsonl"))
    if (r.contains("loss")) out.push_back(r["loss"].get<double>());
  return out;
}

bool wait_for(const std::function<bool()>& cond, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

TEST(Trainer, KilledRunResumesBitIdentical) {
  const fs::path straight = fixture().dir / "straight", resumed = fixture().dir / "resumed";
  const std::string steps = "train.max_steps=40";
  RunResult a = run_train({"output.dir=" + straight.string(), "resume=none", steps});
  ASSERT_EQ(a.status, 0) << a.output;
  // Second run: SIGKILL once checkpoint-4 exists (mid-run), then resume from it.
  pid_t pid = spawn_train({"output.dir=" + resumed.string(), "resume=none", steps});
  ASSERT_TRUE(wait_for([&] { return fs::exists(resumed / "checkpoint-4"); }, 120));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  RunResult b = run_train({"output.dir=" + resumed.string(), "resume=auto", steps});
  ASSERT_EQ(b.status, 0) << b.output;
  const size_t at = b.output.find(" at step ");
  ASSERT_NE(at, std::string::npos) << b.output;
  const int resumed_at = std::stoi(b.output.substr(at + 9));
  ASSERT_LT(resumed_at, 40) << "the kill landed after the run had finished: nothing was resumed";
  std::vector<double> la = losses(straight), lb = losses(resumed);
  ASSERT_EQ(la.size(), 40u);
  ASSERT_EQ(lb.size(), 40u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;  // bit-identical
}

TEST(Trainer, SigtermSavesAndExitsCleanly) {
  const fs::path run = fixture().dir / "sigterm";
  pid_t pid = spawn_train({"output.dir=" + run.string(), "resume=none", "train.max_steps=100000",
                           "output.save_every=100000"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(run / "metrics.jsonl") && losses(run).size() >= 2; }, 120));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto ckpts = list_checkpoints(run);
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_GE(ckpts[0].first, 2);
  EXPECT_TRUE(fs::exists(ckpts[0].second / "optimizer.safetensors"));
}

TEST(Trainer, NonFiniteStepsAreSkippedThenStop) {
  RunResult r = run_train({"output.dir=" + (fixture().dir / "nan").string(), "resume=none", "train.lr=1e30",
                           "train.min_lr=0", "train.warmup_steps=0", "train.grad_clip=0", "train.max_bad_steps=3"});
  EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
  EXPECT_NE(r.output.find("3 consecutive steps with non-finite loss or gradients"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("update skipped"), std::string::npos) << r.output;
}

TEST(Trainer, HeldOutLossDecreases) {
  const fs::path run = fixture().dir / "learn";
  RunResult r = run_train({"output.dir=" + run.string(), "resume=none", "train.max_steps=60", "train.eval_every=60",
                           "train.lr=1e-2", "train.min_lr=1e-3", "train.micro_batch=8", "data.seq_len=64"});
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<double> eval;
  for (const auto& rec : read_metrics(run / "metrics.jsonl"))
    if (rec.contains("eval_loss")) eval.push_back(rec["eval_loss"].get<double>());
  ASSERT_GE(eval.size(), 2u);
  EXPECT_LT(eval.back(), eval.front() - 0.5) << r.output;
}

TEST(Trainer, BadRecipesFailBeforeTraining) {
  RunResult r = run_train({"output.dir=" + (fixture().dir / "bad").string(), "init_from=/nonexistent/ckpt"});
  EXPECT_EQ(WEXITSTATUS(r.status), 2);
  EXPECT_NE(r.output.find("init_from: no checkpoint at '/nonexistent/ckpt'"), std::string::npos) << r.output;
  r = run_train({"data.tokenizer=/nonexistent/tok"});
  EXPECT_EQ(WEXITSTATUS(r.status), 2);
  EXPECT_NE(r.output.find("/nonexistent/tok"), std::string::npos) << r.output;
  r = run_train({"train.max_step=3"});
  EXPECT_NE(r.output.find("did you mean"), std::string::npos) << r.output;
  r = run_train({"output.dir=" + (fixture().dir / "bad").string(), "train.dtype=bf16"});
  EXPECT_EQ(WEXITSTATUS(r.status), 2);
  EXPECT_NE(r.output.find("bf16 needs train.device: cuda"), std::string::npos) << r.output;
#ifndef STEPWISE_HAS_CUDA
  r = run_train({"output.dir=" + (fixture().dir / "bad").string(), "train.device=cuda"});
  EXPECT_EQ(WEXITSTATUS(r.status), 2);
  EXPECT_NE(r.output.find("this build has no CUDA backend"), std::string::npos) << r.output;
#endif
}
