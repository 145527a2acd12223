// The engine end to end on a tiny random Step-3 checkpoint: greedy decoding equals full recomputation, the paged
// per-layer (AFD) path equals the contiguous inference path, AFD with 1 and 3 micro-batches equals no
// disaggregation, many concurrent requests equal their solo runs, cancel and admission control, QueueFull, drain,
// stop strings, seeded sampling and prompt log-probabilities against the training forward.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "serve/afd/attention_worker.h"
#include "serve/afd/ffn_worker.h"
#include "serve/decode_bench.h"
#include "serve/kv_pool.h"
#include "serve_fixture.h"

namespace stepwise {
namespace {

using test::Collected;
using test::greedy_request;
using test::run_all;
using test::test_prompt;
using test::tiny_options;

struct Fixture : ::testing::Test {
  static void SetUpTestSuite() {
    served = new ServingModel(load_serving_model(test::tiny_checkpoint()));
  }
  static void TearDownTestSuite() {
    delete served;
    served = nullptr;
  }
  static ServingModel* served;
};
ServingModel* Fixture::served = nullptr;

TEST_F(Fixture, PagedLayerPathLogitsEqualContiguousInference) {
  Step3Model<float>& model = *served->model;
  const int64_t V = model.config().vocab_size;
  const std::vector<int32_t> seq = test_prompt(served->tokenizer, 3);
  const int64_t n = static_cast<int64_t>(seq.size());
  ASSERT_GE(n, 12);
  KvCache<float> full = model.new_cache();
  const std::vector<float> ref = model.infer(full, seq.data(), n, true);   // (n, V)

  {
    KvPool pool(32, 4, model.config().num_hidden_layers, model.config().head_dim);
    AfdStats stats(model.config().num_hidden_layers);
    AttentionWorker worker(model, pool, nullptr, 2, stats);
    std::vector<int32_t> blocks = pool.allocate(pool.blocks_for(n));
    std::vector<int32_t> other_blocks = pool.allocate(pool.blocks_for(n));
    std::vector<float> got;
    // prefill 7 tokens (all logits) alongside another sequence, then decode one token at a time
    std::vector<float> step = worker.forward({StepSeq{seq.data(), 7, 0, &blocks, true},
                                              StepSeq{seq.data(), 3, 0, &other_blocks, false}});
    got.insert(got.end(), step.begin(), step.begin() + 7 * V);
    for (int64_t i = 7; i < n; ++i) {
      step = worker.forward({StepSeq{seq.data() + i, 1, i, &blocks, false}});
      got.insert(got.end(), step.begin(), step.end());
    }
    ASSERT_EQ(got.size(), ref.size());
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      worst = std::max(worst, std::abs(double(got[i]) - ref[i]) / std::max(1.0, std::abs(double(ref[i]))));
    EXPECT_LT(worst, 1e-5);
  }
}

TEST_F(Fixture, GreedyEqualsFullRecomputation) {
  EngineOptions o = tiny_options();
  o.transport = "local";
  Engine engine(o);
  std::vector<GenerationRequest> reqs;
  for (size_t i = 0; i < 4; ++i) reqs.push_back(greedy_request(test_prompt(served->tokenizer, i * 3), 10));
  const std::vector<Collected> got = run_all(engine, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].tokens, test::reference_greedy(*served->model, reqs[i].prompt, 10)) << "request " << i;
    EXPECT_EQ(got[i].finish_reason, "length");
    EXPECT_EQ(got[i].text, served->tokenizer.decode(got[i].tokens));
    for (const TokenLogprob& t : got[i].token_logprobs) EXPECT_LE(t.logprob, 0.0);
  }
  EXPECT_EQ(engine.metrics().kv_blocks_used, 0);
}

