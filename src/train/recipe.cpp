// Implementation of recipe loading (see recipe.h): a table of dotted keys bound to RecipeConfig fields drives
// parsing, unknown-key suggestions and overrides, so the three cannot drift apart.
#include "train/recipe.h"

#include <cmath>
#include <functional>
#include <variant>

#include "core/error.h"
#include "core/strings.h"

namespace stepwise {

namespace {

using FieldPtr = std::variant<std::string*, fs::path*, int64_t*, uint64_t*, double*>;

struct Field {
  std::string key;
  FieldPtr ptr;
};

std::vector<Field> fields_of(RecipeConfig& c) {
  return {
      {"stage", &c.stage},
      {"model", &c.model},
      {"init_from", &c.init_from},
      {"resume", &c.resume},
      {"data.train", &c.data.train},
      {"data.tokenizer", &c.data.tokenizer},
      {"data.cache_dir", &c.data.cache_dir},
      {"data.seq_len", &c.data.seq_len},
      {"data.eval_samples", &c.data.eval_samples},
      {"train.device", &c.train.device},
      {"train.dtype", &c.train.dtype},
      {"train.seed", &c.train.seed},
      {"train.micro_batch", &c.train.micro_batch},
      {"train.grad_accum", &c.train.grad_accum},
      {"train.max_steps", &c.train.max_steps},
      {"train.warmup_steps", &c.train.warmup_steps},
      {"train.schedule", &c.train.schedule},
      {"train.lr", &c.train.lr},
      {"train.min_lr", &c.train.min_lr},
      {"train.weight_decay", &c.train.weight_decay},
      {"train.beta1", &c.train.beta1},
      {"train.beta2", &c.train.beta2},
      {"train.eps", &c.train.eps},
      {"train.grad_clip", &c.train.grad_clip},
      {"train.max_bad_steps", &c.train.max_bad_steps},
      {"train.eval_every", &c.train.eval_every},
      {"train.eval_batches", &c.train.eval_batches},
      {"train.log_every", &c.train.log_every},
      {"moe.balance", &c.moe.balance},
      {"moe.aux_loss_coef", &c.moe.aux_loss_coef},
      {"moe.bias_update_rate", &c.moe.bias_update_rate},
      {"dpo.loss", &c.dpo.loss},
      {"dpo.beta", &c.dpo.beta},
      {"dpo.label_smoothing", &c.dpo.label_smoothing},
      {"dpo.reference", &c.dpo.reference},
      {"simpo.gamma", &c.simpo.gamma},
      {"rm.center_coef", &c.rm.center_coef},
      {"output.dir", &c.output.dir},
      {"output.save_every", &c.output.save_every},
      {"output.keep_last", &c.output.keep_last},
  };
}

std::vector<std::string> keys_of(const std::vector<Field>& fields) {
  std::vector<std::string> keys;
  for (const auto& f : fields) keys.push_back(f.key);
  return keys;
}

[[noreturn]] void unknown_key(const fs::path& file, const std::string& key, const std::vector<Field>& fields) {
  std::string hint = closest_match(key, keys_of(fields));
  if (hint.empty()) fail(file.string(), ": unknown key '", key, "'");
  fail(file.string(), ": unknown key '", key, "' (did you mean '", hint, "'?)");
}

void assign(const fs::path& file, const std::string& key, const YAML::Node& node, const FieldPtr& ptr) {
  if (!node.IsScalar()) fail(file.string(), ": key '", key, "' must be a single value");
  const std::string text = node.Scalar();
  try {
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, fs::path>)
            *p = fs::path(text);
          else
            *p = node.as<T>();
        },
        ptr);
  } catch (const YAML::Exception&) {
    fail(file.string(), ": key '", key, "': '", text, "' is not a valid ",
         std::holds_alternative<double*>(ptr) ? "number" : (std::holds_alternative<std::string*>(ptr) ||
                                                            std::holds_alternative<fs::path*>(ptr))
                                                               ? "string"
                                                               : "integer");
  }
}

// Walks nested maps, binding every leaf's dotted key to its field.
void bind_fields(const fs::path& file, const YAML::Node& node, const std::string& prefix, const std::vector<Field>& fields) {
  if (!node.IsMap()) fail(file.string(), ": ", prefix.empty() ? "the recipe" : "'" + prefix + "'", " must be a mapping");
  for (const auto& kv : node) {
    const std::string key = prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>();
    auto it = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
    if (it != fields.end()) {
      assign(file, key, kv.second, it->ptr);
      continue;
    }
    const bool is_section = std::any_of(fields.begin(), fields.end(),
                                        [&](const Field& f) { return f.key.rfind(key + ".", 0) == 0; });
    if (is_section && kv.second.IsMap())
      bind_fields(file, kv.second, key, fields);
    else
      unknown_key(file, key, fields);
  }
}

