// Implementation of checkpoint validation against a Step3Config / ParamTable and of fp32 loading (see convert_load.h).
#include "ckpt/convert_load.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace stepwise {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

std::vector<ParamSpec> expert_bias_specs(const Step3Config& cfg) {
  std::vector<ParamSpec> out;
  for (int64_t layer : cfg.moe_layers()) {
    ParamSpec s;
    s.name = cat("model.layers.", layer, ".moe.gate.expert_bias");
    s.shape = {cfg.moe_num_experts};
    s.count = cfg.moe_num_experts;
    s.layer = layer;
    s.side = ParamSide::attention;
    s.init = ParamInit::ones;   // unused: never initialised from the table
    out.push_back(std::move(s));
  }
  return out;
}

void check_config_matches(const Step3Config& expected, const CheckpointReader& reader) {
  const std::string source = reader.config_path().string();
  const Step3Config stored = Step3Config::from_json_string(reader.config_text(), source);
  const auto a = nlohmann::json::parse(stored.to_json());
  const auto b = nlohmann::json::parse(expected.to_json());
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!a.contains(it.key()) || a[it.key()] != it.value())
      fail(source, ": config mismatch: ", it.key(), " is ", a.value(it.key(), nlohmann::json()).dump(),
           " in the checkpoint but ", it.value().dump(), " in the model");
}

void check_checkpoint_tensors(const CheckpointReader& reader, const Step3Config& cfg,
                              const std::vector<ParamSpec>& specs, std::optional<ParamSide> side) {
  std::map<std::string, const ParamSpec*> known;
  const std::vector<ParamSpec> biases = expert_bias_specs(cfg);
  for (const ParamSpec& s : specs) known[s.name] = &s;
  for (const ParamSpec& s : biases) known[s.name] = &s;

  const bool serving = reader.layout() == CheckpointLayout::serving ||
                       reader.layout() == CheckpointLayout::serving_part;
  for (const ParamSpec& s : specs) {
    if (side && s.side != *side) continue;
    if (!reader.contains(s.name))
      fail(reader.expected_file(s.side).string(), ": missing tensor '", s.name, "' ", shape_str(s.shape), " (",
           checkpoint_layout_name(reader.layout()), " checkpoint ", reader.dir().string(), ")");
  }
  for (const std::string& name : reader.tensor_names()) {
    auto it = known.find(name);
    const fs::path& file = reader.file_of(name);
    if (it == known.end())
      fail(file.string(), ": unexpected tensor '", name, "' (not a parameter of this Step3 configuration)");
    const ParamSpec& s = *it->second;
    const std::optional<ParamSide> part = reader.part_of(name);
    if (serving && part && *part != s.side)
      fail(file.string(), ": tensor '", name, "' belongs to the ", param_side_name(s.side),
           " side but is stored in the ", param_side_name(*part), " part");
    if (side && s.side != *side) continue;
    const TensorInfo& t = reader.info(name);
    if (t.shape != s.shape)
      fail(file.string(), ": tensor '", name, "': shape ", shape_str(t.shape), ", expected ", shape_str(s.shape));
  }
}

LoadedCheckpoint load_checkpoint_f32(const fs::path& dir, const Step3Config& cfg, const std::vector<ParamSpec>& specs,
                                     float* arena, const LoadOptions& options) {
  const CheckpointReader reader = CheckpointReader::open(dir, options.side);
  check_config_matches(cfg, reader);
  check_checkpoint_tensors(reader, cfg, specs, options.side);
  LoadedCheckpoint loaded;
  loaded.layout = reader.layout();
  for (const ParamSpec& s : specs)
    if (!options.side || s.side == *options.side) reader.read_f32(s.name, s.shape, arena + s.offset);
  for (const ParamSpec& s : expert_bias_specs(cfg)) {
    if ((options.side && s.side != *options.side) || !reader.contains(s.name)) continue;
    std::vector<float>& bias = loaded.expert_bias[s.layer];
    bias.resize(static_cast<size_t>(s.count));
    reader.read_f32(s.name, s.shape, bias.data());
  }
  return loaded;
}

}  // namespace stepwise
