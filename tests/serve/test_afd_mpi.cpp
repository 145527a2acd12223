// The MPI transport of Attention-FFN disaggregation, run for real: `mpirun -np 2` of afd_mpi_driver (rank 0: engine
// with transport mpi, rank 1: the FFN rank) must decode exactly what the in-process AFD engine (3 micro-batches) and
// the engine without disaggregation decode, each rank holding only its side's weights; FFN-side errors come back as
// results; bad set-ups fail with clear errors.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "model/param_table.h"
#include "serve/afd/mpi_transport.h"
#include "serve_fixture.h"

namespace stepwise::test {
namespace {

constexpr int64_t kMaxTokens = 8;
constexpr size_t kPrompts = 6;

bool have_mpirun() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((fs::path(dir) / "mpirun").c_str(), X_OK) == 0) return true;
  return false;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct MpiRun {
  int exit_code = -1;
  std::string log;    // stdout + stderr of mpirun and both ranks
};

// Runs the driver under mpirun with a 90 s limit (timeout(1) kills a hung job: exit code 124).
MpiRun run_driver(int ranks, const std::string& driver_args, const std::string& env = "") {
  const fs::path log = serve_scratch("mpi") / cat("mpirun_", ranks, "_", std::hash<std::string>{}(driver_args + env),
                                                  ".log");
  const std::string command = cat(env, env.empty() ? "" : " ", "timeout 90 mpirun -np ", ranks,
                                  " --oversubscribe --allow-run-as-root ", AFD_MPI_DRIVER, " ", driver_args, " > ",
                                  log.string(), " 2>&1");
  const int status = std::system(command.c_str());
  MpiRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.log = read_text(log);
  return r;
}

std::vector<std::vector<int32_t>> prompts() {
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  std::vector<std::vector<int32_t>> out;
  for (size_t i = 0; i < kPrompts; ++i) out.push_back(test_prompt(tok, i * 2 + 1));
  return out;
}

// "<finish_reason> <tokens...>" per request, as the driver writes them.
std::vector<std::string> decode_in_process(const std::string& transport) {
  EngineOptions o = tiny_options();
  o.transport = transport;
  o.micro_batches = 3;
  Engine engine(o);
  std::vector<GenerationRequest> requests;
  for (const std::vector<int32_t>& p : prompts()) requests.push_back(greedy_request(p, kMaxTokens));
  std::vector<std::string> lines;
  for (const Collected& c : run_all(engine, requests)) {
    std::string line = c.finish_reason;
    for (int32_t t : c.tokens) line += cat(" ", t);
    lines.push_back(line);
  }
  return lines;
}

// log: when given, receives mpirun's output (both ranks).
std::vector<std::string> decode_under_mpirun(const std::string& env, std::string* log = nullptr) {
  const fs::path dir = serve_scratch("mpi");
  const fs::path prompt_file = dir / "prompts.txt", out = dir / cat("tokens", env.empty() ? "" : "_serialised", ".txt");
  {
    std::ofstream f(prompt_file);
    for (const std::vector<int32_t>& p : prompts()) {
      for (int32_t t : p) f << t << ' ';
      f << '\n';
    }
  }
  fs::remove(out);
  const MpiRun run = run_driver(2,
                                cat("--mode decode --model ", tiny_checkpoint().string(), " --prompts ",
                                    prompt_file.string(), " --out ", out.string(), " --max-tokens ", kMaxTokens,
                                    " --micro-batches 3"),
                                env);
  EXPECT_EQ(run.exit_code, 0) << run.log;
  if (log) *log = run.log;
  std::vector<std::string> lines;
  std::istringstream in(read_text(out));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

#define SKIP_WITHOUT_MPIRUN() \
  if (!have_mpirun()) GTEST_SKIP() << "mpirun is not on PATH (install openmpi-bin)"

TEST(AfdMpi, TwoProcessesDecodeExactlyAsInProcessAndWithoutAfd) {
  SKIP_WITHOUT_MPIRUN();
  const std::vector<std::string> inproc = decode_in_process("inproc");
  const std::vector<std::string> local = decode_in_process("local");
  std::string log;
  const std::vector<std::string> mpi = decode_under_mpirun("", &log);
  ASSERT_EQ(inproc.size(), kPrompts);
  EXPECT_EQ(inproc, local);
  EXPECT_EQ(mpi, inproc);
  for (const std::string& line : mpi) EXPECT_EQ(line.rfind("length ", 0), 0u) << line;   // 8 tokens, no error

  // the attention rank holds only the attention side's weights; the FFN rank the rest
  const Step3Config cfg = Step3Config::load(tiny_checkpoint());
  const int64_t attention = ParamTable<float>(cfg, false, false, ParamSide::attention).num_params();
  const int64_t all = ParamTable<float>(cfg, false).num_params();
  ASSERT_LT(attention, all);
  EXPECT_NE(log.find(cat("attention rank weight bytes: ", attention * 4, "\n")), std::string::npos) << log;
  EXPECT_NE(log.find(cat(all - attention, " FFN-side parameters")), std::string::npos) << log;
  // the FFN rank's wait times reach rank 0's metrics with its results
  const std::string wait_tag = "ffn wait seconds on rank 0: ";
  const size_t at = log.find(wait_tag);
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GT(std::stod(log.substr(at + wait_tag.size())), 0.0) << log;
}

TEST(AfdMpi, SerialisedMpiCallsDecodeTheSame) {   // the path taken when MPI_THREAD_MULTIPLE is not granted
  SKIP_WITHOUT_MPIRUN();
  EXPECT_EQ(decode_under_mpirun("STEPWISE_MPI_SERIALIZED=1"), decode_in_process("local"));
}

TEST(AfdMpi, FfnRankAnswersBadWorkWithAnErrorAndComputesLayersExactly) {
  SKIP_WITHOUT_MPIRUN();
  const fs::path out = serve_scratch("mpi") / "ffn_check.txt";
  fs::remove(out);
  const MpiRun run = run_driver(2, cat("--mode ffn-check --model ", tiny_checkpoint().string(), " --out ",
                                       out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const std::string text = read_text(out);
  EXPECT_NE(text.find("malformed: error FFN work of layer 0: hidden holds 32 values, expected 96"), std::string::npos)
      << text;
  EXPECT_NE(text.find("layer 0 dense: match"), std::string::npos) << text;
  EXPECT_NE(text.find("layer 1 moe: match"), std::string::npos) << text;
  EXPECT_NE(text.find("layer 2 moe: match"), std::string::npos) << text;
  EXPECT_EQ(text.find("MISMATCH"), std::string::npos) << text;
}

TEST(AfdMpi, WorldSizeOtherThanTwoFailsClearly) {
  SKIP_WITHOUT_MPIRUN();
  const MpiRun run = run_driver(1, cat("--mode decode --model ", tiny_checkpoint().string(), " --prompts /dev/null",
                                       " --out ", (serve_scratch("mpi") / "unused.txt").string()));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.log.find("needs exactly 2 MPI processes"), std::string::npos) << run.log;
}

TEST(AfdMpi, TransportMpiOutsideMpirunFailsClearly) {
  if (MpiSession::launched_by_mpirun()) GTEST_SKIP() << "this test process itself runs under mpirun";
  EngineOptions o = tiny_options();
  o.transport = "mpi";
  try {
    Engine engine(o);
    FAIL() << "an engine with transport mpi started without MPI";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mpirun -np 2"), std::string::npos) << e.what();
  }
  try {
    MpiSession session;
    FAIL() << "MPI initialised outside mpirun";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("started by mpirun"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stepwise::test
