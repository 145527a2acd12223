// Implementation of the shared training scaffolding (see training_run.h).
#include "train/training_run.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "ckpt/model_io.h"
#include "core/error.h"
#include "core/log.h"

namespace stepwise {

namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

const RecipeConfig& checked_device(const RecipeConfig& r) {
  if (r.train.device == "cuda") {
#ifdef STEPWISE_HAS_CUDA
    if (r.stage != "pretrain" && r.stage != "sft")
      fail(r.file.string(), ": train.device 'cuda': stage '", r.stage,
           "' trains on the CPU only for now (train.device: cpu); pretrain and sft train on CUDA");
    return r;
#else
    fail(r.file.string(), ": train.device 'cuda': this build has no CUDA backend (configure with -DSTEPWISE_CUDA=ON)");
#endif
  }
  if (r.train.device != "cpu") fail(r.file.string(), ": train.device '", r.train.device, "': expected cpu or cuda");
  if (r.train.dtype != "fp32")
    fail(r.file.string(), ": train.dtype '", r.train.dtype,
         "': the CPU backend trains in fp32 (bf16 needs train.device: cuda)");
  return r;
}

bool on_cuda(const RecipeConfig& r) { return r.train.device == "cuda"; }

Step3Config model_config_for(const RecipeConfig& r, const Tokenizer& tok) {
  Step3Config cfg = Step3Config::load(r.model);
  if (cfg.vocab_size != tok.vocab_size()) {
    log_info("model vocab_size ", cfg.vocab_size, " -> ", tok.vocab_size(), " (the tokenizer's)");
    cfg.vocab_size = tok.vocab_size();
  }
  cfg.validate(r.model.string());
  return cfg;
}

fs::path resume_dir_of(const RecipeConfig& r) {
  if (r.resume == "auto") {
    if (auto last = latest_checkpoint(r.output.dir)) return *last;
    return {};
  }
  if (r.resume == "none") return {};
  if (!fs::exists(fs::path(r.resume) / "trainer_state.json"))
    fail(r.file.string(), ": resume: '", r.resume, "' is not a training checkpoint (no trainer_state.json)");
  return r.resume;
}

}  // namespace

struct StopSignals::Saved {
  struct sigaction old_int {}, old_term {};
};

StopSignals::StopSignals() : saved_(std::make_unique<Saved>()) {
  g_stop_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &saved_->old_int);
  sigaction(SIGTERM, &sa, &saved_->old_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &saved_->old_int, nullptr);
  sigaction(SIGTERM, &saved_->old_term, nullptr);
}

int StopSignals::received() const { return g_stop_signal.load(); }

TrainBatch train_view(const TokenBatch& b) {
  return {b.tokens.data(), b.targets.data(), b.pos.data(), b.seg.data(), b.B, b.T};
}

ModelOptions model_options_for(const RecipeConfig& r, bool score_head) {
  ModelOptions m;
  m.aux_loss_coef = r.moe.balance == "aux" ? r.moe.aux_loss_coef : 0.0;
  m.expert_bias = r.moe.balance == "bias";
  m.score_head = score_head;
  return m;
}

void load_init_from(const RecipeConfig& r, const Tokenizer& tok, Step3Model<float>& model,
                    const std::vector<std::string>& may_be_absent) {
  if (!fs::exists(r.init_from / "config.json"))
    fail(r.file.string(), ": init_from: no checkpoint at '", r.init_from.string(), "' (config.json missing)");
  if (fs::exists(r.init_from / "tokenizer.model") && Tokenizer::load(r.init_from).hash() != tok.hash())
    fail(r.file.string(), ": init_from checkpoint '", r.init_from.string(), "' was trained with another tokenizer than '",
         r.data.tokenizer.string(), "'");
  load_model_weights(r.init_from, model, may_be_absent);
}

