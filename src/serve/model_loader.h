// Loads what the engine serves from a checkpoint directory: config.json, model.safetensors (fp32 training layout,
// HF names, optional loss-free expert biases) and the tokenizer. The one place that knows checkpoint layouts, so
// serving / HF layouts plug in here.
#pragma once
#include <memory>

#include "core/fs.h"
#include "data/tokenizer.h"
#include "model/step3_model.h"

namespace stepwise {

struct ServingModel {
  std::unique_ptr<Step3Model<float>> model;   // inference only (no gradient arena)
  Tokenizer tokenizer;
};

// Throws Error naming the file and tensor when something is missing or malformed, or when the tokenizer's vocabulary
// does not fit the model's.
ServingModel load_serving_model(const fs::path& dir);

}  // namespace stepwise
