// Engine: the engine thread (scheduler + attention side), the FFN worker threads and the request life cycle:
// submit -> waiting (FIFO, max_queue) -> admitted when a running slot and KV blocks for prompt + max_tokens are free
// -> chunked prefill mixed with decodes, one step at a time -> sampled, detokenised, streamed -> finished or
// cancelled (blocks freed at once). Blocks are reserved up front, so a running request never runs out of cache.
// The step itself runs on the AttentionWorker (CPU, AFD) or on the CudaStepModel (device cuda).
#include "serve/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "serve/afd/attention_worker.h"
#include "serve/afd/ffn_worker.h"
#include "serve/afd/mpi_transport.h"
#include "serve/kv_pool.h"
#include "serve/model_loader.h"
#include "serve/sampler.h"
#include "serve/text_stream.h"

#ifdef STEPWISE_HAS_CUDA
#include "cuda/device.h"
#include "serve/cuda/cuda_step_model.h"
#endif

namespace stepwise {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kRecentSamples = 4096;            // ttft / itl samples kept for the metrics endpoint
constexpr int64_t kAutoPoolBytes = int64_t(1) << 30;       // kv_blocks = 0: at most this much K+V memory (CPU)
constexpr int64_t kAutoPoolBytesGpu = int64_t(16) << 30;   // the same on the GPU

uint64_t mix_seed(uint64_t engine_seed, uint64_t request_id) {   // splitmix64 of the pair
  uint64_t z = engine_seed + 0x9E3779B97F4A7C15ull * (request_id + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void push_sample(std::vector<double>& v, double x) {
  if (v.size() >= kRecentSamples) v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(kRecentSamples / 2));
  v.push_back(x);
}

struct Sequence {
  uint64_t id = 0;
  GenerationRequest request;
  EventCallback on_event;
  std::vector<int32_t> tokens;      // prompt, then generated tokens
  int64_t prompt_len = 0;
  int64_t cached = 0;               // tokens in the KV cache
  int64_t generated = 0;
  std::vector<int32_t> blocks;      // reserved on admission
  std::mt19937_64 rng;
  std::unique_ptr<TextStream> text;
  std::vector<TokenLogprob> prompt_logprobs;
  bool sent_first = false;
  Clock::time_point submitted, last_token;
};

}  // namespace

struct Engine::Impl {
  EngineOptions opt;
  std::shared_ptr<ServingModel> served;
  bool has_tokenizer = true;            // false: events carry token ids only (no text, no end of turn)
  int64_t max_len = 0;
  std::unique_ptr<KvPool> pool;
  std::unique_ptr<AfdStats> stats;
  std::unique_ptr<Transport> transport;
  std::vector<std::unique_ptr<FfnWorker>> ffn_workers;
  std::unique_ptr<AttentionWorker> attention;   // device cpu
  std::shared_ptr<void> gpu_model;              // device cuda: the CudaStepModel (type-erased: CPU builds lack it)
  std::function<std::vector<float>(const std::vector<StepSeq>&)> forward;   // one step on either

  mutable std::mutex mu;                // guards everything below up to the engine thread
  std::condition_variable wake, idle;
  std::deque<std::unique_ptr<Sequence>> waiting;
  std::set<uint64_t> cancels;
  bool stopping = false, draining = false;
  int64_t running_count = 0;
  EngineMetrics m;                      // counters (the per-layer waits are read from stats)
  std::atomic<uint64_t> next_id{1};

  std::vector<std::unique_ptr<Sequence>> running;   // engine thread only
  std::thread thread;

