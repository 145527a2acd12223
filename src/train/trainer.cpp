// Implementation of the token-level trainer loop (see trainer.h).
#include "train/trainer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "ckpt/model_io.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/loaders.h"
#include "model/step3_model.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace stepwise {

namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// Installs SIGINT/SIGTERM handlers for the lifetime of a run, restoring the previous ones after.
struct StopSignals {
  struct sigaction old_int {}, old_term {};
  StopSignals() {
    g_stop_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

// The stage's loader behind one interface: next batch, state save/restore.
class BatchStream {
 public:
  BatchStream(const std::string& stage, std::shared_ptr<const TokenShard> shard, const Tokenizer& tok,
              const LoaderOptions& opt) {
    if (stage == "sft")
      sft_ = std::make_unique<SftLoader>(shard, tok, opt);
    else
      pretrain_ = std::make_unique<PretrainLoader>(shard, tok, opt);
  }
  bool next(TokenBatch& b) { return sft_ ? sft_->next(b) : pretrain_->next(b); }
  json state() const { return sft_ ? sft_->state_json() : pretrain_->state_json(); }
  void restore(const json& j) { sft_ ? sft_->restore(j) : pretrain_->restore(j); }

 private:
  std::unique_ptr<PretrainLoader> pretrain_;
  std::unique_ptr<SftLoader> sft_;
};

TrainBatch view_of(const TokenBatch& b) {
  return {b.tokens.data(), b.targets.data(), b.pos.data(), b.seg.data(), b.B, b.T};
}

// Mean loss over the held-out slice (at most `max_batches` batches); -1 when the slice is empty.
double eval_loss(Step3Model<float>& model, const std::string& stage, std::shared_ptr<const TokenShard> shard,
                 const Tokenizer& tok, LoaderOptions opt, int64_t max_batches) {
  if (opt.range.size() <= 0) return -1;
  opt.shuffle = false;
  opt.repeat = false;
  BatchStream stream(stage, shard, tok, opt);
  TokenBatch batch;
  double loss_sum = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < max_batches && stream.next(batch); ++i) {
    const double mean = model.forward(view_of(batch));
    loss_sum += mean * model.num_target_tokens();
    tokens += model.num_target_tokens();
  }
  return tokens > 0 ? loss_sum / tokens : -1;
}

std::string load_summary(const std::vector<std::vector<double>>& load) {
  std::ostringstream os;
  os.precision(3);
  for (size_t l = 0; l < load.size(); ++l) {
    double mx = 0;
    for (double x : load[l]) mx = std::max(mx, x);
    os << (l ? "," : "") << mx * load[l].size();
  }
  return os.str();  // max load relative to uniform, per MoE layer
}

}  // namespace

