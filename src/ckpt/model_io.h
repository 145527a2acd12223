// Model weights <-> checkpoint tensors: the ParamTable's tensors under their HF names (plus the MoE selection
// biases when loss-free balancing is on), and loading them back with every name and shape checked.
#pragma once
#include <vector>

#include "ckpt/safetensors.h"
#include "model/step3_model.h"

namespace stepwise {

// Name of the loss-free balancing bias of MoE layer `layer` (not part of Step-3's public checkpoint).
std::string expert_bias_name(int64_t layer);

// Tensors of the model for model.safetensors (pointers into the model: keep it alive while writing).
std::vector<TensorToWrite> model_tensors(Step3Model<float>& model, bool with_expert_bias);

// Loads every parameter from `file`; Error naming the tensor when one is missing, has another shape, or when the
// file holds a tensor the model does not have. Expert biases are loaded when present. Parameters named in
// `may_be_absent` keep their current values when the file lacks them (a reward head over an SFT checkpoint).
void load_model_tensors(const SafetensorsFile& file, Step3Model<float>& model,
                        const std::vector<std::string>& may_be_absent = {});

}  // namespace stepwise
