// `stepwise convert`: rewrites a checkpoint (training, HF or serving layout) as a serving checkpoint (attention/ and
// ffn/ parts split by ParamSpec::side), an HF layout (sharded safetensors + model.safetensors.index.json), or a
// training checkpoint (fp32 model.safetensors, no optimizer state). The output directory appears atomically.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "ckpt/convert_encode.h"
#include "ckpt/convert_reader.h"
#include "core/fs.h"

namespace stepwise {

enum class ConvertFormat : uint8_t { serve, hf, train };
std::string_view convert_format_name(ConvertFormat format);   // "serve", "hf", "train"
ConvertFormat parse_convert_format(std::string_view text);    // throws Error listing the valid names

// "2GB", "500MB", "64KiB", "1000" -> bytes (decimal units kB/MB/GB, binary KiB/MiB/GiB); throws Error when malformed.
int64_t parse_byte_size(std::string_view text);

struct ConvertOptions {
  ConvertFormat format = ConvertFormat::serve;
  std::optional<WeightDType> dtype;        // default: bf16 for serve, fp32 for hf and train (train is fp32 only)
  int64_t shard_bytes = 2'000'000'000;     // hf: a shard holds at most this many bytes (unless one tensor is larger)
  bool overwrite = false;                  // replace an existing output directory
};

struct ConvertSummary {
  CheckpointLayout source_layout = CheckpointLayout::training;
  WeightDType dtype = WeightDType::fp32;
  int64_t parameters = 0;                                 // tensors converted (expert biases included)
  std::vector<std::pair<fs::path, uint64_t>> weight_files;   // safetensors files written, with their sizes
};

ConvertSummary convert_checkpoint(const fs::path& from, const fs::path& to, const ConvertOptions& options);

// The shard file name HF uses: model-00001-of-00003.safetensors.
std::string hf_shard_name(int64_t index, int64_t count);   // index from 1

}  // namespace stepwise