// Sets root[a][b]... = value for the dotted path of one "a.b=value" override.
void apply_override(const fs::path& file, YAML::Node root, const std::string& override_text,
                    const std::vector<Field>& fields) {
  const size_t eq = override_text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail("override '", override_text, "': expected key=value with a dotted key, e.g. train.lr=1e-3");
  const std::string key = override_text.substr(0, eq);
  const std::string value = override_text.substr(eq + 1);
  if (std::none_of(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; }))
    unknown_key(fs::path("override"), key, fields);
  std::vector<std::string> parts = split(key, '.');
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    }
    if (!next.IsMap()) fail(file.string(), ": cannot override '", key, "': '", parts[i], "' is not a mapping");
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

void validate(const RecipeConfig& c) {
  const std::string f = c.file.string();
  auto one_of = [&](const std::string& key, const std::string& v, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += std::string(list.empty() ? "" : ", ") + a;
    }
    fail(f, ": key '", key, "': '", v, "' is not one of: ", list);
  };
  auto positive = [&](const std::string& key, double v) {
    if (!(v > 0)) fail(f, ": key '", key, "' must be > 0 (got ", v, ")");
  };
  one_of("stage", c.stage, {"pretrain", "sft", "dpo", "rm", "grpo"});
  one_of("train.device", c.train.device, {"cpu", "cuda"});
  one_of("train.dtype", c.train.dtype, {"fp32", "bf16"});
  one_of("train.schedule", c.train.schedule, {"cosine", "linear", "constant"});
  one_of("moe.balance", c.moe.balance, {"aux", "bias", "none"});
  one_of("dpo.loss", c.dpo.loss, {"dpo", "ipo", "simpo"});
  one_of("dpo.reference", c.dpo.reference, {"precompute", "frozen"});
  positive("dpo.beta", c.dpo.beta);
  if (!(c.dpo.label_smoothing >= 0 && c.dpo.label_smoothing < 0.5))
    fail(f, ": key 'dpo.label_smoothing' must be in [0, 0.5) (got ", c.dpo.label_smoothing, ")");
  if (!std::isfinite(c.simpo.gamma)) fail(f, ": key 'simpo.gamma' must be a finite number");
  if (!(c.rm.center_coef >= 0)) fail(f, ": key 'rm.center_coef' must be >= 0 (got ", c.rm.center_coef, ")");
  if (c.stage == "dpo" && c.init_from.empty())
    fail(f, ": stage 'dpo' needs 'init_from': the SFT checkpoint the policy starts from (and the reference model)");
  if (c.model.empty()) fail(f, ": key 'model' is required (a recipes/models/*.yaml or config.json path)");
  if (c.data.train.empty()) fail(f, ": key 'data.train' is required");
  if (c.data.tokenizer.empty()) fail(f, ": key 'data.tokenizer' is required");
  positive("data.seq_len", c.data.seq_len);
  positive("train.micro_batch", c.train.micro_batch);
  positive("train.grad_accum", c.train.grad_accum);
  positive("train.max_steps", c.train.max_steps);
  positive("train.lr", c.train.lr);
  positive("train.max_bad_steps", c.train.max_bad_steps);
  positive("train.eval_every", c.train.eval_every);
  positive("train.log_every", c.train.log_every);
  positive("output.save_every", c.output.save_every);
  if (c.train.min_lr < 0 || c.train.min_lr > c.train.lr) fail(f, ": key 'train.min_lr' must be in [0, train.lr]");
  if (c.train.warmup_steps < 0) fail(f, ": key 'train.warmup_steps' must be >= 0");
  if (c.train.grad_clip < 0) fail(f, ": key 'train.grad_clip' must be >= 0 (0 disables clipping)");
  if (c.data.eval_samples < 0) fail(f, ": key 'data.eval_samples' must be >= 0");
  if (!(c.train.beta1 >= 0 && c.train.beta1 < 1 && c.train.beta2 >= 0 && c.train.beta2 < 1))
    fail(f, ": keys 'train.beta1' and 'train.beta2' must be in [0, 1)");
}

}  // namespace

std::vector<std::string> recipe_keys() {
  RecipeConfig c;
  return keys_of(fields_of(c));
}

YAML::Node load_yaml_file(const fs::path& file) {
  try {
    return YAML::Load(read_file(file));
  } catch (const YAML::Exception& e) {
    fail(file.string(), ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
}

RecipeConfig load_recipe(const fs::path& file, const std::vector<std::string>& overrides) {
  RecipeConfig c;
  c.file = file;
  YAML::Node root = load_yaml_file(file);
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  auto fields = fields_of(c);
  for (const auto& o : overrides) apply_override(file, root, o, fields);
  bind_fields(file, root, "", fields);
  validate(c);
  c.resolved = root;
  return c;
}

}  // namespace stepwise
