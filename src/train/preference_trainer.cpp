// Implementation of the pairwise training loop (see preference_trainer.h).
#include "train/preference_trainer.h"

#include <chrono>
#include <optional>
#include <set>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "train/dpo.h"
#include "train/rm.h"
#include "train/training_run.h"

namespace stepwise {

RowLogps row_logps(const TokenBatch& batch, const std::vector<double>& token_logprobs) {
  if (static_cast<int64_t>(token_logprobs.size()) != batch.B * batch.T)
    fail("row_logps: ", token_logprobs.size(), " token log-probs for a ", batch.B, " x ", batch.T, " batch");
  RowLogps out;
  out.sum.assign(static_cast<size_t>(batch.B), 0.0);
  out.count.assign(static_cast<size_t>(batch.B), 0);
  for (int64_t b = 0; b < batch.B; ++b)
    for (int64_t t = 0; t < batch.T; ++t) {
      const size_t at = static_cast<size_t>(b * batch.T + t);
      if (batch.targets[at] == kIgnoreTarget) continue;
      out.sum[static_cast<size_t>(b)] += token_logprobs[at];
      ++out.count[static_cast<size_t>(b)];
    }
  return out;
}

std::vector<int64_t> last_target_positions(const TokenBatch& batch) {
  std::vector<int64_t> out(static_cast<size_t>(batch.B), -1);
  for (int64_t b = 0; b < batch.B; ++b)
    for (int64_t t = 0; t < batch.T; ++t)
      if (batch.targets[static_cast<size_t>(b * batch.T + t)] != kIgnoreTarget) out[static_cast<size_t>(b)] = b * batch.T + t;
  return out;
}

PreferenceExample preference_example(const TokenShard& shard, int64_t sample) {
  return {sample, shard.part_tokens(sample, 0), shard.part_tokens(sample, 1), shard.part_tokens(sample, 2)};
}

double pairwise_accuracy(const std::vector<PairStats>& pairs) {
  if (pairs.empty()) return 0;
  double right = 0;
  for (const PairStats& p : pairs)
    right += p.reward_chosen > p.reward_rejected ? 1.0 : (p.reward_chosen == p.reward_rejected ? 0.5 : 0.0);
  return right / static_cast<double>(pairs.size());
}

namespace {

// Means over a set of pairs, the numbers logged per step and per eval.
struct PairMeans {
  double loss = 0, chosen = 0, rejected = 0, margin = 0, accuracy = 0, logp_chosen = 0, logp_rejected = 0;
  double logp_accuracy = 0;   // policy prefers chosen per token (mean log-prob per reply token), ties 1/2
};

PairMeans means_of(const std::vector<PairStats>& pairs) {
  PairMeans m;
  if (pairs.empty()) return m;
  for (const PairStats& p : pairs) {
    m.loss += p.loss;
    m.chosen += p.reward_chosen;
    m.rejected += p.reward_rejected;
    m.logp_chosen += p.logp_chosen;
    m.logp_rejected += p.logp_rejected;
    m.logp_accuracy += p.logp_chosen > p.logp_rejected ? 1.0 : (p.logp_chosen == p.logp_rejected ? 0.5 : 0.0);
  }
  const double n = static_cast<double>(pairs.size());
  m.loss /= n;
  m.chosen /= n;
  m.rejected /= n;
  m.logp_chosen /= n;
  m.logp_rejected /= n;
  m.logp_accuracy /= n;
  m.margin = m.chosen - m.rejected;
  m.accuracy = pairwise_accuracy(pairs);
  return m;
}

// The shard samples a run will read: the next `batches` training batches of a loader continuing from
// `loader_state`, then the held-out range. Sorted, without repeats.
std::vector<int64_t> samples_to_read(const std::shared_ptr<const TokenShard>& shard, const Tokenizer& tok,
                                     const LoaderOptions& opt, const json& loader_state, int64_t batches,
                                     SampleRange held_out) {
  std::set<int64_t> seen;
  PreferenceLoader sim(shard, tok, opt);
  sim.restore(loader_state);
  std::vector<PreferenceExample> ex;
  for (int64_t b = 0; b < batches && static_cast<int64_t>(seen.size()) < opt.range.size() && sim.next(ex); ++b)
    for (const auto& e : ex) seen.insert(e.sample);
  for (int64_t s = held_out.begin; s < held_out.end; ++s) seen.insert(s);
  return {seen.begin(), seen.end()};
}

}  // namespace

TrainSummary run_preference_training(const RecipeConfig& r) {
  if (r.stage != "dpo" && r.stage != "rm")
    fail(r.file.string(), ": stage '", r.stage, "' is not a preference stage (dpo, rm)");
  const bool reward_model = r.stage == "rm";
  if (reward_model && r.init_from.empty())
    log_warn(r.file.string(), ": stage 'rm' without init_from: the reward model starts from random weights");
  TrainingRun run(r, model_options_for(r, reward_model));
  const Tokenizer& tok = run.tok;

  StageData data = run.open_data(ShardKind::preference);
  auto shard = data.shard;
  const LoaderOptions& lopt = data.train;
  PreferenceLoader loader(shard, tok, lopt);
  if (run.resumed()) loader.restore(run.resumed_state.at("loader"));
  LoaderOptions eval_opt = data.eval;
  const SampleRange eval_range = eval_opt.range;
  eval_opt.shuffle = false;
  eval_opt.repeat = false;

  std::unique_ptr<PairObjective> objective = reward_model ? make_reward_objective(r, run) : make_dpo_objective(r, run);
  const int64_t steps_left = std::max<int64_t>(0, r.train.max_steps - run.step);
  objective->prepare(shard, samples_to_read(shard, tok, lopt, loader.state_json(), steps_left * r.train.grad_accum,
                                            eval_range));

  auto evaluate = [&]() -> std::optional<PairMeans> {
    if (eval_range.size() <= 0) return std::nullopt;
    PreferenceLoader held_out(shard, tok, eval_opt);
    std::vector<PreferenceExample> ex;
    std::vector<PairStats> all;
    while (held_out.next(ex)) {
      auto stats = objective->run(ex, preference_pair_batch(ex, r.data.seq_len, tok.pad()), 0.0, 0.0);
      all.insert(all.end(), stats.begin(), stats.end());
    }
    return means_of(all);
  };
  auto eval_fields = [&](const PairMeans& m, json& rec) {
    rec["eval_loss"] = m.loss;
    rec["eval_accuracy"] = m.accuracy;
    rec["eval_margin"] = m.margin;
    if (objective->reports_logps()) rec["eval_logp_accuracy"] = m.logp_accuracy;
  };

  auto metrics = run.open_metrics();
  TrainSummary sum;
  sum.start_step = run.step;
  StopSignals signals;
  const auto t_start = std::chrono::steady_clock::now();
  if (run.step == 0)
    if (auto m = evaluate()) {
      json rec = {{"step", 0}};
      eval_fields(*m, rec);
      metrics->write(rec);
      sum.first_eval_loss = m->loss;
      sum.first_eval_accuracy = m->accuracy;
      log_info("step 0 held-out pairs ", eval_range.size(), ": loss ", m->loss, ", accuracy ", m->accuracy);
    }

  Progress progress(r.stage, r.train.max_steps);
  std::vector<PreferenceExample> ex;
  const double pairs_per_step = static_cast<double>(r.train.micro_batch * r.train.grad_accum);
  bool first = true;
  while (run.step < r.train.max_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    run.model.params().zero_grad();
    std::vector<PairStats> pairs;
    double aux = 0;
    for (int64_t micro = 0; micro < r.train.grad_accum; ++micro) {
      if (!loader.next(ex)) fail(r.data.train.string(), ": no training pairs");
      auto stats = objective->run(ex, preference_pair_batch(ex, r.data.seq_len, tok.pad()), 1.0 / pairs_per_step,
                                  1.0 / static_cast<double>(r.train.grad_accum));
      pairs.insert(pairs.end(), stats.begin(), stats.end());
      aux += run.model.aux_loss() / static_cast<double>(r.train.grad_accum);
    }
    const PairMeans m = means_of(pairs);
    const double norm = AdamW::grad_norm(run.model.params());
    const double lr = run.finish_step(m.loss, norm);
    const int64_t step = run.step;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json rec = {{"step", step},
                {"loss", m.loss},
                {"rewards/chosen", m.chosen},
                {"rewards/rejected", m.rejected},
                {"rewards/accuracy", m.accuracy},
                {"rewards/margin", m.margin},
                {"lr", lr},
                {"grad_norm", norm},
                {"aux_loss", aux},
                {"pairs_per_s", static_cast<double>(pairs.size()) / secs},
                {"skipped_steps", run.skipped_steps}};
    if (objective->reports_logps()) {
      rec["logps/chosen"] = m.logp_chosen;
      rec["logps/rejected"] = m.logp_rejected;
    }
    if (first) sum.first_loss = m.loss, first = false;
    sum.last_loss = m.loss;
    if (step % r.train.eval_every == 0 || step == r.train.max_steps)
      if (auto e = evaluate()) {
        eval_fields(*e, rec);
        sum.last_eval_loss = e->loss;
        sum.last_eval_accuracy = e->accuracy;
      }
    if (step % r.train.log_every == 0 || rec.contains("eval_loss")) metrics->write(rec);
    std::ostringstream status;
    status.precision(4);
    status << "loss " << m.loss << " acc " << m.accuracy << " margin " << m.margin << " lr " << lr;
    if (rec.contains("eval_accuracy")) status << " eval_acc " << sum.last_eval_accuracy;
    progress.update(step, status.str());
    if (run.save_or_stop(signals, {{"loader", loader.state_json()}}, sum)) break;
  }
  progress.finish();
  run.finish_summary(sum, t_start);
  return sum;
}

}  // namespace stepwise
