// Implementation of the token-level trainer loop and the dispatch by stage (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/loaders.h"
#include "model/step3_model.h"
#include "train/preference_trainer.h"
#include "train/training_run.h"

namespace stepwise {

namespace {

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

// Mean loss over the held-out slice (at most `max_batches` batches); -1 when the slice is empty.
double eval_loss(TrainBackend& model, const std::string& stage, std::shared_ptr<const TokenShard> shard,
                 const Tokenizer& tok, LoaderOptions opt, int64_t max_batches) {
  if (opt.range.size() <= 0) return -1;
  opt.shuffle = false;
  opt.repeat = false;
  BatchStream stream(stage, shard, tok, opt);
  TokenBatch batch;
  double loss_sum = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < max_batches && stream.next(batch); ++i) {
    model.forward(train_view(batch));
    loss_sum += model.loss() * model.num_target_tokens();
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

// The token-level loop (pretrain, sft).
TrainSummary run_token_training(const RecipeConfig& r) {
  TrainingRun run(r, model_options_for(r, false));
  TrainBackend& model = *run.backend;
  const Tokenizer& tok = run.tok;

  StageData data = run.open_data(r.stage == "sft" ? ShardKind::sft : ShardKind::pretrain);
  auto shard = data.shard;
  const LoaderOptions& lopt = data.train;
  BatchStream stream(r.stage, shard, tok, lopt);
  const LoaderOptions& eval_opt = data.eval;

  double tokens_seen = 0;
  if (run.resumed()) {
    tokens_seen = run.resumed_state.value("tokens_seen", 0.0);
    stream.restore(run.resumed_state.at("loader"));
  }
  auto metrics = run.open_metrics();

  TrainSummary sum;
  sum.start_step = run.step;
  StopSignals signals;
  const auto t_start = std::chrono::steady_clock::now();
  if (run.step == 0) {
    sum.first_eval_loss = eval_loss(model, r.stage, shard, tok, eval_opt, r.train.eval_batches);
    if (sum.first_eval_loss >= 0) {
      metrics->write({{"step", 0}, {"eval_loss", sum.first_eval_loss}});
      log_info("step 0 eval_loss ", sum.first_eval_loss);
    }
  }
  Progress progress(r.stage, r.train.max_steps);
  TokenBatch batch;
  bool first = true;
  while (run.step < r.train.max_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    double loss_sum = 0, aux_sum = 0;
    int64_t targets = 0, tokens = 0;
    for (int64_t micro = 0; micro < r.train.grad_accum; ++micro) {
      if (!stream.next(batch)) fail(r.data.train.string(), ": no training samples");
      model.forward(train_view(batch));
      const int64_t n = model.num_target_tokens();
      // Each micro-batch's tokens weigh 1 / (targets of all micro-batches): gradients of the mean over the step.
      model.backward(1.0 / (static_cast<double>(n) * r.train.grad_accum), 1.0 / r.train.grad_accum);
      loss_sum += model.loss() / r.train.grad_accum;   // read after backward is queued (a device runs on)
      aux_sum += model.aux_loss() / r.train.grad_accum;
      targets += n;
      tokens += batch.B * batch.T;
    }
    const std::vector<std::vector<double>> load = model.expert_load();   // of the last micro-batch
    const double norm = model.grad_norm();
    const double lr = run.finish_step(loss_sum, norm);
    const int64_t step = run.step;
    tokens_seen += static_cast<double>(tokens);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json rec = {{"step", step},       {"loss", loss_sum},         {"lr", lr},
                {"grad_norm", norm},  {"tokens_per_s", tokens / secs}, {"aux_loss", aux_sum},
                {"target_tokens", targets}, {"skipped_steps", run.skipped_steps}, {"expert_load", load}};
    if (first) sum.first_loss = loss_sum, first = false;
    sum.last_loss = loss_sum;
    if (step % r.train.eval_every == 0 || step == r.train.max_steps) {
      sum.last_eval_loss = eval_loss(model, r.stage, shard, tok, eval_opt, r.train.eval_batches);
      if (sum.last_eval_loss >= 0) rec["eval_loss"] = sum.last_eval_loss;
    }
    if (step % r.train.log_every == 0 || rec.contains("eval_loss")) metrics->write(rec);
    std::ostringstream status;
    status.precision(4);
    status << "loss " << loss_sum << " lr " << lr << " " << static_cast<int64_t>(tokens / secs) << " tok/s";
    if (!load.empty()) status << " maxload " << load_summary(load);
    if (rec.contains("eval_loss")) status << " eval " << sum.last_eval_loss;
    progress.update(step, status.str());
    if (run.save_or_stop(signals, {{"tokens_seen", tokens_seen}, {"loader", stream.state()}}, sum)) break;
  }
  progress.finish();
  run.finish_summary(sum, t_start);
  return sum;
}

}  // namespace

TrainSummary run_training(const RecipeConfig& r) {
  if (r.stage == "pretrain" || r.stage == "sft") return run_token_training(r);
  if (r.stage == "dpo" || r.stage == "rm") return run_preference_training(r);
  fail(r.file.string(), ": stage '", r.stage, "' has no training loop in this build (pretrain, sft, dpo, rm)");
}

}  // namespace stepwise
