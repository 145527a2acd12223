// Implementation of stage dpo's objective and its reference log-probs (see dpo.h).
#include "train/dpo.h"

#include <map>

#include "ckpt/model_io.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "train/losses.h"

namespace stepwise {

template <class T>
std::vector<std::pair<double, double>> pair_sequence_logps(Step3Model<T>& model, const TokenBatch& batch) {
  if (batch.B % 2 != 0) fail("pair batch: ", batch.B, " rows is not chosen + rejected pairs");
  model.forward(train_view(batch));
  const RowLogps rows = row_logps(batch, model.token_logprobs());
  const size_t n = static_cast<size_t>(batch.B / 2);
  std::vector<std::pair<double, double>> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = {rows.sum[i], rows.sum[n + i]};
  return out;
}

template <class T>
std::vector<T> sequence_grad_to_dloss(const TokenBatch& batch, const std::vector<double>& d_row, double scale) {
  std::vector<T> dloss(static_cast<size_t>(batch.B * batch.T), T(0));
  for (int64_t b = 0; b < batch.B; ++b)
    for (int64_t t = 0; t < batch.T; ++t) {
      const size_t at = static_cast<size_t>(b * batch.T + t);
      if (batch.targets[at] != kIgnoreTarget) dloss[at] = static_cast<T>(-d_row[static_cast<size_t>(b)] * scale);
    }
  return dloss;
}

template <class T>
std::vector<DpoPair> dpo_forward_backward(Step3Model<T>& policy, const TokenBatch& batch,
                                          const std::vector<std::pair<double, double>>& reference,
                                          const PreferenceLossConfig& cfg, double grad_scale, double aux_weight) {
  const size_t n = static_cast<size_t>(batch.B / 2);
  if (batch.B % 2 != 0 || reference.size() != n)
    fail("dpo: ", batch.B, " rows and ", reference.size(), " reference pairs do not match");
  policy.forward(train_view(batch));
  const RowLogps rows = row_logps(batch, policy.token_logprobs());
  std::vector<DpoPair> out(n);
  std::vector<double> d_row(2 * n, 0.0);   // dL / d(sequence log-prob) per row
  for (size_t i = 0; i < n; ++i) {
    PairLogps& p = out[i].logps;
    p.policy_chosen = rows.sum[i];
    p.policy_rejected = rows.sum[n + i];
    p.ref_chosen = reference[i].first;
    p.ref_rejected = reference[i].second;
    p.len_chosen = rows.count[i];
    p.len_rejected = rows.count[n + i];
    out[i].loss = preference_loss(cfg, p);
    d_row[i] = out[i].loss.d_chosen;
    d_row[n + i] = out[i].loss.d_rejected;
  }
  if (grad_scale > 0) {
    const std::vector<T> dloss = sequence_grad_to_dloss<T>(batch, d_row, grad_scale);
    policy.backward(dloss.data(), aux_weight);
  }
  return out;
}

template std::vector<std::pair<double, double>> pair_sequence_logps(Step3Model<float>&, const TokenBatch&);
template std::vector<std::pair<double, double>> pair_sequence_logps(Step3Model<double>&, const TokenBatch&);
template std::vector<float> sequence_grad_to_dloss(const TokenBatch&, const std::vector<double>&, double);
template std::vector<double> sequence_grad_to_dloss(const TokenBatch&, const std::vector<double>&, double);
template std::vector<DpoPair> dpo_forward_backward(Step3Model<float>&, const TokenBatch&,
                                                   const std::vector<std::pair<double, double>>&,
                                                   const PreferenceLossConfig&, double, double);
template std::vector<DpoPair> dpo_forward_backward(Step3Model<double>&, const TokenBatch&,
                                                   const std::vector<std::pair<double, double>>&,
                                                   const PreferenceLossConfig&, double, double);

namespace {

// Reference log-probs per shard sample, persisted as JSON in the run directory. The key (init_from, tokenizer,
// corpus content, seq_len) must match for a saved file to be used; doubles round-trip exactly through JSON.
class ReferenceCache {
 public:
  ReferenceCache(fs::path path, json key) : path_(std::move(path)), key_(std::move(key)) {
    if (!fs::exists(path_)) return;
    json saved;
    try {
      saved = json::parse(read_file(path_));
    } catch (const json::exception& e) {
      log_warn(path_.string(), ": unreadable (", e.what(), "); recomputing reference log-probs");
      return;
    }
    if (!saved.is_object() || saved.value("key", json()) != key_) {
      log_info(path_.string(), ": made for another init_from, corpus or seq_len; recomputing");
      return;
    }
    for (const auto& [sample, v] : saved.at("logps").items())
      values_[std::stoll(sample)] = {v.at(0).get<double>(), v.at(1).get<double>()};
  }

  const std::pair<double, double>* find(int64_t sample) const {
    auto it = values_.find(sample);
    return it == values_.end() ? nullptr : &it->second;
  }
  void put(int64_t sample, std::pair<double, double> v) { values_[sample] = v; }