TEST_F(Fixture, AfdMicroBatchesEqualNoDisaggregation) {
  std::vector<GenerationRequest> reqs;
  for (size_t i = 0; i < 9; ++i) reqs.push_back(greedy_request(test_prompt(served->tokenizer, i), 8));
  std::vector<std::vector<Collected>> runs;
  for (auto [transport, mbs, ffn] : {std::tuple{"local", 1, 1}, std::tuple{"inproc", 1, 1},
                                     std::tuple{"inproc", 3, 1}, std::tuple{"inproc", 3, 2}}) {
    EngineOptions o = tiny_options();
    o.transport = transport;
    o.micro_batches = mbs;
    o.ffn_workers = ffn;
    Engine engine(o);
    runs.push_back(run_all(engine, reqs));
    const EngineMetrics m = engine.metrics();
    ASSERT_EQ(m.attn_wait_seconds_per_layer.size(), 3u);
    ASSERT_EQ(m.ffn_wait_seconds_per_layer.size(), 3u);
    if (std::string(transport) == "inproc") {
      double total = 0;
      for (double x : m.ffn_wait_seconds_per_layer) total += x;
      EXPECT_GT(total, 0.0) << "FFN wait times are recorded";
    }
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(runs[r][i].tokens, runs[0][i].tokens) << "run " << r;
}

// An in-process transport whose FFN side answers its first work item with an error, and counts what it sent.
class FirstResultFailsTransport : public InprocTransport {
 public:
  void send_result(FfnResult r) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (sent_++ == 0) {
        r.out.clear();
        r.error = "injected FFN failure";
      }
    }
    cv_.notify_all();
    InprocTransport::send_result(std::move(r));
  }
  void wait_sent(int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return sent_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t sent_ = 0;
};

TEST_F(Fixture, AfdLateResultsOfAFailedStepAreNotTakenByTheNextStep) {
  Step3Model<float>& model = *served->model;
  const Step3Config& cfg = model.config();
  const std::vector<int32_t> a = test_prompt(served->tokenizer, 1), b = test_prompt(served->tokenizer, 2);
  const int64_t n = static_cast<int64_t>(std::min(a.size(), b.size()));
  KvPool pool(64, 4, cfg.num_hidden_layers, cfg.head_dim);
  std::vector<int32_t> blocks[4];
  for (auto& bl : blocks) bl = pool.allocate(pool.blocks_for(n));

  // the reference: the second step's inputs with the FFN inline
  AfdStats ref_stats(cfg.num_hidden_layers);
  AttentionWorker inline_worker(model, pool, nullptr, 2, ref_stats);
  const std::vector<float> ref =
      inline_worker.forward({StepSeq{b.data(), n, 0, &blocks[0], false}, StepSeq{a.data(), n, 0, &blocks[1], false}});

  FirstResultFailsTransport transport;
  AfdStats stats(cfg.num_hidden_layers);
  {
    FfnWorker ffn(model, transport);
    AttentionWorker worker(model, pool, &transport, 2, stats);
    // step 1: micro-batch 0's layer-0 result is an error, so the step fails while micro-batch 1's is in flight
    EXPECT_THROW(
        worker.forward({StepSeq{a.data(), n, 0, &blocks[2], false}, StepSeq{b.data(), n, 0, &blocks[3], false}}),
        Error);
    transport.wait_sent(2);   // the late result of step 1 now waits in the queue
    // step 2 with other inputs: micro-batch 1 must get its own layer-0 result, not step 1's
    const std::vector<float> got =
        worker.forward({StepSeq{b.data(), n, 0, &blocks[2], false}, StepSeq{a.data(), n, 0, &blocks[3], false}});
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-5 * std::max(1.0f, std::abs(ref[i]))) << i;
    transport.close();
  }
}

TEST_F(Fixture, ManyConcurrentRequestsEqualSoloRuns) {
  Engine engine(tiny_options());
  std::vector<GenerationRequest> reqs;
  for (size_t i = 0; i < 36; ++i) reqs.push_back(greedy_request(test_prompt(served->tokenizer, i), 4 + i % 5));
  const std::vector<Collected> got = run_all(engine, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].tokens, test::reference_greedy(*served->model, reqs[i].prompt, reqs[i].sampling.max_tokens))
        << "request " << i;
  }
  const EngineMetrics m = engine.metrics();
  EXPECT_EQ(m.kv_blocks_used, 0);
  EXPECT_EQ(m.requests_total, 36);
  EXPECT_EQ(static_cast<size_t>(m.ttft_seconds.size()), reqs.size());
}

TEST_F(Fixture, CancelFreesBlocks) {
  Engine engine(tiny_options());
  // cancel by returning false from the callback, and by cancel(id)
  std::promise<void> first_done, second_started;
  int64_t seen = 0;
  engine.submit(greedy_request(test_prompt(served->tokenizer, 0), 100), [&](const GenerationEvent& ev) {
    if (++seen == 3) first_done.set_value();
    EXPECT_FALSE(ev.finished);
    return seen < 3;
  });
  first_done.get_future().wait();
  std::promise<std::string> reason;
  bool started = false;
  const uint64_t id =
      engine.submit(greedy_request(test_prompt(served->tokenizer, 1), 100), [&](const GenerationEvent& ev) {
        if (!started) {
          started = true;
          second_started.set_value();
        }
        if (ev.finished) reason.set_value(ev.finish_reason);
        return true;
      });
  second_started.get_future().wait();
  EXPECT_GT(engine.metrics().kv_blocks_used, 0);
  engine.cancel(id);
  EXPECT_EQ(reason.get_future().get(), "cancelled");
  engine.drain();
  const EngineMetrics m = engine.metrics();
  EXPECT_EQ(m.kv_blocks_used, 0);
  EXPECT_EQ(m.running, 0);
}

