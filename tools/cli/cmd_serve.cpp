// `stepwise serve --model DIR [--host 127.0.0.1] [--port 8000] [--attn-workers N] [--ffn-workers M]
// [--micro-batches K] [--device cpu|cuda] [--dtype bf16|fp32] [--api-key KEY] [--max-queue N] ...`: the
// OpenAI-compatible server (--device cuda: the whole model on one GPU, serve/cuda/cuda_step_model.h). It listens
// first (GET /health answers 503 while the model loads), then serves; SIGTERM/SIGINT stop accepting, let running
// requests finish (engine drain) and exit 0. `mpirun -np 2 stepwise serve ... --transport mpi`: rank 0 serves as
// above with the FFN on rank 1, which runs only the FFN workers until rank 0's engine closes the link.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "serve/afd/mpi_transport.h"
#include "serve/engine.h"
#include "serve/http/server.h"

namespace stepwise::cli {
namespace {

struct ServeArgs {
  EngineOptions engine;
  http::ServerOptions server;
  std::string host = "127.0.0.1";
  int port = 8000;
};

// SIGTERM / SIGINT only set this flag (any thread may receive them: BLAS and OpenMP threads exist before serve
// starts); a watcher thread acts on it.
std::atomic<int> received_shutdown_signal{0};

void on_shutdown_signal(int signal) { received_shutdown_signal = signal; }

void install_shutdown_handlers() {
  struct sigaction action {};
  action.sa_handler = on_shutdown_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

// Waits for SIGTERM/SIGINT (or `done`) and then stops the server from accepting.
void watch_shutdown_signals(http::HttpServer& server, const std::atomic<bool>& done) {
  while (!done.load()) {
    if (const int signal = received_shutdown_signal.load()) {
      log_info("serve: ", signal == SIGTERM ? "SIGTERM" : "SIGINT", ": no new connections; finishing running requests");
      server.stop();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void run_serve(const ServeArgs& args) {
  if (args.engine.model_dir.empty()) fail("--model is required");
  install_shutdown_handlers();
  http::HttpServer server(args.server);
  const int port = server.bind(args.host, args.port);
  std::printf("stepwise serve: listening on http://%s:%d\n", args.host.c_str(), port);
  std::fflush(stdout);
  std::atomic<bool> done{false};
  std::thread serving([&server] { server.serve(); });
  std::thread signal_watcher([&] { watch_shutdown_signals(server, done); });
  const auto shut_down = [&] {
    done = true;
    server.stop();
    serving.join();
    signal_watcher.join();
  };
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(args.engine);
  } catch (...) {
    shut_down();
    throw;
  }
  server.attach(*engine);
  log_info("serve: model '", engine->model_name(), "' ready (context ", engine->max_model_len(), " tokens)");
  serving.join();  // returns after a signal stopped the server and the accepted requests were answered
  done = true;
  signal_watcher.join();
  engine->drain();
  log_info("serve: drained; exiting");
}

// Under mpirun: rank 1 is the FFN side (it ignores SIGTERM/SIGINT and ends when rank 0's engine closes the link),
// rank 0 the server. MPI lives as long as this function.
void run_serve_mpi(const ServeArgs& args) {
  if (args.engine.model_dir.empty()) fail("--model is required");
  MpiSession mpi;
  if (mpi.size() != 2)
    fail("--transport mpi needs exactly 2 MPI processes (rank 0: attention + HTTP, rank 1: FFN), got ", mpi.size(),
         ": run `mpirun -np 2 stepwise serve ... --transport mpi`");
  try {
    if (mpi.rank() == 0) {
      run_serve(args);
      return;
    }
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    run_mpi_ffn_rank(args.engine.model_dir, args.engine.ffn_workers);
  } catch (const std::exception& e) {
    // leaving with the link open aborts the whole job before main() could print the error: say it here
    if (mpi.aborts_on_unwind()) std::fprintf(stderr, "error (MPI rank %d): %s\n", mpi.rank(), e.what());
    throw;
  }
}

}  // namespace

void register_serve_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server over the decoding engine");
  auto args = std::make_shared<ServeArgs>();
  auto model = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "checkpoint directory (training, serving or HF layout)")->required();
  cmd->add_option("--host", args->host, "address to bind (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", args->port, "port (default 8000; 0: any free port, printed on stdout)");
  cmd->add_option("--attn-workers", args->engine.attn_workers, "attention workers (default 1)");
  cmd->add_option("--ffn-workers", args->engine.ffn_workers, "FFN workers (default 1)");
  cmd->add_option("--micro-batches", args->engine.micro_batches, "AFD ping-pong micro-batches per step (default 3)");
  cmd->add_option("--transport", args->engine.transport,
                  "AFD transport: inproc | local | mpi (under mpirun -np 2; default inproc)");
  cmd->add_option("--device", args->engine.device,
                  "cpu (default: AFD over threads/MPI) or cuda (attention and FFN on one GPU; needs a CUDA build)");
  cmd->add_option("--dtype", args->engine.dtype, "--device cuda: bf16 weights and activations (default) or fp32");
  cmd->add_option("--max-queue", args->engine.max_queue, "waiting requests at most; more get HTTP 429 (default 256)");
  cmd->add_option("--max-running", args->engine.max_running, "sequences in the running batch at most (default 64)");
  cmd->add_option("--max-model-len", args->engine.max_model_len, "context length (default: the model's)");
  cmd->add_option("--kv-block-size", args->engine.kv_block_size, "tokens per KV block (default 16)");
  cmd->add_option("--kv-blocks", args->engine.kv_blocks, "KV blocks in the pool (default: sized from the context)");
  cmd->add_option("--prefill-chunk", args->engine.prefill_chunk, "prompt tokens per sequence per step (default 256)");
  cmd->add_option("--seed", args->engine.seed, "sampling seed of requests without their own (default 0)");
  cmd->add_option("--api-key", args->server.api_key, "require 'Authorization: Bearer KEY' on the API");
  cmd->add_option("--http-threads", args->server.http_threads, "connections served at once (default 64)");
  cmd->add_option("--served-model-name", args->server.model_name, "model name of the API (default: the directory's)");
  cmd->callback([args, model] {
    ServeArgs run = *args;
    run.engine.model_dir = *model;
    if (run.engine.transport == "mpi")
      run_serve_mpi(run);
    else
      run_serve(run);
  });
}

}  // namespace stepwise::cli
