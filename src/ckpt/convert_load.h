// Loading any checkpoint layout (training, HF shards, serving parts) into an fp32 parameter arena, the API the
// trainer (init_from) and the server use. Validates the checkpoint against the model: config.json equal to the
// expected Step3Config, no missing or unexpected tensor, every shape as the ParamTable says; errors name tensor + file.
#pragma once
#include <map>
#include <optional>
#include <vector>

#include "ckpt/convert_reader.h"
#include "model/param_table.h"
#include "model/step3_config.h"

namespace stepwise {

// Optional per-layer tensors a checkpoint may hold besides the ParamTable: "model.layers.{i}.moe.gate.expert_bias"
// (E) of MoE layers trained with loss-free balancing. Attention side (they steer the router). Offsets are 0: they
// live outside the arena.
std::vector<ParamSpec> expert_bias_specs(const Step3Config& cfg);

// Throws Error("<config file>: config mismatch: <key> is <a> in the checkpoint but <b> in the model") when the
// checkpoint's config differs from `expected` in any Step3TextConfig key.
void check_config_matches(const Step3Config& expected, const CheckpointReader& reader);

// Checks the stored tensors against `specs` (restricted to `side` when set) plus the optional expert biases:
// missing tensor, unexpected tensor, wrong shape, or (serving) a tensor stored in the other side's part.
void check_checkpoint_tensors(const CheckpointReader& reader, const Step3Config& cfg,
                              const std::vector<ParamSpec>& specs, std::optional<ParamSide> side = std::nullopt);

struct LoadOptions {
  std::optional<ParamSide> side;   // load only this side's tensors (a serving checkpoint opens only that part)
};

struct LoadedCheckpoint {
  CheckpointLayout layout = CheckpointLayout::training;
  std::map<int64_t, std::vector<float>> expert_bias;   // layer -> (E), for the MoE layers whose bias is stored
};

// Validates `dir` against cfg/specs and copies every tensor (of options.side, if set) into arena + spec.offset as fp32.
// arena must hold param_arena_size(specs) floats; other sides' ranges are left untouched.
LoadedCheckpoint load_checkpoint_f32(const fs::path& dir, const Step3Config& cfg, const std::vector<ParamSpec>& specs,
                                     float* arena, const LoadOptions& options = {});

}  // namespace stepwise