  void loop();
  void step();
  void admit();
  void apply_cancels();
  // Sends an event; false when the client cancelled (callback returned false or threw).
  static bool send(Sequence& s, GenerationEvent& ev);
  void finish(Sequence& s, GenerationEvent& ev, const std::string& reason);
  void release(Sequence& s) {
    std::lock_guard<std::mutex> lock(mu);
    pool->release(s.blocks);
  }
  void publish();
};

bool Engine::Impl::send(Sequence& s, GenerationEvent& ev) {
  ev.request_id = s.id;
  ev.prompt_tokens = s.prompt_len;
  ev.completion_tokens = s.generated;
  try {
    return s.on_event(ev);
  } catch (...) {
    return false;
  }
}

void Engine::Impl::finish(Sequence& s, GenerationEvent& ev, const std::string& reason) {
  ev.finished = true;
  ev.finish_reason = reason;
  release(s);
  send(s, ev);
}

void Engine::Impl::apply_cancels() {
  std::set<uint64_t> ids;
  std::vector<std::unique_ptr<Sequence>> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu);
    ids.swap(cancels);
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (stopping || ids.count((*it)->id)) {
        cancelled.push_back(std::move(*it));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = running.begin(); it != running.end();) {
    if (stopping || ids.count((*it)->id)) {
      cancelled.push_back(std::move(*it));
      it = running.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& s : cancelled) {
    GenerationEvent ev;
    finish(*s, ev, "cancelled");
  }
}

void Engine::Impl::admit() {
  std::lock_guard<std::mutex> lock(mu);
  while (!waiting.empty() && static_cast<int64_t>(running.size()) < opt.max_running) {
    Sequence& s = *waiting.front();
    const int64_t need = pool->blocks_for(s.prompt_len + s.request.sampling.max_tokens);
    std::vector<int32_t> blocks = pool->allocate(need);
    if (blocks.empty() && need > 0) break;   // FIFO: the head waits for blocks, the rest wait behind it
    s.blocks = std::move(blocks);
    running.push_back(std::move(waiting.front()));
    waiting.pop_front();
  }
  running_count = static_cast<int64_t>(running.size());
}

void Engine::Impl::publish() {
  std::lock_guard<std::mutex> lock(mu);
  running_count = static_cast<int64_t>(running.size());
  idle.notify_all();
}

void Engine::Impl::step() {
  const int64_t V = served->model->config().vocab_size;
  std::vector<StepSeq> batch;
  batch.reserve(running.size());
  for (auto& sp : running) {
    Sequence& s = *sp;
    StepSeq q;
    q.pos0 = s.cached;
    q.blocks = &s.blocks;
    if (s.cached < s.prompt_len) {
      q.n = std::min(opt.prefill_chunk, s.prompt_len - s.cached);
      q.all_logits = s.request.sampling.prompt_logprobs;
    } else {
      q.n = 1;   // the last sampled token, not cached yet
    }
    q.tokens = s.tokens.data() + s.cached;
    batch.push_back(q);
  }
  std::vector<float> logits;
  try {
    logits = forward(batch);
  } catch (const std::exception& e) {
    log_warn("engine step failed: ", e.what());
    for (auto& s : running) {
      GenerationEvent ev;
      ev.error = e.what();
      finish(*s, ev, "error");
    }
    running.clear();
    return;
  }

  int64_t row = 0, prompt_tokens = 0, gen_tokens = 0;
  std::vector<double> ttft, itl;
  std::vector<size_t> done;
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence& s = *running[i];
    const StepSeq& q = batch[i];
    const SamplingParams& sp = s.request.sampling;
    const bool prefill = s.cached < s.prompt_len;
    if (q.all_logits)
      for (int64_t r = 0; r < q.n; ++r) {
        const int64_t target = s.cached + r + 1;
        if (target < s.prompt_len)
          s.prompt_logprobs.push_back(token_logprob(logits.data() + (row + r) * V, V,
                                                    s.tokens[static_cast<size_t>(target)], sp.logprobs));
      }
    const float* last = logits.data() + (row + (q.all_logits ? q.n - 1 : 0)) * V;
    row += q.all_logits ? q.n : 1;
    s.cached += q.n;
    if (prefill) prompt_tokens += q.n;
    if (s.cached < s.prompt_len) continue;   // more prompt chunks to go

    const int32_t token = sample_token(last, V, sp, s.rng);
    GenerationEvent ev;
    ev.tokens.push_back(token_logprob(last, V, token, sp.logprobs));
    s.tokens.push_back(token);
    ++s.generated;
    ++gen_tokens;
    const Clock::time_point now = Clock::now();
    if (!s.sent_first) {
      ttft.push_back(std::chrono::duration<double>(now - s.submitted).count());
      ev.prompt_logprobs = std::move(s.prompt_logprobs);
      s.sent_first = true;
    } else {
      itl.push_back(std::chrono::duration<double>(now - s.last_token).count());
    }
    s.last_token = now;
    std::string reason;
    const bool at_length = s.generated >= sp.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_len;
    if (!s.text) {   // no tokenizer: token ids only
      if (at_length) reason = "length";
    } else if (sp.stop_at_eot && token == served->tokenizer.eot()) {
      reason = "stop";
      ev.text = s.text->flush();
    } else {
      ev.text = s.text->push(token);
      if (s.text->stopped()) {
        reason = "stop";
      } else if (at_length) {
        reason = "length";
        ev.text += s.text->flush();
      }
    }
    if (!reason.empty()) {
      finish(s, ev, reason);
      done.push_back(i);
    } else if (!send(s, ev)) {
      release(s);   // the client went away: free its blocks at once
      done.push_back(i);
    }
  }
  for (auto it = done.rbegin(); it != done.rend(); ++it)
    running.erase(running.begin() + static_cast<std::ptrdiff_t>(*it));
  std::lock_guard<std::mutex> lock(mu);
  m.prompt_tokens_total += prompt_tokens;
  m.generation_tokens_total += gen_tokens;
  for (double x : ttft) push_sample(m.ttft_seconds, x);
  for (double x : itl) push_sample(m.itl_seconds, x);
}

