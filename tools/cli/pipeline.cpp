// Implementation of `stepwise run` (see pipeline.h).
#include "cli/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "ckpt/convert.h"
#include "ckpt/model_io.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/svg_chart.h"
#include "data/jsonl.h"
#include "data/loaders.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "eval/benchmark.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/runner_engine.h"
#include "model/step3_model.h"
#include "train/metrics.h"
#include "train/preference_trainer.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace stepwise {

namespace {

// ---------------------------------------------------------------------------------------------- configuration --

const std::vector<std::string> kTopKeys = {"output_dir", "tokenizer", "stages", "convert", "eval"};
const std::vector<std::string> kTokenizerKeys = {"inputs", "vocab_size"};
const std::vector<std::string> kStageKeys = {"name", "recipe", "overrides", "evaluate"};
const std::vector<std::string> kConvertKeys = {"dtype"};
const std::vector<std::string> kEvalKeys = {"benchmarks", "limit", "concurrency", "preference", "preference_pairs"};

void check_keys(const YAML::Node& node, const std::vector<std::string>& valid, const std::string& where,
                const fs::path& file) {
  if (!node.IsMap()) fail(file.string(), ": '", where, "' must be a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    const std::string hint = closest_match(key, valid);
    fail(file.string(), ": unknown key '", where.empty() ? key : where + "." + key, "'",
         hint.empty() ? "" : " (did you mean '" + hint + "'?)");
  }
}

template <class T>
T scalar(const YAML::Node& node, const std::string& key, const fs::path& file) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    fail(file.string(), ": key '", key, "': '", node.IsScalar() ? node.Scalar() : "(not a value)", "' is not valid");
  }
}

std::vector<fs::path> path_list(const YAML::Node& node, const std::string& key, const fs::path& file) {
  if (!node.IsSequence()) fail(file.string(), ": key '", key, "' must be a list of paths");
  std::vector<fs::path> out;
  for (const auto& item : node) out.emplace_back(scalar<std::string>(item, key, file));
  return out;
}

void apply_top_override(PipelineConfig& c, const std::string& key, const std::string& value) {
  const YAML::Node v = YAML::Load(value);
  if (key == "output_dir") c.output_dir = value;
  else if (key == "tokenizer.vocab_size") c.tokenizer_vocab_size = scalar<int64_t>(v, key, "override");
  else if (key == "convert.dtype") c.convert_dtype = value;
  else if (key == "eval.limit") c.eval_limit = scalar<int64_t>(v, key, "override");
  else if (key == "eval.concurrency") c.eval_concurrency = scalar<int64_t>(v, key, "override");
  else if (key == "eval.preference_pairs") c.preference_pairs = scalar<int64_t>(v, key, "override");
  else if (key == "eval.preference") c.preference = value;
  else {
    std::vector<std::string> valid = {"output_dir", "tokenizer.vocab_size", "convert.dtype", "eval.limit",
                                      "eval.concurrency", "eval.preference_pairs", "eval.preference"};
    for (const auto& s : c.stages) valid.push_back(s.name + ".<recipe key>");
    const std::string hint = closest_match(key, valid);
    fail("override: unknown key '", key, "'", hint.empty() ? "" : " (did you mean '" + hint + "'?)");
  }
}

}  // namespace

