// load_serving_model: config -> Step3Model (no gradients) -> every ParamTable tensor read by name and shape.
#include "serve/model_loader.h"

#include "ckpt/safetensors.h"
#include "core/error.h"

namespace stepwise {

ServingModel load_serving_model(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": not a checkpoint directory");
  const Step3Config cfg = Step3Config::load(dir / "config.json");
  const fs::path weights = dir / "model.safetensors";
  if (!fs::exists(weights)) fail(weights.string(), ": missing (expected a training checkpoint's model.safetensors)");
  const SafetensorsFile file = SafetensorsFile::open(weights);
  auto model = std::make_unique<Step3Model<float>>(cfg, ModelOptions{}, false);
  ParamTable<float>& params = model->params();
  for (const ParamSpec& s : params.specs()) file.read_f32(s.name, s.shape, params.value(s));
  // loss-free balancing biases steer expert selection when the trainer saved them
  const std::vector<int64_t>& moe = model->moe_layers();
  bool any_bias = false;
  for (size_t i = 0; i < moe.size(); ++i) {
    const std::string name = cat("model.layers.", moe[i], ".moe.gate.expert_bias");
    if (!file.find(name)) continue;
    std::vector<float>& b = model->expert_bias(i);
    file.read_f32(name, {static_cast<int64_t>(b.size())}, b.data());
    any_bias = true;
  }
  model->options().expert_bias = any_bias;
  ServingModel out{std::move(model), Tokenizer::load(dir)};
  if (out.tokenizer.vocab_size() > cfg.vocab_size)
    fail(dir.string(), ": the tokenizer has ", out.tokenizer.vocab_size(), " tokens but config.json vocab_size is ",
         cfg.vocab_size);
  return out;
}

}  // namespace stepwise
