// Tests of checkpoint directories: contents, keep_last pruning, latest detection, and a process SIGKILLed while
// saving leaves the previous checkpoint intact and no partial checkpoint visible.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "ckpt/checkpoint.h"

using namespace stepwise;

namespace {
CheckpointContents contents(const std::vector<float>& w, int64_t step) {
  CheckpointContents c;
  c.config = {{"hidden_size", 4}};
  c.model = {{"w", DType::f32, {static_cast<int64_t>(w.size())}, w.data()}};
  c.optimizer = {{"w.exp_avg", DType::f32, {static_cast<int64_t>(w.size())}, w.data()}};
  c.trainer_state = {{"step", step}};
  c.extra_files = {{"recipe.yaml", "stage: pretrain\n"}};
  return c;
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("stepwise_ckpt_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST(Checkpoint, SaveListPrune) {
  fs::path run = fresh_dir("prune");
  std::vector<float> w = {1, 2, 3};
  for (int step : {10, 20, 30}) save_checkpoint(run, step, contents(w, step), 2);
  auto all = list_checkpoints(run);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 20);
  EXPECT_EQ(all[1].first, 30);
  fs::path last = *latest_checkpoint(run);
  EXPECT_EQ(last.filename(), "checkpoint-30");
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json", "recipe.yaml"})
    EXPECT_TRUE(fs::exists(last / f)) << f;
  std::vector<float> back(3);
  SafetensorsFile::open(last / "model.safetensors").read_f32("w", {3}, back.data());
  EXPECT_EQ(back, w);
  save_checkpoint(run, 30, contents({7, 8, 9}, 30), 2);  // re-saving the same step replaces it
  SafetensorsFile::open(last / "model.safetensors").read_f32("w", {3}, back.data());
  EXPECT_EQ(back, (std::vector<float>{7, 8, 9}));
  fs::remove_all(run);
}

TEST(Checkpoint, KillDuringSaveKeepsPreviousCheckpoint) {
  fs::path run = fresh_dir("kill");
  std::vector<float> small = {1, 2, 3};
  save_checkpoint(run, 1, contents(small, 1), 0);
  int killed_mid_save = 0;  // attempts where the kill left a partial (temporary) checkpoint behind
  for (int attempt = 0; attempt < 3; ++attempt) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // child: save large checkpoints forever (each ~64 MB of model + optimizer)
      std::vector<float> big(8 << 20, 0.5f);
      for (int64_t step = 1000;; ++step) save_checkpoint(run, step, contents(big, step), 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 150 * attempt));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    for (const auto& e : fs::directory_iterator(run))
      killed_mid_save += e.path().filename().string().rfind(".tmp-checkpoint-", 0) == 0;
    // Every visible checkpoint is complete and readable; the first one is untouched.
    for (const auto& [step, dir] : list_checkpoints(run)) {
      auto st = SafetensorsFile::open(dir / "model.safetensors");
      EXPECT_TRUE(fs::exists(dir / "trainer_state.json")) << dir;
      EXPECT_EQ(st.at("w").numel(), step == 1 ? 3 : (8 << 20)) << dir;
    }
    std::vector<float> back(3);
    SafetensorsFile::open(run / "checkpoint-1" / "model.safetensors").read_f32("w", {3}, back.data());
    EXPECT_EQ(back, small);
    for (const auto& [step, dir] : list_checkpoints(run))
      if (step != 1) fs::remove_all(dir);
  }
  EXPECT_GT(killed_mid_save, 0) << "no kill landed inside a save: the test did not exercise what it should";
  // The next save cleans up what the killed saves left behind.
  save_checkpoint(run, 2, contents(small, 2), 0);
  for (const auto& e : fs::directory_iterator(run))
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  fs::remove_all(run);
}
