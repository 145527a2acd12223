// Step3Config reading (YAML and config.json share one key table and one scalar parser), validation and writing.
// Every message names the source (file, and line for YAML) and the key at fault.
#include "model/step3_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/strings.h"
#include "core/fs.h"

namespace stepwise {
namespace {

enum class KeyKind { integer, real, boolean, text };

struct KeySpec {
  const char* name;
  KeyKind kind;
  bool required;
  int64_t Step3Config::*integer = nullptr;
  double Step3Config::*real = nullptr;
  bool Step3Config::*boolean = nullptr;
  std::string Step3Config::*text = nullptr;
};

KeySpec int_key(const char* name, bool required, int64_t Step3Config::*m) {
  return {name, KeyKind::integer, required, m, nullptr, nullptr, nullptr};
}
KeySpec real_key(const char* name, bool required, double Step3Config::*m) {
  return {name, KeyKind::real, required, nullptr, m, nullptr, nullptr};
}
KeySpec bool_key(const char* name, bool required, bool Step3Config::*m) {
  return {name, KeyKind::boolean, required, nullptr, nullptr, m, nullptr};
}
KeySpec text_key(const char* name, bool required, std::string Step3Config::*m) {
  return {name, KeyKind::text, required, nullptr, nullptr, nullptr, m};
}

// The one list of keys: order is config.json's order. The MoE sizes are checked by validate() when MoE layers exist.
const std::vector<KeySpec>& key_table() {
  static const std::vector<KeySpec> table = {
      int_key("hidden_size", true, &Step3Config::hidden_size),
      int_key("num_hidden_layers", true, &Step3Config::num_hidden_layers),
      int_key("num_attention_heads", true, &Step3Config::num_attention_heads),
      int_key("num_attention_groups", false, &Step3Config::num_attention_groups),
      int_key("head_dim", true, &Step3Config::head_dim),
      int_key("share_q_dim", true, &Step3Config::share_q_dim),
      int_key("intermediate_size", true, &Step3Config::intermediate_size),
      text_key("moe_layers_enum", true, &Step3Config::moe_layers_enum),
      int_key("moe_num_experts", false, &Step3Config::moe_num_experts),
      int_key("moe_top_k", false, &Step3Config::moe_top_k),
      int_key("moe_intermediate_size", false, &Step3Config::moe_intermediate_size),
      int_key("share_expert_dim", false, &Step3Config::share_expert_dim),
      bool_key("norm_expert_weight", false, &Step3Config::norm_expert_weight),
      int_key("vocab_size", true, &Step3Config::vocab_size),
      real_key("rms_norm_eps", false, &Step3Config::rms_norm_eps),
      real_key("rope_theta", false, &Step3Config::rope_theta),
      int_key("max_position_embedding", false, &Step3Config::max_position_embedding),
  };
  return table;
}

// HF metadata keys a config.json may carry besides the model's own keys; they do not affect the model.
const std::set<std::string>& tolerated_json_keys() {
  static const std::set<std::string> keys = {
      "architectures", "model_type", "torch_dtype", "transformers_version", "auto_map", "bos_token_id",
      "eos_token_id", "pad_token_id", "tie_word_embeddings", "use_cache", "initializer_range", "text_config",
      "vision_config", "_name_or_path", "max_position_embeddings"};
  return keys;
}

// One key's value as text plus where it came from ("file:line" for YAML, "file" for JSON).
struct RawValue {
  std::string text;
  std::string where;
};

[[noreturn]] void bad_value(const RawValue& raw, const char* key, const char* expected) {
  fail(raw.where, ": key '", key, "': expected ", expected, ", got '", raw.text, "'");
}

void assign(Step3Config& cfg, const KeySpec& spec, const RawValue& raw) {
  const std::string& s = raw.text;
  switch (spec.kind) {
    case KeyKind::integer: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size()) {
        // JSON writers sometimes emit integral values as 4096.0
        char* e = nullptr;
        const double d = s.empty() ? NAN : std::strtod(s.c_str(), &e);
        if (s.empty() || *e != '\0' || !std::isfinite(d) || d != std::floor(d)) bad_value(raw, spec.name, "an integer");
        v = static_cast<int64_t>(d);
      }
      cfg.*spec.integer = v;
      break;
    }
    case KeyKind::real: {
      char* e = nullptr;
      const double d = s.empty() ? NAN : std::strtod(s.c_str(), &e);
      if (s.empty() || *e != '\0' || !std::isfinite(d)) bad_value(raw, spec.name, "a number");
      cfg.*spec.real = d;
      break;
    }
    case KeyKind::boolean:
      if (s == "true" || s == "True") cfg.*spec.boolean = true;
      else if (s == "false" || s == "False") cfg.*spec.boolean = false;
      else bad_value(raw, spec.name, "true or false");
      break;
    case KeyKind::text:
      cfg.*spec.text = s;
      break;
  }
}