PipelineConfig load_pipeline(const fs::path& file, const std::vector<std::string>& overrides) {
  PipelineConfig c;
  c.file = file;
  const YAML::Node root = load_yaml_file(file);
  check_keys(root, kTopKeys, "", file);
  if (root["output_dir"]) c.output_dir = scalar<std::string>(root["output_dir"], "output_dir", file);
  if (const YAML::Node t = root["tokenizer"]) {
    check_keys(t, kTokenizerKeys, "tokenizer", file);
    if (t["inputs"]) c.tokenizer_inputs = path_list(t["inputs"], "tokenizer.inputs", file);
    if (t["vocab_size"]) c.tokenizer_vocab_size = scalar<int64_t>(t["vocab_size"], "tokenizer.vocab_size", file);
  }
  if (!root["stages"] || !root["stages"].IsSequence() || root["stages"].size() == 0)
    fail(file.string(), ": key 'stages' must list at least one stage ({name, recipe})");
  for (const auto& s : root["stages"]) {
    check_keys(s, kStageKeys, "stages[]", file);
    PipelineStage st;
    if (!s["name"] || !s["recipe"]) fail(file.string(), ": every stage needs 'name' and 'recipe'");
    st.name = scalar<std::string>(s["name"], "stages[].name", file);
    st.recipe = scalar<std::string>(s["recipe"], "stages[].recipe", file);
    if (s["evaluate"]) st.evaluate = scalar<bool>(s["evaluate"], "stages[].evaluate", file);
    if (s["overrides"])
      for (const auto& o : s["overrides"]) st.overrides.push_back(scalar<std::string>(o, "stages[].overrides", file));
    for (const auto& other : c.stages)
      if (other.name == st.name) fail(file.string(), ": stage name '", st.name, "' is used twice");
    c.stages.push_back(st);
  }
  if (const YAML::Node cv = root["convert"]) {
    check_keys(cv, kConvertKeys, "convert", file);
    if (cv["dtype"]) c.convert_dtype = scalar<std::string>(cv["dtype"], "convert.dtype", file);
  }
  if (const YAML::Node e = root["eval"]) {
    check_keys(e, kEvalKeys, "eval", file);
    if (e["benchmarks"]) c.benchmarks = path_list(e["benchmarks"], "eval.benchmarks", file);
    if (e["limit"]) c.eval_limit = scalar<int64_t>(e["limit"], "eval.limit", file);
    if (e["concurrency"]) c.eval_concurrency = scalar<int64_t>(e["concurrency"], "eval.concurrency", file);
    if (e["preference"]) c.preference = scalar<std::string>(e["preference"], "eval.preference", file);
    if (e["preference_pairs"]) c.preference_pairs = scalar<int64_t>(e["preference_pairs"], "eval.preference_pairs", file);
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) fail("override '", o, "': expected key=value");
    const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    const size_t dot = key.find('.');
    auto stage = std::find_if(c.stages.begin(), c.stages.end(),
                              [&](const PipelineStage& s) { return dot != std::string::npos && key.substr(0, dot) == s.name; });
    if (stage != c.stages.end())
      stage->overrides.push_back(key.substr(dot + 1) + "=" + value);
    else
      apply_top_override(c, key, value);
  }
  if (c.tokenizer_inputs.empty()) fail(file.string(), ": key 'tokenizer.inputs' must list the corpus files");
  for (const auto& p : c.tokenizer_inputs)
    if (!fs::exists(p)) fail(file.string(), ": tokenizer input '", p.string(), "' does not exist");
  for (const auto& p : c.benchmarks)
    if (!fs::exists(p)) fail(file.string(), ": benchmark '", p.string(), "' does not exist");
  parse_weight_dtype(c.convert_dtype);  // validates: Error listing the valid names
  return c;
}

