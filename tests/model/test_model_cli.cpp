// `stepwise model info` through the real binary: Step-3's headline numbers, and a config error's exit code and message.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// Runs a shell command, returns its exit code and (stdout + stderr).
int run(const std::string& command, std::string* output) {
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) output->append(buf.data(), n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ModelInfoCli, Step3NumbersAndFormula) {
  std::string out;
  const std::string config = std::string(STEPWISE_SOURCE_DIR) + "/recipes/models/step3.yaml";
  ASSERT_EQ(run(std::string(STEPWISE_BINARY) + " model info " + config + " --seq 4096", &out), 0) << out;
  EXPECT_NE(out.find("(316.29B)"), std::string::npos) << out;
  EXPECT_NE(out.find("(38.84B;"), std::string::npos) << out;
  EXPECT_NE(out.find("31232 (fp8)"), std::string::npos) << out;
  EXPECT_NE(out.find("6 x active non-embedding + 6 x lm_head"), std::string::npos) << out;
}

TEST(ModelInfoCli, UnknownKeyIsAnErrorWithSuggestion) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "stepwise_test_bad_model.yaml";
  std::ifstream in(std::string(STEPWISE_SOURCE_DIR) + "/recipes/models/step3-tiny.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text += "rope_thetta: 10000\n";
  std::ofstream(path) << text;
  std::string out;
  EXPECT_EQ(run(std::string(STEPWISE_BINARY) + " model info " + path.string(), &out), 2) << out;
  EXPECT_NE(out.find("unknown model config key 'rope_thetta'; did you mean 'rope_theta'?"), std::string::npos) << out;
  std::filesystem::remove(path);
}

}  // namespace
