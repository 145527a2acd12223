// Implementation of model weight I/O (see model_io.h).
#include "ckpt/model_io.h"

#include <algorithm>
#include <set>

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

void load_model_tensors(const SafetensorsFile& file, Step3Model<float>& model,
                        const std::vector<std::string>& may_be_absent) {
  ParamTable<float>& params = model.params();
  std::set<std::string> known;
  for (const ParamSpec& s : params.specs()) {
    known.insert(s.name);
    const bool optional = std::find(may_be_absent.begin(), may_be_absent.end(), s.name) != may_be_absent.end();
    if (optional && !file.find(s.name)) continue;
    file.read_f32(s.name, s.shape, params.value(s));
  }
  const auto& layers = model.moe_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string name = expert_bias_name(layers[i]);
    known.insert(name);
    std::vector<float>& b = model.expert_bias(i);
    if (file.find(name)) file.read_f32(name, {static_cast<int64_t>(b.size())}, b.data());
  }
  for (const TensorInfo& t : file.tensors())
    if (!known.count(t.name))
      fail(file.path().string(), ": tensor '", t.name, "' does not belong to this model configuration");
}

}  // namespace stepwise