TrainingRun::TrainingRun(const RecipeConfig& r, ModelOptions model_options)
    : recipe(checked_device(r)),
      tok(Tokenizer::load(r.data.tokenizer)),
      cfg(model_config_for(r, tok)),
      mopt(model_options),
      model(cfg, mopt, !on_cuda(r)),   // on cuda the gradients live on the device
      opt(model.params(), {r.train.beta1, r.train.beta2, r.train.eps, r.train.weight_decay}),
      schedule{r.train.schedule, r.train.lr, r.train.min_lr, r.train.warmup_steps, r.train.max_steps} {
  model.params().init(r.train.seed);
  resume_from = resume_dir_of(r);
  if (!resumed()) {
    if (!r.init_from.empty()) {
      load_init_from(r, tok, model, mopt.score_head ? std::vector<std::string>{kScoreHeadName} : std::vector<std::string>{});
      log_info("initialised from ", r.init_from.string());
    }
  } else {
    resumed_state = nlohmann::json::parse(read_file(resume_from / "trainer_state.json"));
    const std::string stage = resumed_state.value("stage", r.stage);
    if (stage != r.stage)
      fail(r.file.string(), ": resume: checkpoint '", resume_from.string(), "' is from stage '", stage,
           "', not '", r.stage, "' (use another output.dir or resume=none)");
    step = resumed_state.at("step").get<int64_t>();
    skipped_steps = resumed_state.value("skipped_steps", int64_t(0));
    load_model_weights(resume_from, model);
    opt.load_state(SafetensorsFile::open(resume_from / "optimizer.safetensors"), model.params(),
                   resumed_state.at("optimizer_steps").get<int64_t>());
    log_info("resuming from ", resume_from.string(), " at step ", step);
  }
  std::ostringstream text;
  text << r.resolved << "\n";
  recipe_text_ = text.str();
#ifdef STEPWISE_HAS_CUDA
  if (on_cuda(r)) backend = make_cuda_backend(*this);
#endif
  if (!backend) backend = make_cpu_backend(*this);
}

std::unique_ptr<MetricsLog> TrainingRun::open_metrics() const {
  fs::create_directories(recipe.output.dir);
  return std::make_unique<MetricsLog>(recipe.output.dir / "metrics.jsonl", resumed() ? step : -1);
}

double TrainingRun::finish_step(double loss, double grad_norm) {
  ++step;
  const double lr = schedule.at(step);
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    bad_in_a_row_ = 0;
    backend->update(lr, grad_norm);
    return lr;
  }
  ++skipped_steps;
  ++bad_in_a_row_;
  log_warn("step ", step, ": non-finite loss or gradient (loss ", loss, ", grad_norm ", grad_norm,
           "): update skipped (", bad_in_a_row_, " in a row)");
  if (bad_in_a_row_ >= recipe.train.max_bad_steps)
    fail("stopping at step ", step, ": ", bad_in_a_row_, " consecutive steps with non-finite loss or gradients ",
         "(train.max_bad_steps = ", recipe.train.max_bad_steps, "); lower train.lr or check the data");
  return lr;
}

fs::path TrainingRun::save(const nlohmann::json& extra_state) {
  backend->sync_to_host();
  CheckpointContents c;
  c.config = nlohmann::json::parse(cfg.to_json());
  c.generation_config = {{"eos_token_id", tok.eot()}, {"pad_token_id", tok.pad()}, {"max_new_tokens", 256}};
  c.model = model_tensors(model, mopt.expert_bias);
  c.optimizer = opt.state_tensors(model.params());
  c.trainer_state = {{"step", step},   {"optimizer_steps", opt.steps()}, {"skipped_steps", skipped_steps},
                     {"stage", recipe.stage}, {"tokenizer_hash", tok.hash()}};
  for (const auto& [key, value] : extra_state.items()) c.trainer_state[key] = value;
  c.tokenizer_dir = recipe.data.tokenizer;
  c.extra_files = {{"recipe.yaml", recipe_text_}};
  return save_checkpoint(recipe.output.dir, step, c, static_cast<int>(recipe.output.keep_last));
}

bool TrainingRun::save_or_stop(const StopSignals& signals, const nlohmann::json& extra_state, TrainSummary& summary) {
  const bool stop = signals.received() != 0;
  if (step % recipe.output.save_every == 0 || step == recipe.train.max_steps || stop)
    summary.last_checkpoint = save(extra_state);
  if (stop) {
    log_info("signal ", signals.received(), ": saved ", summary.last_checkpoint.string(), " and stopping");
    summary.interrupted = true;
  }
  return stop;
}

void TrainingRun::finish_summary(TrainSummary& summary, std::chrono::steady_clock::time_point start) const {
  summary.end_step = step;
  summary.skipped_steps = skipped_steps;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (summary.last_checkpoint.empty())
    if (auto last = latest_checkpoint(recipe.output.dir)) summary.last_checkpoint = *last;
}

StageData TrainingRun::open_data(ShardKind kind) const {
  const RecipeConfig& r = recipe;
  StageData d;
  d.shard = TokenShard::open(ensure_shard(kind, r.data.train, tok, r.data.cache_dir));
  auto [train_range, eval_range] = split_holdout(d.shard->num_samples(), HoldOut{r.data.eval_samples, 0.0});
  d.train.batch_size = r.train.micro_batch;
  d.train.seq_len = r.data.seq_len;
  d.train.seed = r.train.seed;
  d.train.range = train_range;
  d.eval = d.train;
  d.eval.range = eval_range;
  return d;
}

}  // namespace stepwise
