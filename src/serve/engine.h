// The decoding engine: the library the HTTP server (and eval, and tests) talk to. One engine thread owns all model
// state: it admits requests into a continuously batched running set (requests join and leave every step), prefills in
// chunks, decodes with a paged KV cache, samples, applies stop conditions and streams events back through callbacks.
// On the CPU, attention and FFN run on separate workers (AFD) connected by a Transport; with device "cuda" the whole
// step runs on one GPU (serve/cuda/cuda_step_model.h; AFD across GPUs needs NCCL, a later issue). No HTTP here.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

class Tokenizer;
struct ServingModel;

struct SamplingParams {
  double temperature = 1.0;        // 0 = greedy
  int64_t top_k = 0;               // 0 = off
  double top_p = 1.0;              // 1 = off
  std::optional<uint64_t> seed;    // fixes this request's sampling stream; unset: drawn from the engine's seed
  int64_t max_tokens = 16;         // generated tokens at most
  std::vector<std::string> stop;   // stop strings (not included in the output text)
  bool stop_at_eot = true;         // the tokenizer's end-of-turn token ends generation (finish_reason "stop")
  int64_t logprobs = 0;            // top-n alternatives per generated token (0: only the chosen token's logprob)
  bool prompt_logprobs = false;    // also report log p(prompt token | prefix) for every prompt token but the first
};

struct GenerationRequest {
  std::vector<int32_t> prompt;     // token ids (the HTTP layer renders chat with the library's chat template)
  SamplingParams sampling;
};

struct TokenLogprob {
  int32_t token = 0;
  double logprob = 0;
  std::vector<std::pair<int32_t, double>> top;  // top-n alternatives, most likely first
};

// One streamed event. The first event of a request carries prompt_logprobs (when asked); every event carries the
// newly generated tokens and their text delta; the last has finished = true and a finish_reason.
struct GenerationEvent {
  uint64_t request_id = 0;
  std::vector<TokenLogprob> prompt_logprobs;   // (prompt length - 1) entries, first event only
  std::vector<TokenLogprob> tokens;            // new tokens of this event
  std::string text;                            // their text (stop strings removed, UTF-8 complete)
  bool finished = false;
  std::string finish_reason;                   // "stop" | "length" | "cancelled" | "error"
  std::string error;                           // set when finish_reason == "error"
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// Return false to cancel the request (e.g. the client disconnected); its KV blocks are freed at once.
using EventCallback = std::function<bool(const GenerationEvent&)>;

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EngineOptions {
  fs::path model_dir;              // a training, serving or HF-layout checkpoint directory
  // Already loaded instead of model_dir (bench decode shares one model across engines; model_dir then only names
  // it). A model without a tokenizer (tokenizer.vocab_size() 0: random weights from a config) streams token ids
  // only: no text, no end of turn, no stop strings.
  std::shared_ptr<ServingModel> model;
  std::string device = "cpu";      // cpu | cuda (the whole step on one GPU; transport, ffn_workers and micro_batches
                                   // do not apply); cuda fails clearly without a CUDA build or a device
  std::string dtype = "bf16";      // device cuda: bf16 (weights and activations) | fp32 (checks against the CPU)
  int64_t attn_workers = 1;        // attention workers (data-parallel, each with its own KV cache)
  int64_t ffn_workers = 1;         // FFN workers (experts split across them)
  int64_t micro_batches = 3;       // ping-pong micro-batches per step
  std::string transport = "inproc";// inproc (AFD over threads) | local (no AFD: FFN inline) | mpi (rank 1
                                   // of `mpirun -np 2` runs the FFN: mpi_transport.h; needs a live MpiSession)
  int64_t kv_block_size = 16;      // tokens per KV block
  int64_t kv_blocks = 0;           // blocks in the pool; 0: sized from max_model_len x max_running (at most 1 GiB
                                   // of K+V on the CPU, 16 GiB on the GPU)
  int64_t max_running = 64;        // sequences in the running batch at most
  int64_t max_queue = 256;         // waiting requests at most; more -> QueueFull (HTTP 429)
  int64_t prefill_chunk = 256;     // prompt tokens per sequence per step (chunked prefill)
  int64_t max_model_len = 0;       // 0: the config's max_position_embedding
  uint64_t seed = 0;
};

struct EngineMetrics {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t weight_bytes = 0;                         // fp32 weights this process holds (transport mpi: the attention
                                                    // side only; the FFN rank holds the rest)
  int64_t prompt_tokens_total = 0, generation_tokens_total = 0, requests_total = 0;
  std::vector<double> ttft_seconds;                 // recent samples (the HTTP layer turns them into histograms)
  std::vector<double> itl_seconds;                  // inter-token latencies, recent samples
  std::vector<double> attn_wait_seconds_per_layer;  // AFD: time attention waited on FFN results, per layer (total)
  std::vector<double> ffn_wait_seconds_per_layer;   // AFD: time FFN workers waited for work, per layer (total)
};

class Engine {
 public:
  explicit Engine(const EngineOptions& options);   // loads the checkpoint and tokenizer; throws Error on bad input
  ~Engine();                                       // stops the engine thread (cancelling what runs)
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Error unless device "cuda" can run here (a CUDA build and a device); the constructor checks it before loading.
  static void check_cuda_available();

  const Tokenizer& tokenizer() const;              // Error for a model without a tokenizer (see EngineOptions::model)
  std::string model_name() const;                  // the checkpoint directory's name
  int64_t max_model_len() const;

  // Validates (std::invalid_argument: empty prompt, prompt + max_tokens beyond max_model_len, bad sampling values)
  // and queues the request; QueueFull when max_queue requests are already waiting. Events arrive on the engine
  // thread; the callback must not block for long.
  uint64_t submit(GenerationRequest request, EventCallback on_event);
  void cancel(uint64_t request_id);

  EngineMetrics metrics() const;
  // Stops admitting new requests (submit throws QueueFull), lets running and waiting ones finish, then returns.
  void drain();
  bool ready() const;                              // loaded and accepting

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepwise
