// Loads what the engine serves from a checkpoint directory (training, HF or serving layout: ckpt/model_io.h),
// with its optional loss-free expert biases, and the tokenizer.
#pragma once
#include <memory>
#include <optional>

#include "core/fs.h"
#include "data/tokenizer.h"
#include "model/step3_model.h"

namespace stepwise {

struct ServingModel {
  std::unique_ptr<Step3Model<float>> model;   // inference only (no gradient arena)
  Tokenizer tokenizer;
};

// Throws Error naming the file and tensor when something is missing or malformed, or when the tokenizer's vocabulary
// does not fit the model's. only_side: load just that AFD side's weights (ModelOptions::only_side).
ServingModel load_serving_model(const fs::path& dir, std::optional<ParamSide> only_side = std::nullopt);

}  // namespace stepwise