TrainSummary run_training(const RecipeConfig& r) {
  if (r.stage != "pretrain" && r.stage != "sft")
    fail(r.file.string(), ": stage '", r.stage, "' is not handled by the token-level trainer (pretrain, sft)");
  if (r.train.device != "cpu")
    fail(r.file.string(), ": train.device '", r.train.device, "': this build trains on the CPU only");
  if (r.train.dtype != "fp32")
    fail(r.file.string(), ": train.dtype '", r.train.dtype, "': the CPU backend trains in fp32");

  // ---- everything that can fail on bad input happens before training starts ----
  Tokenizer tok = Tokenizer::load(r.data.tokenizer);
  Step3Config cfg = Step3Config::load(r.model);
  if (cfg.vocab_size != tok.vocab_size()) {
    log_info("model vocab_size ", cfg.vocab_size, " -> ", tok.vocab_size(), " (the tokenizer's)");
    cfg.vocab_size = tok.vocab_size();
  }
  cfg.validate(r.model.string());
  ModelOptions mopt;
  mopt.aux_loss_coef = r.moe.balance == "aux" ? r.moe.aux_loss_coef : 0.0;
  mopt.expert_bias = r.moe.balance == "bias";
  Step3Model<float> model(cfg, mopt);
  model.params().init(r.train.seed);

  fs::path resume_from;
  if (r.resume == "auto") {
    if (auto last = latest_checkpoint(r.output.dir)) resume_from = *last;
  } else if (r.resume != "none") {
    resume_from = r.resume;
    if (!fs::exists(resume_from / "trainer_state.json"))
      fail(r.file.string(), ": resume: '", r.resume, "' is not a training checkpoint (no trainer_state.json)");
  }
  if (resume_from.empty() && !r.init_from.empty()) {
    if (!fs::exists(r.init_from / "config.json"))
      fail(r.file.string(), ": init_from: no checkpoint at '", r.init_from.string(), "' (config.json missing)");
    if (fs::exists(r.init_from / "tokenizer.model") && Tokenizer::load(r.init_from).hash() != tok.hash())
      fail(r.file.string(), ": init_from checkpoint '", r.init_from.string(), "' was trained with another tokenizer than '",
           r.data.tokenizer.string(), "'");
    load_model_weights(r.init_from, model);
    log_info("initialised from ", r.init_from.string());
  }

  const ShardKind kind = r.stage == "sft" ? ShardKind::sft : ShardKind::pretrain;
  auto shard = TokenShard::open(ensure_shard(kind, r.data.train, tok, r.data.cache_dir));
  auto [train_range, eval_range] = split_holdout(shard->num_samples(), HoldOut{r.data.eval_samples, 0.0});
  LoaderOptions lopt;
  lopt.batch_size = r.train.micro_batch;
  lopt.seq_len = r.data.seq_len;
  lopt.seed = r.train.seed;
  lopt.range = train_range;
  BatchStream stream(r.stage, shard, tok, lopt);
  LoaderOptions eval_opt = lopt;
  eval_opt.range = eval_range;

  AdamW opt(model.params(), {r.train.beta1, r.train.beta2, r.train.eps, r.train.weight_decay});
  int64_t step = 0, skipped_total = 0, bad_in_a_row = 0;
  double tokens_seen = 0;
  if (!resume_from.empty()) {
    json st = json::parse(read_file(resume_from / "trainer_state.json"));
    step = st.at("step").get<int64_t>();
    skipped_total = st.value("skipped_steps", int64_t(0));
    tokens_seen = st.value("tokens_seen", 0.0);
    load_model_weights(resume_from, model);
    opt.load_state(SafetensorsFile::open(resume_from / "optimizer.safetensors"), model.params(),
                   st.at("optimizer_steps").get<int64_t>());
    stream.restore(st.at("loader"));
    log_info("resuming from ", resume_from.string(), " at step ", step);
  }
  fs::create_directories(r.output.dir);
  MetricsLog metrics(r.output.dir / "metrics.jsonl", resume_from.empty() ? -1 : step);
  const LrSchedule schedule{r.train.schedule, r.train.lr, r.train.min_lr, r.train.warmup_steps, r.train.max_steps};

  std::ostringstream recipe_text;
  recipe_text << r.resolved << "\n";
  auto save = [&](int64_t at_step) {
    CheckpointContents c;
    c.config = json::parse(cfg.to_json());
    c.generation_config = {{"eos_token_id", tok.eot()}, {"pad_token_id", tok.pad()}, {"max_new_tokens", 256}};
    c.model = model_tensors(model, mopt.expert_bias);
    c.optimizer = opt.state_tensors(model.params());
    c.trainer_state = {{"step", at_step},          {"optimizer_steps", opt.steps()}, {"skipped_steps", skipped_total},
                       {"tokens_seen", tokens_seen}, {"loader", stream.state()},     {"stage", r.stage},
                       {"tokenizer_hash", tok.hash()}};
    c.tokenizer_dir = r.data.tokenizer;
    c.extra_files = {{"recipe.yaml", recipe_text.str()}};
    return save_checkpoint(r.output.dir, at_step, c, static_cast<int>(r.output.keep_last));
  };

  TrainSummary sum;
  sum.start_step = step;
  StopSignals signals;
  const auto t_start = std::chrono::steady_clock::now();
  if (step == 0) {
    sum.first_eval_loss = eval_loss(model, r.stage, shard, tok, eval_opt, r.train.eval_batches);
    if (sum.first_eval_loss >= 0) {
      metrics.write({{"step", 0}, {"eval_loss", sum.first_eval_loss}});
      log_info("step 0 eval_loss ", sum.first_eval_loss);
    }
  }
  Progress progress(r.stage, r.train.max_steps);
  TokenBatch batch;
  bool first = true;
  while (step < r.train.max_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad();
    double loss_sum = 0, aux_sum = 0;
    int64_t targets = 0, tokens = 0;
    std::vector<std::vector<double>> load;
    for (int64_t micro = 0; micro < r.train.grad_accum; ++micro) {
      if (!stream.next(batch)) fail(r.data.train.string(), ": no training samples");
      const double mean = model.forward(view_of(batch));
      const int64_t n = model.num_target_tokens();
      // Each micro-batch's tokens weigh 1 / (targets of all micro-batches): gradients of the mean over the step.
      std::vector<float> dloss(static_cast<size_t>(batch.B * batch.T), 0.0f);
      const double per_token = 1.0 / (static_cast<double>(n) * r.train.grad_accum);
      for (size_t i = 0; i < dloss.size(); ++i) dloss[i] = batch.targets[i] != kIgnoreTarget ? float(per_token) : 0.f;
      model.backward(dloss.data(), 1.0 / r.train.grad_accum);
      loss_sum += mean / r.train.grad_accum;
      aux_sum += model.aux_loss() / r.train.grad_accum;
      targets += n;
      tokens += batch.B * batch.T;
      load = model.expert_load();
    }
    const double norm = AdamW::grad_norm(model.params());
    const bool finite = std::isfinite(loss_sum) && std::isfinite(norm);
    ++step;
    const double lr = schedule.at(step);
    if (finite) {
      bad_in_a_row = 0;
      AdamW::clip(model.params(), norm, r.train.grad_clip);
      opt.step(model.params(), lr);
      if (mopt.expert_bias) model.update_expert_bias(r.moe.bias_update_rate);
    } else {
      ++skipped_total;
      ++bad_in_a_row;
      log_warn("step ", step, ": non-finite loss or gradient (loss ", loss_sum, ", grad_norm ", norm,
               "): update skipped (", bad_in_a_row, " in a row)");
      if (bad_in_a_row >= r.train.max_bad_steps)
        fail("stopping at step ", step, ": ", bad_in_a_row, " consecutive steps with non-finite loss or gradients ",
             "(train.max_bad_steps = ", r.train.max_bad_steps, "); lower train.lr or check the data");
    }
    tokens_seen += static_cast<double>(tokens);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json rec = {{"step", step},       {"loss", loss_sum},         {"lr", lr},
                {"grad_norm", norm},  {"tokens_per_s", tokens / secs}, {"aux_loss", aux_sum},
                {"target_tokens", targets}, {"skipped_steps", skipped_total}, {"expert_load", load}};
    if (first) sum.first_loss = loss_sum, first = false;
    sum.last_loss = loss_sum;
    if (step % r.train.eval_every == 0 || step == r.train.max_steps) {
      sum.last_eval_loss = eval_loss(model, r.stage, shard, tok, eval_opt, r.train.eval_batches);
      if (sum.last_eval_loss >= 0) rec["eval_loss"] = sum.last_eval_loss;
    }
    if (step % r.train.log_every == 0 || rec.contains("eval_loss")) metrics.write(rec);
    std::ostringstream status;
    status.precision(4);
    status << "loss " << loss_sum << " lr " << lr << " " << static_cast<int64_t>(tokens / secs) << " tok/s";
    if (!load.empty()) status << " maxload " << load_summary(load);
    if (rec.contains("eval_loss")) status << " eval " << sum.last_eval_loss;
    progress.update(step, status.str());
    const bool stop = g_stop_signal.load() != 0;
    if (step % r.output.save_every == 0 || step == r.train.max_steps || stop) sum.last_checkpoint = save(step);
    if (stop) {
      log_info("signal ", g_stop_signal.load(), ": saved ", sum.last_checkpoint.string(), " and stopping");
      sum.interrupted = true;
      break;
    }
  }
  progress.finish();
  sum.end_step = step;
  sum.skipped_steps = skipped_total;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (sum.last_checkpoint.empty())
    if (auto last = latest_checkpoint(r.output.dir)) sum.last_checkpoint = *last;
  return sum;
}

}  // namespace stepwise
