// Implementation of model weight I/O (see model_io.h).
#include "ckpt/model_io.h"

#include <algorithm>

#include "ckpt/convert_load.h"
#include "core/error.h"

namespace stepwise {

std::string expert_bias_name(int64_t layer) { return cat("model.layers.", layer, ".moe.gate.expert_bias"); }

std::vector<TensorToWrite> model_tensors(Step3Model<float>& model, bool with_expert_bias) {
  std::vector<TensorToWrite> out;
  ParamTable<float>& params = model.params();
  for (const ParamSpec& s : params.specs()) out.push_back({s.name, DType::f32, s.shape, params.value(s)});
  if (with_expert_bias) {
    const auto& layers = model.moe_layers();
    for (size_t i = 0; i < layers.size(); ++i) {
      std::vector<float>& b = model.expert_bias(i);
      out.push_back({expert_bias_name(layers[i]), DType::f32, {static_cast<int64_t>(b.size())}, b.data()});
    }
  }
  return out;
}

bool load_model_weights(const fs::path& dir, Step3Model<float>& model, const std::vector<std::string>& may_be_absent) {
  ParamTable<float>& params = model.params();
  std::vector<ParamSpec> specs = params.specs();
  if (!may_be_absent.empty()) {
    const CheckpointReader reader = CheckpointReader::open(dir, params.only_side());
    std::erase_if(specs, [&](const ParamSpec& s) {
      return std::find(may_be_absent.begin(), may_be_absent.end(), s.name) != may_be_absent.end() &&
             !reader.contains(s.name);
    });
  }
  LoadOptions options;
  options.side = params.only_side();   // a model of one AFD side reads only that side's tensors
  LoadedCheckpoint loaded = load_checkpoint_f32(dir, model.config(), specs, params.data(), options);
  const auto& layers = model.moe_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    auto it = loaded.expert_bias.find(layers[i]);
    if (it == loaded.expert_bias.end()) continue;
    std::vector<float>& b = model.expert_bias(i);
    if (it->second.size() != b.size())
      fail(dir.string(), ": tensor '", expert_bias_name(layers[i]), "' has ", it->second.size(), " values, expected ",
           b.size());
    b = it->second;
  }
  return !loaded.expert_bias.empty();
}

}  // namespace stepwise