TEST_F(Fixture, AdmissionControlWaitsForBlocks) {
  EngineOptions o = tiny_options();
  o.kv_blocks = 12;   // each request below needs 5-6 blocks of 4 tokens: two run at a time
  Engine engine(o);
  std::vector<GenerationRequest> reqs;
  for (size_t i = 0; i < 6; ++i) reqs.push_back(greedy_request(test_prompt(served->tokenizer, i % 5), 8));
  test::Collector col;
  int64_t max_running = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto inner = col.callback(i);
    engine.submit(reqs[i], [&, inner](const GenerationEvent& ev) {
      max_running = std::max(max_running, engine.metrics().running);
      EXPECT_LE(engine.metrics().kv_blocks_used, 12);
      return inner(ev);
    });
  }
  col.wait(reqs.size());
  EXPECT_LE(max_running, 2);
  EXPECT_GE(max_running, 1);
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_EQ(col.get(i).tokens, test::reference_greedy(*served->model, reqs[i].prompt, 8));
  EXPECT_EQ(engine.metrics().kv_blocks_used, 0);
  // a request that could never fit is refused at once
  EXPECT_THROW(engine.submit(greedy_request(test_prompt(served->tokenizer, 0), 60), [](const GenerationEvent&) {
    return true;
  }),
               std::invalid_argument);
}

TEST_F(Fixture, QueueFullDrainAndValidation) {
  EngineOptions o = tiny_options();
  o.max_running = 1;
  o.max_queue = 2;
  Engine engine(o);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> blocked;
  bool first = true;
  test::Collector col;
  auto inner = col.callback(0);
  // the first request's first event blocks the engine thread until the queue has been filled
  engine.submit(greedy_request(test_prompt(served->tokenizer, 0), 3), [&, inner](const GenerationEvent& ev) {
    if (first) {
      first = false;
      blocked.set_value();
      gate.wait();
    }
    return inner(ev);
  });
  blocked.get_future().wait();
  engine.submit(greedy_request(test_prompt(served->tokenizer, 1), 3), col.callback(1));
  engine.submit(greedy_request(test_prompt(served->tokenizer, 2), 3), col.callback(2));
  EXPECT_THROW(engine.submit(greedy_request(test_prompt(served->tokenizer, 3), 3), col.callback(3)), QueueFull);
  EXPECT_EQ(engine.metrics().waiting, 2);
  release.set_value();
  col.wait(3);
  engine.drain();
  EXPECT_FALSE(engine.ready());
  EXPECT_THROW(engine.submit(greedy_request(test_prompt(served->tokenizer, 0), 3), col.callback(4)), QueueFull);

  Engine fresh(tiny_options());
  auto cb = [](const GenerationEvent&) { return true; };
  EXPECT_THROW(fresh.submit(greedy_request({}, 3), cb), std::invalid_argument);
  EXPECT_THROW(fresh.submit(greedy_request(test_prompt(served->tokenizer, 0), 1000), cb), std::invalid_argument);
  GenerationRequest bad = greedy_request(test_prompt(served->tokenizer, 0), 3);
  bad.sampling.top_p = 0;
  EXPECT_THROW(fresh.submit(bad, cb), std::invalid_argument);
  bad = greedy_request({999999}, 3);
  EXPECT_THROW(fresh.submit(bad, cb), std::invalid_argument);
  EngineOptions wrong = tiny_options();
  wrong.transport = "carrier-pigeon";
  EXPECT_THROW(Engine e(wrong), Error);
}

TEST_F(Fixture, StopStringsEndTheText) {
  Engine engine(tiny_options());
  GenerationRequest r = greedy_request(test_prompt(served->tokenizer, 0), 24);
  const Collected plain = run_all(engine, {r})[0];
  ASSERT_GE(plain.text.size(), 6u) << plain.text;
  // a stop string taken from the middle of the greedy text (whole UTF-8 characters)
  size_t a = plain.text.size() / 2;
  while (a > 0 && (static_cast<unsigned char>(plain.text[a]) & 0xC0) == 0x80) --a;
  size_t b = a + 1;
  while (b < plain.text.size() && (static_cast<unsigned char>(plain.text[b]) & 0xC0) == 0x80) ++b;
  const std::string stop = plain.text.substr(a, b - a);
  r.sampling.stop = {stop};
  const Collected cut = run_all(engine, {r})[0];
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, plain.text.substr(0, plain.text.find(stop)));
  EXPECT_LE(cut.tokens.size(), plain.tokens.size());
}