// Applies the raw key/value pairs: unknown keys and missing required keys are errors naming the source.
Step3Config build(const std::vector<std::pair<std::string, RawValue>>& pairs, const std::string& source,
                  bool tolerate_hf_metadata) {
  Step3Config cfg;
  std::map<std::string, const KeySpec*> by_name;
  for (const KeySpec& k : key_table()) by_name[k.name] = &k;
  std::set<std::string> seen;
  for (const auto& [key, raw] : pairs) {
    auto it = by_name.find(key);
    if (it == by_name.end()) {
      if (tolerate_hf_metadata && tolerated_json_keys().count(key)) continue;
      const std::string hint = closest_match(key, Step3Config::key_names());
      if (hint.empty()) fail(raw.where, ": unknown model config key '", key, "'");
      fail(raw.where, ": unknown model config key '", key, "'; did you mean '", hint, "'?");
    }
    if (!seen.insert(key).second) fail(raw.where, ": key '", key, "' given twice");
    assign(cfg, *it->second, raw);
  }
  for (const KeySpec& k : key_table())
    if (k.required && !seen.count(k.name)) fail(source, ": missing required model config key '", k.name, "'");
  cfg.validate(source);
  return cfg;
}

std::string yaml_scalar_text(const YAML::Node& node, const std::string& where, const std::string& key) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return "";
  if (node.IsSequence()) {   // moe_layers_enum: [1, 2, 3]
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar()) fail(where, ": key '", key, "': expected a scalar or a list of scalars");
      joined += (joined.empty() ? "" : ",") + item.Scalar();
    }
    return joined;
  }
  fail(where, ": key '", key, "': expected a scalar value, got a mapping");
}

std::string json_scalar_text(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
    return buf;
  }
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::string joined;
    for (const auto& item : v) joined += (joined.empty() ? "" : ",") + json_scalar_text(item, where, key);
    return joined;
  }
  fail(where, ": key '", key, "': expected a scalar value, got an object");
}

}  // namespace

const std::vector<std::string>& Step3Config::key_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const KeySpec& k : key_table()) v.push_back(k.name);
    return v;
  }();
  return names;
}

std::vector<int64_t> Step3Config::moe_layers() const {
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
  };
  std::vector<int64_t> layers;
  if (trim(moe_layers_enum).empty()) return layers;   // dense model
  size_t start = 0;
  while (true) {
    const size_t comma = std::min(moe_layers_enum.find(',', start), moe_layers_enum.size());
    const std::string item = trim(moe_layers_enum.substr(start, comma - start));
    int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      fail("'moe_layers_enum': '", item, "' is not a layer index (expected e.g. \"1,2,3\")");
    layers.push_back(v);
    if (comma == moe_layers_enum.size()) break;
    start = comma + 1;
  }
  std::sort(layers.begin(), layers.end());
  return layers;
}

std::vector<bool> Step3Config::moe_layer_mask() const {
  std::vector<bool> mask(static_cast<size_t>(std::max<int64_t>(num_hidden_layers, 0)), false);
  for (int64_t l : moe_layers())
    if (l >= 0 && l < num_hidden_layers) mask[static_cast<size_t>(l)] = true;
  return mask;
}

