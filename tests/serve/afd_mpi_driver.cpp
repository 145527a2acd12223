// Test driver run by test_afd_mpi under `mpirun -np 2`: rank 0 is the attention side, rank 1 the FFN rank
// (run_mpi_ffn_rank, as `stepwise serve --transport mpi` runs it). Modes:
//   decode     rank 0 builds an Engine with transport mpi, decodes the prompts of --prompts (one line of token ids
//              each) greedily and writes "<finish_reason> <tokens...>" per prompt to --out; prints the weight bytes
//              the attention rank holds and the FFN workers' wait time as rank 0 recorded it.
//   ffn-check  rank 0 drives the raw MpiTransport: a malformed work item (must come back as FfnResult.error), then a
//              dense and a MoE layer (must equal infer_ffn computed locally); writes one "name: verdict" line each.
#include <CLI/CLI.hpp>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "serve/afd/mpi_transport.h"
#include "serve/engine.h"
#include "serve/model_loader.h"

namespace stepwise {
namespace {

struct DriverArgs {
  std::string model, prompts, out, mode = "decode";
  int64_t max_tokens = 8, micro_batches = 3;
};

std::vector<std::vector<int32_t>> read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the prompts file");
  std::vector<std::vector<int32_t>> prompts;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<int32_t> ids;
    for (int32_t id; words >> id;) ids.push_back(id);
    if (!ids.empty()) prompts.push_back(std::move(ids));
  }
  return prompts;
}

void run_decode(const DriverArgs& a) {
  EngineOptions o;   // the serve tests' tiny_options()
  o.model_dir = a.model;
  o.transport = "mpi";
  o.kv_block_size = 4;
  o.kv_blocks = 256;
  o.prefill_chunk = 5;
  o.max_model_len = 256;
  o.micro_batches = a.micro_batches;
  const std::vector<std::vector<int32_t>> prompts = read_prompts(a.prompts);
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, std::vector<int32_t>> tokens;
  std::map<size_t, std::string> reasons;
  {
    Engine engine(o);
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationRequest r;
      r.prompt = prompts[i];
      r.sampling.temperature = 0;
      r.sampling.max_tokens = a.max_tokens;
      r.sampling.stop_at_eot = false;
      engine.submit(std::move(r), [&, i](const GenerationEvent& ev) {
        std::lock_guard<std::mutex> lock(mu);
        for (const TokenLogprob& t : ev.tokens) tokens[i].push_back(t.token);
        if (ev.finished) {
          reasons[i] = ev.finish_reason + (ev.error.empty() ? "" : " (" + ev.error + ")");
          cv.notify_all();
        }
        return true;
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return reasons.size() == prompts.size(); }))
        fail("decode: requests did not finish within 60 s");
    }
    const EngineMetrics m = engine.metrics();
    double ffn_wait = 0;
    for (double s : m.ffn_wait_seconds_per_layer) ffn_wait += s;
    std::printf("attention rank weight bytes: %lld\nffn wait seconds on rank 0: %.9f\n",
                static_cast<long long>(m.weight_bytes), ffn_wait);
  }   // the engine closes the MPI link: rank 1 returns from run_mpi_ffn_rank
  std::ofstream out(a.out);
  for (size_t i = 0; i < prompts.size(); ++i) {
    out << reasons[i];
    for (int32_t t : tokens[i]) out << ' ' << t;
    out << '\n';
  }
}

void run_ffn_check(const DriverArgs& a) {
  const ServingModel served = load_serving_model(a.model);
  const Step3Model<float>& model = *served.model;
  const Step3Config& cfg = model.config();
  const int64_t C = cfg.hidden_size, K = cfg.moe_top_k, n = 3;
  MpiTransport link(MpiTransport::Role::attention);
  link.await_ffn_ready(C, cfg.num_hidden_layers);
  std::ofstream out(a.out);

  FfnWork bad;   // hidden holds fewer than n * C values
  bad.layer = 0;
  bad.micro_batch = 7;
  bad.n = n;
  bad.hidden.assign(static_cast<size_t>(C), 0.5f);
  link.send_work(bad);
  const FfnResult bad_result = link.recv_result();
  out << "malformed: " << (bad_result.micro_batch == 7 && !bad_result.error.empty() ? "error " : "NO ERROR ")
      << bad_result.error << '\n';

  const std::vector<bool> moe = cfg.moe_layer_mask();
  for (int64_t layer = 0; layer < cfg.num_hidden_layers; ++layer) {
    FfnWork w;
    w.layer = layer;
    w.micro_batch = 1;
    w.n = n;
    for (int64_t i = 0; i < n * C; ++i) w.hidden.push_back(static_cast<float>(std::sin(0.37 * double(i + layer))));
    if (moe[static_cast<size_t>(layer)])
      for (int64_t i = 0; i < n * K; ++i) {
        w.ids.push_back(static_cast<int32_t>((i + layer) % cfg.moe_num_experts));
        w.weights.push_back(0.25f + 0.125f * static_cast<float>(i % K));
      }
    std::vector<float> expect(static_cast<size_t>(n * C));
    model.infer_ffn(layer, w.hidden.data(), w.ids.empty() ? nullptr : w.ids.data(),
                    w.weights.empty() ? nullptr : w.weights.data(), n, expect.data());
    link.send_work(w);
    const FfnResult r = link.recv_result();
    double worst = r.out.size() == expect.size() ? 0.0 : INFINITY;
    for (size_t i = 0; i < expect.size() && i < r.out.size(); ++i)
      worst = std::max(worst, std::fabs(double(r.out[i]) - double(expect[i])));
    out << "layer " << layer << (moe[static_cast<size_t>(layer)] ? " moe" : " dense") << ": "
        << (r.error.empty() && r.layer == layer && worst <= 1e-6 ? "match" : "MISMATCH") << " max_abs_diff " << worst
        << (r.error.empty() ? "" : " error " + r.error) << '\n';
  }
  link.close();
}

}  // namespace
}  // namespace stepwise

int main(int argc, char** argv) {
  stepwise::DriverArgs a;
  CLI::App app{"AFD MPI test driver (run under mpirun -np 2)"};
  app.add_option("--model", a.model)->required();
  app.add_option("--prompts", a.prompts);
  app.add_option("--out", a.out)->required();
  app.add_option("--mode", a.mode)->check(CLI::IsMember({"decode", "ffn-check"}));
  app.add_option("--max-tokens", a.max_tokens);
  app.add_option("--micro-batches", a.micro_batches);
  CLI11_PARSE(app, argc, argv);
  bool reported = false;
  try {
    stepwise::MpiSession mpi;
    try {
      if (mpi.rank() == 1 && mpi.size() == 2)
        stepwise::run_mpi_ffn_rank(a.model, 1);
      else if (a.mode == "decode")
        stepwise::run_decode(a);
      else
        stepwise::run_ffn_check(a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error (rank %d): %s\n", mpi.rank(), e.what());
      std::fflush(stderr);
      reported = true;
      throw;   // MpiSession's destructor aborts the job if the link to the other rank is still open
    }
  } catch (const std::exception& e) {
    if (!reported) std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