TEST_F(Fixture, SeededSamplingIsReproducible) {
  GenerationRequest r;
  r.prompt = test_prompt(served->tokenizer, 1);
  r.sampling.temperature = 0.9;
  r.sampling.top_k = 20;
  r.sampling.top_p = 0.95;
  r.sampling.seed = 1234;
  r.sampling.max_tokens = 16;
  r.sampling.stop_at_eot = false;
  r.sampling.logprobs = 3;
  Engine engine(tiny_options());
  const Collected alone = run_all(engine, {r})[0];
  // the same request inside a busy batch samples the same tokens
  std::vector<GenerationRequest> batch;
  for (size_t i = 0; i < 5; ++i) batch.push_back(greedy_request(test_prompt(served->tokenizer, i + 2), 12));
  batch.push_back(r);
  const Collected busy = run_all(engine, batch).back();
  EXPECT_EQ(alone.tokens, busy.tokens);
  ASSERT_EQ(alone.token_logprobs.size(), 16u);
  for (const TokenLogprob& t : alone.token_logprobs) EXPECT_EQ(t.top.size(), 3u);
  r.sampling.seed = 4321;
  const Collected other = run_all(engine, {r})[0];
  EXPECT_NE(alone.tokens, other.tokens);
}

TEST_F(Fixture, PromptLogprobsEqualTrainingForward) {
  const std::vector<int32_t> prompt = test_prompt(served->tokenizer, 8);
  const int64_t n = static_cast<int64_t>(prompt.size());
  GenerationRequest r = greedy_request(prompt, 2);
  r.sampling.prompt_logprobs = true;
  r.sampling.logprobs = 2;
  Engine engine(tiny_options());   // prefill_chunk 5: the prompt spans several chunks
  const Collected got = run_all(engine, {r})[0];
  ASSERT_EQ(static_cast<int64_t>(got.prompt_logprobs.size()), n - 1);

  Step3Model<float> trainer(served->model->config());
  trainer.params().copy_values_from(served->model->params());
  std::vector<int32_t> targets(prompt.begin() + 1, prompt.end()), pos(static_cast<size_t>(n));
  targets.push_back(-100);
  for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  trainer.forward(TrainBatch{prompt.data(), targets.data(), pos.data(), nullptr, 1, n});
  const std::vector<double> lp = trainer.token_logprobs();
  for (int64_t i = 0; i + 1 < n; ++i) {
    EXPECT_EQ(got.prompt_logprobs[static_cast<size_t>(i)].token, prompt[static_cast<size_t>(i + 1)]);
    EXPECT_NEAR(got.prompt_logprobs[static_cast<size_t>(i)].logprob, lp[static_cast<size_t>(i)], 1e-4) << i;
    EXPECT_EQ(got.prompt_logprobs[static_cast<size_t>(i)].top.size(), 2u);
  }
  // greedy: the chosen token is the most likely alternative
  for (const TokenLogprob& t : got.token_logprobs) {
    ASSERT_FALSE(t.top.empty());
    EXPECT_EQ(t.top[0].first, t.token);
    EXPECT_DOUBLE_EQ(t.top[0].second, t.logprob);
  }
}

TEST_F(Fixture, DecodeBenchReportsEveryPoint) {
  DecodeBenchOptions o;
  o.engine = tiny_options();
  o.batch_sizes = {1, 4};
  o.micro_batches = {1, 3};
  o.prompt_tokens = 6;
  o.gen_tokens = 5;
  const std::vector<DecodeBenchRow> rows = run_decode_bench(o);
  ASSERT_EQ(rows.size(), 4u);
  for (const DecodeBenchRow& r : rows) {
    EXPECT_GT(r.tokens_per_second, 0.0);
    EXPECT_GT(r.tpot_p50, 0.0);
    EXPECT_LE(r.tpot_p50, r.tpot_p99);
  }
  EXPECT_EQ(rows[3].batch, 4);
  EXPECT_EQ(rows[3].micro_batches, 3);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2, 4}, 50), 2.0);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2, 4}, 99), 4.0);
}

}  // namespace
}  // namespace stepwise