  void save() const {
    json logps = json::object();
    for (const auto& [sample, v] : values_) logps[std::to_string(sample)] = {v.first, v.second};
    fs::create_directories(path_.parent_path());
    write_file_atomic(path_, json{{"version", 1}, {"key", key_}, {"logps", logps}}.dump());
  }

 private:
  fs::path path_;
  json key_;
  std::map<int64_t, std::pair<double, double>> values_;
};

class DpoObjective : public PairObjective {
 public:
  DpoObjective(const RecipeConfig& r, TrainingRun& run) : r_(r), run_(run) {
    loss_.kind = parse_preference_loss(r.dpo.loss, r.file.string() + ": dpo.loss");
    loss_.beta = r.dpo.beta;
    loss_.label_smoothing = r.dpo.label_smoothing;
    loss_.gamma = r.simpo.gamma;
    if (uses_reference() && r.dpo.reference == "frozen") reference_ = load_reference();
  }

  bool reports_logps() const override { return true; }

  void prepare(const std::shared_ptr<const TokenShard>& shard, const std::vector<int64_t>& samples) override {
    if (!uses_reference() || reference_) return;
    const json key = {{"init_from", fs::absolute(r_.init_from).lexically_normal().string()},
                      {"tokenizer_hash", run_.tok.hash()},
                      {"corpus_hash", shard->source_hash()},
                      {"seq_len", r_.data.seq_len}};
    cache_ = std::make_unique<ReferenceCache>(r_.output.dir / "reference_logps.json", key);
    std::vector<int64_t> missing;
    for (int64_t s : samples)
      if (!cache_->find(s)) missing.push_back(s);
    if (missing.empty()) return;
    auto reference = load_reference();
    Progress progress("reference log-probs", static_cast<int64_t>(missing.size()));
    const size_t chunk = static_cast<size_t>(r_.train.micro_batch);
    for (size_t at = 0; at < missing.size(); at += chunk) {
      std::vector<PreferenceExample> ex;
      for (size_t i = at; i < std::min(missing.size(), at + chunk); ++i)
        ex.push_back(preference_example(*shard, missing[i]));
      auto logps = pair_sequence_logps(*reference, preference_pair_batch(ex, r_.data.seq_len, run_.tok.pad()));
      for (size_t i = 0; i < ex.size(); ++i) cache_->put(ex[i].sample, logps[i]);
      progress.update(static_cast<int64_t>(std::min(missing.size(), at + chunk)));
    }
    progress.finish();
    cache_->save();
    log_info("reference log-probs of ", missing.size(), " pairs cached in ", (r_.output.dir / "reference_logps.json").string());
  }

  std::vector<PairStats> run(const std::vector<PreferenceExample>& examples, const TokenBatch& batch,
                             double grad_scale, double aux_weight) override {
    const size_t n = examples.size();
    std::vector<std::pair<double, double>> ref(n, {0.0, 0.0});
    if (reference_) {
      ref = pair_sequence_logps(*reference_, batch);
    } else if (uses_reference()) {
      for (size_t i = 0; i < n; ++i) {
        const auto* v = cache_ ? cache_->find(examples[i].sample) : nullptr;
        if (!v) fail("dpo: no reference log-probs for preference sample ", examples[i].sample, " (not prepared)");
        ref[i] = *v;
      }
    }
    const std::vector<DpoPair> pairs = dpo_forward_backward(run_.model, batch, ref, loss_, grad_scale, aux_weight);
    std::vector<PairStats> stats(n);
    for (size_t i = 0; i < n; ++i) {
      const DpoPair& p = pairs[i];
      stats[i] = {p.loss.loss, p.loss.reward_chosen, p.loss.reward_rejected,
                  p.logps.policy_chosen / static_cast<double>(std::max<int64_t>(1, p.logps.len_chosen)),
                  p.logps.policy_rejected / static_cast<double>(std::max<int64_t>(1, p.logps.len_rejected))};
    }
    return stats;
  }

 private:
  bool uses_reference() const { return loss_.kind != PreferenceLossKind::simpo; }

  std::unique_ptr<Step3Model<float>> load_reference() const {
    ModelOptions o = run_.mopt;
    auto ref = std::make_unique<Step3Model<float>>(run_.cfg, o, /*with_grad=*/false);
    load_init_from(r_, run_.tok, *ref);
    return ref;
  }

  const RecipeConfig& r_;
  TrainingRun& run_;
  PreferenceLossConfig loss_;
  std::unique_ptr<Step3Model<float>> reference_;   // frozen mode
  std::unique_ptr<ReferenceCache> cache_;          // precompute mode
};

}  // namespace

std::unique_ptr<PairObjective> make_dpo_objective(const RecipeConfig& recipe, TrainingRun& run) {
  return std::make_unique<DpoObjective>(recipe, run);
}

}  // namespace stepwise