void Engine::Impl::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      wake.wait(lock, [&] { return stopping || !waiting.empty() || !running.empty() || !cancels.empty(); });
    }
    apply_cancels();
    bool stop_now;
    {
      std::lock_guard<std::mutex> lock(mu);
      stop_now = stopping;
    }
    if (stop_now) {
      publish();
      return;
    }
    admit();
    if (!running.empty()) step();
    publish();
  }
}

Engine::Engine(const EngineOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.opt = options;
  const EngineOptions& o = im.opt;
  // mpi: open the link to the FFN rank first, so that any failure below closes it and the FFN rank exits too
  MpiTransport* mpi = nullptr;
  if (o.transport == "mpi") {
    auto t = std::make_unique<MpiTransport>(MpiTransport::Role::attention);
    mpi = t.get();
    im.transport = std::move(t);
  }
  auto require = [](bool ok, const char* field, int64_t value, const char* rule) {
    if (!ok) fail("EngineOptions.", field, " = ", value, ": ", rule);
  };
  require(o.attn_workers == 1, "attn_workers", o.attn_workers,
          "only one attention worker is supported (data-parallel attention workers are not implemented yet)");
  require(o.ffn_workers >= 1, "ffn_workers", o.ffn_workers, "must be at least 1");
  require(o.micro_batches >= 1, "micro_batches", o.micro_batches, "must be at least 1");
  require(o.kv_block_size >= 1, "kv_block_size", o.kv_block_size, "must be at least 1");
  require(o.kv_blocks >= 0, "kv_blocks", o.kv_blocks, "must be >= 0 (0: sized automatically)");
  require(o.max_running >= 1, "max_running", o.max_running, "must be at least 1");
  require(o.max_queue >= 0, "max_queue", o.max_queue, "must be >= 0");
  require(o.prefill_chunk >= 1, "prefill_chunk", o.prefill_chunk, "must be at least 1");
  require(o.max_model_len >= 0, "max_model_len", o.max_model_len, "must be >= 0 (0: the model's limit)");
  if (o.transport != "inproc" && o.transport != "local" && o.transport != "mpi")
    fail("EngineOptions.transport = '", o.transport, "': expected inproc (AFD over threads), local (no AFD) or mpi ",
         "(AFD across two MPI processes)");
  if (o.device != "cpu" && o.device != "cuda")
    fail("EngineOptions.device = '", o.device, "': expected cpu or cuda");
  const bool gpu = o.device == "cuda";
  if (gpu && o.dtype != "bf16" && o.dtype != "fp32")
    fail("EngineOptions.dtype = '", o.dtype, "': expected bf16 or fp32 (device cuda)");
  if (gpu && mpi) fail("--device cuda runs attention and FFN on one GPU: --transport mpi does not apply");
  if (gpu) check_cuda_available();

  // mpi: this process is the attention side; the FFN rank loads the experts and the other FFN weights
  const std::optional<ParamSide> side = mpi ? std::optional<ParamSide>(ParamSide::attention) : std::nullopt;
  im.served = o.model ? o.model : std::make_shared<ServingModel>(load_serving_model(o.model_dir, side));
  im.has_tokenizer = im.served->tokenizer.vocab_size() > 0;
  const Step3Config& cfg = im.served->model->config();
  im.max_len = o.max_model_len > 0 ? o.max_model_len : cfg.max_position_embedding;
  if (im.max_len > cfg.max_position_embedding)
    fail("EngineOptions.max_model_len = ", im.max_len, " exceeds the model's max_position_embedding ",
         cfg.max_position_embedding);
  const int64_t per_seq = (im.max_len + o.kv_block_size - 1) / o.kv_block_size;
  int64_t blocks = o.kv_blocks;
  if (blocks == 0) {
    const int64_t element_bytes = gpu && o.dtype == "bf16" ? 2 : 4;
    const int64_t block_bytes = 2 * o.kv_block_size * cfg.num_hidden_layers * cfg.head_dim * element_bytes;
    const int64_t budget = gpu ? kAutoPoolBytesGpu : kAutoPoolBytes;
    blocks = std::max(per_seq, std::min(per_seq * o.max_running, budget / block_bytes));
  }
  // device cuda: the host pool keeps only the block bookkeeping (head_dim 0); K and V live on the device
  im.pool = std::make_unique<KvPool>(blocks, o.kv_block_size, cfg.num_hidden_layers, gpu ? 0 : cfg.head_dim);
  im.stats = std::make_unique<AfdStats>(cfg.num_hidden_layers);
  if (gpu) {
#ifdef STEPWISE_HAS_CUDA
    auto model = std::make_shared<CudaStepModel>(
        *im.served->model, *im.pool, o.dtype == "fp32" ? CudaComputeType::fp32 : CudaComputeType::bf16);
    im.forward = [m = model.get()](const std::vector<StepSeq>& seqs) { return m->forward(seqs); };
    im.gpu_model = std::move(model);
#endif
  } else {
    if (mpi) mpi->await_ffn_ready(cfg.hidden_size, cfg.num_hidden_layers);   // the FFN rank runs the FFN workers
    if (o.transport == "inproc") {
      im.transport = std::make_unique<InprocTransport>();
      for (int64_t i = 0; i < o.ffn_workers; ++i)
        im.ffn_workers.push_back(std::make_unique<FfnWorker>(*im.served->model, *im.transport));
    }
    im.attention = std::make_unique<AttentionWorker>(*im.served->model, *im.pool, im.transport.get(),
                                                     o.micro_batches, *im.stats);
    im.forward = [w = im.attention.get()](const std::vector<StepSeq>& seqs) { return w->forward(seqs); };
  }
  im.m.kv_blocks_total = blocks;
  im.thread = std::thread([&im] { im.loop(); });
}

