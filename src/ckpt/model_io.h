// Model weights <-> checkpoint tensors: the ParamTable's tensors under their HF names (plus the MoE selection biases
// when loss-free balancing is on) for writing, and loading them back from any checkpoint layout (training, HF,
// serving) through load_checkpoint_f32, which validates names, shapes and config.
#pragma once
#include <vector>

#include "ckpt/safetensors.h"
#include "model/step3_model.h"

namespace stepwise {

// Name of the loss-free balancing bias of MoE layer `layer` (not part of Step-3's public checkpoint).
std::string expert_bias_name(int64_t layer);

// Tensors of the model for model.safetensors (pointers into the model: keep it alive while writing).
std::vector<TensorToWrite> model_tensors(Step3Model<float>& model, bool with_expert_bias);

// Loads every parameter the model holds (one AFD side's for a ModelOptions::only_side model) and the expert biases
// the checkpoint holds from checkpoint directory `dir`, whatever its layout. Error naming the tensor/file on a
// missing, extra or misshapen tensor or a config mismatch. Parameters named in `may_be_absent` keep their current
// values when the checkpoint lacks them (a reward head over an SFT checkpoint). Returns whether expert biases were
// loaded.
bool load_model_weights(const fs::path& dir, Step3Model<float>& model,
                        const std::vector<std::string>& may_be_absent = {});

}  // namespace stepwise
