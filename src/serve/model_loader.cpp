// load_serving_model: config -> Step3Model (no gradients) -> weights from any checkpoint layout (ckpt/model_io.h).
#include "serve/model_loader.h"

#include "ckpt/model_io.h"
#include "core/error.h"

namespace stepwise {

ServingModel load_serving_model(const fs::path& dir, std::optional<ParamSide> only_side) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": not a checkpoint directory");
  const Step3Config cfg = Step3Config::load(dir);
  ModelOptions options;
  options.only_side = only_side;
  auto model = std::make_unique<Step3Model<float>>(cfg, options, false);
  // loss-free balancing biases steer expert selection when the trainer saved them
  model->options().expert_bias = load_model_weights(dir, *model);
  ServingModel out{std::move(model), Tokenizer::load(dir)};
  if (out.tokenizer.vocab_size() > cfg.vocab_size)
    fail(dir.string(), ": the tokenizer has ", out.tokenizer.vocab_size(), " tokens but config.json vocab_size is ",
         cfg.vocab_size);
  return out;
}

}  // namespace stepwise