Engine::~Engine() {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.stopping = true;
  }
  im.wake.notify_all();
  if (im.thread.joinable()) im.thread.join();
  if (im.transport) im.transport->close();
  im.ffn_workers.clear();   // joins
}

void Engine::check_cuda_available() {
#ifdef STEPWISE_HAS_CUDA
  if (cuda::device_count() == 0) fail("--device cuda: no CUDA device available");
#else
  fail("--device cuda: this stepwise was built without CUDA (configure with -DSTEPWISE_CUDA=ON, e.g. ",
       "`cmake --preset cuda-release`)");
#endif
}

const Tokenizer& Engine::tokenizer() const {
  if (!impl_->has_tokenizer) fail("this engine's model has no tokenizer (random weights from a config)");
  return impl_->served->tokenizer;
}

std::string Engine::model_name() const {
  fs::path p = impl_->opt.model_dir;
  if (p.empty()) return "model";
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

int64_t Engine::max_model_len() const { return impl_->max_len; }

uint64_t Engine::submit(GenerationRequest request, EventCallback on_event) {
  Impl& im = *impl_;
  const SamplingParams& sp = request.sampling;
  const int64_t V = im.served->model->config().vocab_size, P = static_cast<int64_t>(request.prompt.size());
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (!on_event) bad("submit: no event callback");
  if (P == 0) bad("prompt is empty");
  for (size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= V)
      bad(cat("prompt[", i, "] = ", request.prompt[i], " is outside the vocabulary [0, ", V, ")"));
  if (sp.max_tokens < 1) bad(cat("max_tokens = ", sp.max_tokens, " must be at least 1"));
  if (P + sp.max_tokens > im.max_len)
    bad(cat("prompt (", P, " tokens) + max_tokens (", sp.max_tokens, ") exceeds max_model_len ", im.max_len));
  if (!(sp.temperature >= 0) || sp.temperature > 100) bad(cat("temperature = ", sp.temperature, " outside [0, 100]"));
  if (sp.top_k < 0) bad(cat("top_k = ", sp.top_k, " must be >= 0"));
  if (!(sp.top_p > 0 && sp.top_p <= 1)) bad(cat("top_p = ", sp.top_p, " outside (0, 1]"));
  if (sp.logprobs < 0 || sp.logprobs > 20) bad(cat("logprobs = ", sp.logprobs, " outside [0, 20]"));
  if (!im.has_tokenizer && !sp.stop.empty()) bad("stop strings need a tokenizer; this model has none");
  if (im.pool->blocks_for(P + sp.max_tokens) > im.pool->num_blocks())
    bad(cat("prompt + max_tokens = ", P + sp.max_tokens, " tokens need more KV blocks than the pool holds (",
            im.pool->num_blocks(), " x ", im.pool->block_size(), ")"));

  auto s = std::make_unique<Sequence>();
  s->id = im.next_id++;
  s->rng.seed(sp.seed ? *sp.seed : mix_seed(im.opt.seed, s->id));
  s->request = std::move(request);
  s->on_event = std::move(on_event);
  s->tokens = s->request.prompt;
  s->prompt_len = P;
  if (im.has_tokenizer) s->text = std::make_unique<TextStream>(im.served->tokenizer, s->request.sampling.stop);
  s->submitted = Clock::now();
  const uint64_t id = s->id;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.draining || im.stopping) throw QueueFull("the engine is draining and accepts no new requests");
    if (static_cast<int64_t>(im.waiting.size()) >= im.opt.max_queue)
      throw QueueFull(cat("the queue is full (", im.opt.max_queue, " requests waiting)"));
    im.waiting.push_back(std::move(s));
    ++im.m.requests_total;
  }
  im.wake.notify_all();
  return id;
}

void Engine::cancel(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->cancels.insert(request_id);
  }
  impl_->wake.notify_all();
}

EngineMetrics Engine::metrics() const {
  const Impl& im = *impl_;
  EngineMetrics out;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    out = im.m;
    out.running = im.running_count;
    out.waiting = static_cast<int64_t>(im.waiting.size());
    out.kv_blocks_used = im.pool->blocks_used();
    out.kv_blocks_total = im.pool->num_blocks();
  }
  out.weight_bytes = im.served->model->params().num_params() * static_cast<int64_t>(sizeof(float));
  out.attn_wait_seconds_per_layer = im.stats->attention_wait();
  out.ffn_wait_seconds_per_layer = im.stats->ffn_wait();
  return out;
}

void Engine::drain() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> lock(im.mu);
  im.draining = true;
  im.idle.wait(lock, [&] { return im.stopping || (im.waiting.empty() && im.running_count == 0 && im.cancels.empty()); });
}

bool Engine::ready() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return !impl_->draining && !impl_->stopping;
}

}  // namespace stepwise