void Step3Config::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(source, ": key '", key, "' must be > 0 (got ", v, ")");
  };
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("head_dim", head_dim);
  positive("share_q_dim", share_q_dim);
  positive("vocab_size", vocab_size);
  positive("max_position_embedding", max_position_embedding);
  if (num_attention_groups != 1)
    fail(source, ": key 'num_attention_groups' must be 1 (MFA shares one K and one V head), got ",
         num_attention_groups);
  if (head_dim % 2 != 0) fail(source, ": key 'head_dim' must be even for rotate-half RoPE (got ", head_dim, ")");
  if (!(rms_norm_eps > 0)) fail(source, ": key 'rms_norm_eps' must be > 0 (got ", rms_norm_eps, ")");
  if (!(rope_theta > 0)) fail(source, ": key 'rope_theta' must be > 0 (got ", rope_theta, ")");
  std::vector<int64_t> layers;
  try {
    layers = moe_layers();
  } catch (const Error& e) {
    fail(source, ": key ", e.what());
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] >= num_hidden_layers)
      fail(source, ": key 'moe_layers_enum': layer ", layers[i], " is outside [0, ", num_hidden_layers, ")");
    if (i > 0 && layers[i] == layers[i - 1])
      fail(source, ": key 'moe_layers_enum': layer ", layers[i], " is listed twice");
  }
  if (static_cast<int64_t>(layers.size()) < num_hidden_layers) positive("intermediate_size", intermediate_size);
  if (!layers.empty()) {
    auto needed = [&](const char* key, int64_t v) {
      if (v <= 0) fail(source, ": key '", key, "' must be > 0 when moe_layers_enum lists MoE layers (got ", v,
                       v == 0 ? "; missing?)" : ")");
    };
    needed("moe_num_experts", moe_num_experts);
    needed("moe_top_k", moe_top_k);
    needed("moe_intermediate_size", moe_intermediate_size);
    needed("share_expert_dim", share_expert_dim);
    if (moe_top_k > moe_num_experts)
      fail(source, ": key 'moe_top_k' (", moe_top_k, ") exceeds moe_num_experts (", moe_num_experts, ")");
  }
}

std::string Step3Config::to_json() const {
  nlohmann::ordered_json j;
  j["architectures"] = nlohmann::json::array({"Step3TextForCausalLM"});
  j["model_type"] = "step3_text";
  for (const KeySpec& k : key_table()) {
    switch (k.kind) {
      case KeyKind::integer: j[k.name] = this->*k.integer; break;
      case KeyKind::real: j[k.name] = this->*k.real; break;
      case KeyKind::boolean: j[k.name] = this->*k.boolean; break;
      case KeyKind::text: j[k.name] = this->*k.text; break;
    }
  }
  return j.dump(2) + "\n";
}

void Step3Config::save_json(const std::filesystem::path& path) const { write_file_atomic(path, to_json()); }

Step3Config Step3Config::from_yaml_string(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(source, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg);
  }
  if (!root.IsMap()) fail(source, ": expected a mapping of Step3TextConfig keys");
  std::vector<std::pair<std::string, RawValue>> pairs;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const std::string where = cat(source, ":", kv.first.Mark().line + 1);
    pairs.push_back({key, RawValue{yaml_scalar_text(kv.second, where, key), where}});
  }
  return build(pairs, source, false);
}

Step3Config Step3Config::from_json_string(const std::string& text, const std::string& source) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": JSON syntax error: ", e.what());
  }
  if (!root.is_object()) fail(source, ": expected a JSON object of Step3TextConfig keys");
  if (root.contains("text_config") && root["text_config"].is_object()) root = root["text_config"];
  std::vector<std::pair<std::string, RawValue>> pairs;
  for (auto it = root.begin(); it != root.end(); ++it)
    pairs.push_back({it.key(), RawValue{json_scalar_text(it.value(), source, it.key()), source}});
  return build(pairs, source, true);
}

Step3Config Step3Config::load(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) return load(path / "config.json");
  const std::string ext = path.extension().string();
  const std::string text = read_file(path);
  if (ext == ".json") return from_json_string(text, path.string());
  if (ext == ".yaml" || ext == ".yml") return from_yaml_string(text, path.string());
  fail(path.string(), ": model config must be .yaml, .yml, .json or a checkpoint directory");
}

}  // namespace stepwise