namespace {

// --------------------------------------------------------------------------------------------------- stages --

struct StageResult {
  PipelineStage stage;
  RecipeConfig recipe;
  fs::path checkpoint;  // the stage's final checkpoint
  std::vector<nlohmann::json> metrics;
  double seconds = 0;   // training time of this invocation (0 when skipped)
  bool skipped = false;
};

int64_t checkpoint_step(const fs::path& ckpt) {
  return nlohmann::json::parse(read_file(ckpt / "trainer_state.json")).at("step").get<int64_t>();
}

fs::path ensure_tokenizer(const PipelineConfig& c) {
  const fs::path dir = c.output_dir / "tokenizer";
  if (fs::exists(dir / "tokenizer.model") && fs::exists(dir / "tokenizer.json")) {
    log_info("tokenizer: ", dir.string(), " exists, skipped");
    return dir;
  }
  TokenizerTrainOptions o;
  o.inputs = c.tokenizer_inputs;
  o.vocab_size = static_cast<int32_t>(c.tokenizer_vocab_size);
  Tokenizer::train(o, dir);
  return dir;
}

// The overrides that place a stage's recipe in the pipeline: its run directory, the pipeline's tokenizer and token
// cache, resuming, and the previous stage's checkpoint as init_from.
std::vector<std::string> stage_overrides(const PipelineConfig& c, const PipelineStage& stage, const fs::path& tokenizer,
                                         const fs::path& init_from) {
  std::vector<std::string> overrides = {"output.dir=" + (c.output_dir / stage.name).string(),
                                        "data.tokenizer=" + tokenizer.string(),
                                        "data.cache_dir=" + (c.output_dir / "cache").string(), "resume=auto"};
  if (!init_from.empty()) overrides.push_back("init_from=" + init_from.string());
  overrides.insert(overrides.end(), stage.overrides.begin(), stage.overrides.end());
  return overrides;
}

// Checks every stage's recipe and dataset, and every benchmark, before the first stage trains: a bad key, a missing
// file or a dataset in the wrong format for its stage fails in seconds instead of after the earlier stages' training.
// The token shards built here are the ones the stages then read from the cache.
void check_pipeline_inputs(const PipelineConfig& c, const fs::path& tokenizer_dir) {
  const Tokenizer tok = Tokenizer::load(tokenizer_dir);
  fs::path previous;  // where the previous evaluated stage will leave its checkpoint
  for (const PipelineStage& st : c.stages) {
    const RecipeConfig r = load_recipe(st.recipe, stage_overrides(c, st, tokenizer_dir, previous));
    const ShardKind kind = r.stage == "pretrain" ? ShardKind::pretrain
                           : r.stage == "sft"    ? ShardKind::sft
                                                 : ShardKind::preference;
    ensure_shard(kind, r.data.train, tok, c.output_dir / "cache");
    if (st.evaluate) previous = c.output_dir / st.name;
  }
  for (const fs::path& bench : c.benchmarks) {
    if (eval::detect_benchmark_kind(bench) == eval::BenchmarkKind::mcq) eval::load_mcq_benchmark(bench);
    else eval::load_qa_benchmark(bench);
  }
  if (!c.preference.empty()) ensure_shard(ShardKind::preference, c.preference, tok, c.output_dir / "cache");
}

StageResult run_stage(const PipelineConfig& c, const PipelineStage& stage, const fs::path& tokenizer,
                      const fs::path& init_from) {
  StageResult res;
  res.stage = stage;
  const fs::path run_dir = c.output_dir / stage.name;
  const std::vector<std::string> overrides = stage_overrides(c, stage, tokenizer, init_from);
  res.recipe = load_recipe(stage.recipe, overrides);
  auto latest = latest_checkpoint(run_dir);
  if (latest && checkpoint_step(*latest) >= res.recipe.train.max_steps) {
    log_info("stage ", stage.name, ": complete (", latest->string(), "), skipped");
    res.skipped = true;
  } else {
    log_info("stage ", stage.name, " (", res.recipe.stage, "): ", stage.recipe.string(),
             init_from.empty() ? "" : " from " + init_from.string());
    TrainSummary s = run_training(res.recipe);
    if (s.interrupted) fail("stage ", stage.name, " was interrupted; run the pipeline again to resume it");
    res.seconds = s.seconds;
    latest = latest_checkpoint(run_dir);
  }
  if (!latest) fail("stage ", stage.name, ": no checkpoint in ", run_dir.string());
  res.checkpoint = *latest;
  res.metrics = read_metrics(run_dir / "metrics.jsonl");
  write_file_atomic(run_dir / "loss.svg", plot_metrics_svg(res.metrics, stage.name));
  return res;
}

fs::path ensure_serving_checkpoint(const PipelineConfig& c, const StageResult& s) {
  const fs::path dir = c.output_dir / "serve" / s.stage.name;
  const fs::path stamp = dir / "source.txt";  // which training checkpoint it was converted from
  if (fs::exists(stamp) && read_file(stamp) == s.checkpoint.string()) return dir;
  ConvertOptions o;
  o.format = ConvertFormat::serve;
  o.dtype = parse_weight_dtype(c.convert_dtype);
  o.overwrite = true;
  convert_checkpoint(s.checkpoint, dir, o);
  write_file_atomic(stamp, s.checkpoint.string());
  return dir;
}

// ------------------------------------------------------------------------------------------------ evaluation --

// What a stored result was computed from: the checkpoint, the data file's content and how many of its items. A
// result is reused only when all three match, so a changed benchmark or eval.limit is evaluated again.
std::string result_stamp(const fs::path& checkpoint, const fs::path& data, int64_t items) {
  return cat(checkpoint.string(), "\n", data.string(), " ", content_hash(read_file(data)), "\nitems ", items, "\n");
}

std::vector<eval::EvalReport> evaluate_stage(const PipelineConfig& c, const StageResult& s, const fs::path& model_dir) {
  std::vector<eval::EvalReport> reports;
  std::unique_ptr<eval::EngineBackend> backend;  // loaded only when some benchmark is not evaluated yet
  for (const fs::path& bench : c.benchmarks) {
    const fs::path out = c.output_dir / "eval" / s.stage.name / bench.stem();
    const fs::path stamp = out / "source.txt";
    const std::string source = result_stamp(s.checkpoint, bench, c.eval_limit);
    if (fs::exists(out / "report.json") && fs::exists(stamp) && read_file(stamp) == source) {
      reports.push_back(eval::read_report(out / "report.json"));
      continue;
    }
    if (!backend) {
      EngineOptions eo;
      eo.model_dir = model_dir;
      backend = std::make_unique<eval::EngineBackend>(eo, c.eval_concurrency);
    }
    eval::EvalOptions o;
    o.bench = bench;
    o.limit = c.eval_limit;
    o.model_label = s.stage.name;
    // a pretrained base model has never seen the chat template: give it plain text prompts
    o.prompt_style = s.recipe.stage == "pretrain" ? eval::PromptStyle::plain : eval::PromptStyle::chat;
    // likelihood of each option's text: a small model knows facts long before it maps them to answer letters
    o.continuation = eval::ContinuationStyle::option_text;
    eval::EvalReport r = eval::run_eval(*backend, o);
    eval::write_report(out, r);
    write_file_atomic(stamp, source);
    reports.push_back(std::move(r));
  }
  return reports;
}

// Held-out preference pairs under a model: the share of the last N pairs whose chosen reply has the higher mean
// per-token log-probability (a tie counts 1/2), and the mean margin (chosen minus rejected mean log-probability, in
// nats per token), which keeps showing a stage's effect once the accuracy saturates; and the accuracy per `reason`
// label of the pairs (wrong_fact, unsafe, ... in the committed corpus), which shows what a stage learnt to tell apart.
struct PreferenceScore {
  double accuracy = NAN;
  double margin = NAN;
  std::map<std::string, double> by_reason;   // empty when the pairs carry no `reason`
};

// The `reason` of each held-out pair in shard order, or nothing when the records carry none.
std::vector<std::string> held_out_reasons(const fs::path& pairs_file, SampleRange range, int64_t num_samples) {
  const std::vector<nlohmann::json> records = jsonl_read(pairs_file);
  if (static_cast<int64_t>(records.size()) != num_samples) return {};
  std::vector<std::string> reasons;
  bool any = false;
  for (int64_t i = range.begin; i < range.end; ++i) {
    const auto& r = records[static_cast<size_t>(i)];
    reasons.push_back(r.contains("reason") && r["reason"].is_string() ? r["reason"].get<std::string>() : "");
    any = any || !reasons.back().empty();
  }
  return any ? reasons : std::vector<std::string>{};
}

PreferenceScore preference_score(const PipelineConfig& c, const StageResult& s, const fs::path& tokenizer_dir) {
  const fs::path out = c.output_dir / "eval" / s.stage.name / "preference.json";
  const std::string source = result_stamp(s.checkpoint, c.preference, c.preference_pairs);
  if (fs::exists(out)) {
    nlohmann::json j = nlohmann::json::parse(read_file(out));
    if (j.value("source", std::string()) == source && j.contains("by_reason"))
      return {j.at("accuracy").get<double>(), j.at("margin").get<double>(),
              j.at("by_reason").get<std::map<std::string, double>>()};
  }
  Tokenizer tok = Tokenizer::load(tokenizer_dir);
  Step3Model<float> model(Step3Config::load(s.checkpoint), ModelOptions{}, false);
  model.options().expert_bias = load_model_weights(s.checkpoint, model);
  auto shard = TokenShard::open(ensure_shard(ShardKind::preference, c.preference, tok, c.output_dir / "cache"));
  auto [train_range, eval_range] = split_holdout(shard->num_samples(), HoldOut{c.preference_pairs, 0.0});
  LoaderOptions lo;
  lo.batch_size = 8;
  lo.shuffle = false;
  lo.repeat = false;
  lo.range = eval_range;
  PreferenceLoader loader(shard, tok, lo);
  const std::vector<std::string> reasons = held_out_reasons(c.preference, eval_range, shard->num_samples());
  std::map<std::string, std::pair<double, int64_t>> reason_wins;   // reason -> (wins, pairs)
  std::vector<PreferenceExample> examples;
  double wins = 0, margin_sum = 0;
  int64_t pairs = 0;
  while (loader.next(examples)) {
    TokenBatch batch = preference_pair_batch(examples, 512, tok.pad());
    model.forward({batch.tokens.data(), batch.targets.data(), batch.pos.data(), batch.seg.data(), batch.B, batch.T});
    RowLogps lp = row_logps(batch, model.token_logprobs());
    const size_t n = examples.size();
    for (size_t i = 0; i < n; ++i) {
      const double chosen = lp.sum[i] / std::max<int64_t>(1, lp.count[i]);
      const double rejected = lp.sum[n + i] / std::max<int64_t>(1, lp.count[n + i]);
      const double win = chosen > rejected ? 1.0 : chosen == rejected ? 0.5 : 0.0;
      wins += win;
      margin_sum += chosen - rejected;
      if (static_cast<size_t>(pairs) < reasons.size() && !reasons[static_cast<size_t>(pairs)].empty()) {
        auto& [w, n] = reason_wins[reasons[static_cast<size_t>(pairs)]];
        w += win;
        ++n;
      }
      ++pairs;
    }
  }
  PreferenceScore score;
  score.accuracy = pairs ? wins / pairs : 0.0;
  score.margin = pairs ? margin_sum / pairs : 0.0;
  for (const auto& [reason, wn] : reason_wins) score.by_reason[reason] = wn.first / static_cast<double>(wn.second);
  write_file_atomic(out, nlohmann::json{{"source", source}, {"pairs", pairs}, {"accuracy", score.accuracy},
                                        {"margin", score.margin}, {"by_reason", score.by_reason}}.dump(2));
  return score;
}

// ---------------------------------------------------------------------------------------------------- report --

std::string fmt(double v, int digits = 3) {
  std::ostringstream os;
  os.precision(digits);
  os << std::fixed << v;
  return os.str();
}

std::pair<double, double> first_last(const std::vector<nlohmann::json>& metrics, const std::string& key) {
  double first = NAN, last = NAN;
  for (const auto& r : metrics)
    if (r.contains(key) && r[key].is_number()) {
      if (std::isnan(first)) first = r[key].get<double>();
      last = r[key].get<double>();
    }
  return {first, last};
}

std::string range_text(std::pair<double, double> v) {
  return std::isnan(v.first) ? "-" : fmt(v.first) + " → " + fmt(v.second);
}

}  // namespace

fs::path run_pipeline(const PipelineConfig& c) {
  fs::create_directories(c.output_dir);
  const fs::path tokenizer = ensure_tokenizer(c);
  check_pipeline_inputs(c, tokenizer);
  std::vector<StageResult> stages;
  fs::path init_from;
  for (const PipelineStage& st : c.stages) {
    stages.push_back(run_stage(c, st, tokenizer, init_from));
    if (st.evaluate) init_from = stages.back().checkpoint;
  }
  std::vector<std::string> names;
  std::vector<std::vector<eval::EvalReport>> reports;  // [stage][benchmark]
  std::vector<PreferenceScore> pref;
  for (const StageResult& s : stages) {
    if (!s.stage.evaluate) continue;
    log_info("evaluating ", s.stage.name);
    const fs::path serve_dir = ensure_serving_checkpoint(c, s);
    names.push_back(s.stage.name);
    reports.push_back(evaluate_stage(c, s, serve_dir));
    pref.push_back(c.preference.empty() ? PreferenceScore{} : preference_score(c, s, tokenizer));
  }

  std::ostringstream md;
  md << "# stepwise pipeline report\n\nPipeline `" << c.file.string() << "`, output `" << c.output_dir.string()
     << "`. Models are evaluated from bf16 serving checkpoints by decoding (greedy); MCQ likelihood scores each option's text "
     << "after the question (base model: plain prompt; later stages: chat template).\n\n## Training stages\n\n"
     << "| stage | kind | steps | train loss | held-out loss | held-out reward accuracy | time (s) | curves |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const StageResult& s : stages)
    md << "| " << s.stage.name << " | " << s.recipe.stage << " | " << checkpoint_step(s.checkpoint) << " | "
       << range_text(first_last(s.metrics, "loss")) << " | " << range_text(first_last(s.metrics, "eval_loss")) << " | "
       << range_text(first_last(s.metrics, "eval_accuracy")) << " | "
       << (s.skipped ? "(earlier run)" : fmt(s.seconds, 0)) << " | [" << s.stage.name << "/loss.svg](" << s.stage.name
       << "/loss.svg) |\n";
  std::vector<BarGroup> groups;
  auto add_group = [&](const std::string& label, const std::function<double(size_t)>& value) {
    BarGroup g{label, {}};
    bool any = false;
    for (size_t m = 0; m < names.size(); ++m) {
      g.values.push_back(value(m));
      any = any || std::isfinite(g.values.back());
    }
    if (any) groups.push_back(g);
  };
  for (size_t b = 0; b < c.benchmarks.size(); ++b) {
    std::vector<eval::EvalReport> side_by_side;
    for (const auto& r : reports) side_by_side.push_back(r[b]);
    std::string table = eval::comparison_markdown(side_by_side);
    if (table.rfind("# ", 0) == 0) table.erase(0, table.find('\n') + 1);  // the section heading below replaces it
    md << "\n## " << c.benchmarks[b].filename().string() << "\n" << table;
    const std::string stem = c.benchmarks[b].stem().string();
    add_group(stem + " gen acc", [&](size_t m) {
      return reports[m][b].mcq_generation ? reports[m][b].mcq_generation->overall.accuracy() : NAN;
    });
    add_group(stem + " lik acc", [&](size_t m) {
      return reports[m][b].mcq_likelihood ? reports[m][b].mcq_likelihood->overall.accuracy() : NAN;
    });
    add_group(stem + " ROUGE-L", [&](size_t m) { return reports[m][b].qa ? reports[m][b].qa->mean_rouge_l : NAN; });
  }
  if (!c.preference.empty()) {
    md << "\n## Held-out preference pairs\n\nShare of the last " << c.preference_pairs << " pairs of `"
       << c.preference.string() << "` whose chosen reply has the higher mean token log-probability, and the mean margin "
       << "(chosen minus rejected mean log-probability, nats per token); then the accuracy per kind of rejected reply."
       << "\n\n| model | accuracy | margin |";
    std::set<std::string> kinds;
    for (const PreferenceScore& p : pref)
      for (const auto& [reason, unused] : p.by_reason) kinds.insert(reason);
    for (const std::string& k : kinds) md << " " << k << " |";
    md << "\n|---|---|---|";
    for (size_t i = 0; i < kinds.size(); ++i) md << "---|";
    md << "\n";
    for (size_t m = 0; m < names.size(); ++m) {
      md << "| " << names[m] << " | " << fmt(pref[m].accuracy) << " | " << fmt(pref[m].margin) << " |";
      for (const std::string& k : kinds) {
        const auto it = pref[m].by_reason.find(k);
        md << " " << (it == pref[m].by_reason.end() ? "-" : fmt(it->second)) << " |";
      }
      md << "\n";
    }
    add_group("preference acc", [&](size_t m) { return pref[m].accuracy; });
  }
  md << "\n![results](report.svg)\n";
  write_file_atomic(c.output_dir / "report.md", md.str());
  write_file_atomic(c.output_dir / "report.svg",
                    svg_bar_chart("stepwise pipeline: held-out results per model", names, groups, "score", 900, 380));
  return c.output_dir / "report.md";
}

}  // namespace stepwise
