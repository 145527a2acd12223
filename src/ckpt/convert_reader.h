// CheckpointReader: opens any of the three checkpoint layouts (training: model.safetensors; HF: shards +
// model.safetensors.index.json; serving: attention/ + ffn/ parts with serve.json manifests, or one part directory),
// validates the layout's own bookkeeping (index, manifests, shared config.json), and reads any tensor as fp32,
// dequantising BF16 and block-scaled FP8. It knows nothing about which tensors a model needs (see convert_load.h).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/safetensors.h"
#include "core/fs.h"
#include "model/param_table.h"

namespace stepwise {

enum class CheckpointLayout : uint8_t { training, hf, serving, serving_part };
std::string_view checkpoint_layout_name(CheckpointLayout layout);   // "training", "hf", "serving", "serving part"

// Serving-checkpoint conventions shared by the writer and the reader.
constexpr std::string_view kServeManifestName = "serve.json";
constexpr std::string_view kServeManifestFormat = "stepwise-serving";
constexpr int kServeManifestVersion = 1;
constexpr std::string_view kHfIndexName = "model.safetensors.index.json";
constexpr std::string_view kScaleInvSuffix = "_scale_inv";   // "<weight>_scale_inv": F32 block scales of an F8 weight
std::string_view param_side_name(ParamSide side);              // "attention" / "ffn" (also the part directory names)

class CheckpointReader {
 public:
  // Detects the layout of `dir` and validates it. With `only_side`, a serving checkpoint opens just that part
  // (other layouts open everything; a serving part directory must be of that side). Throws Error naming the file.
  static CheckpointReader open(const fs::path& dir, std::optional<ParamSide> only_side = std::nullopt);

  CheckpointLayout layout() const { return layout_; }
  const fs::path& dir() const { return dir_; }
  const fs::path& config_path() const { return config_path_; }   // the config.json every part agrees with
  const std::string& config_text() const { return config_text_; }

  // Stored tensors, without the "_scale_inv" companions of F8 weights, in file order.
  const std::vector<std::string>& tensor_names() const { return names_; }
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;         // throws Error when absent
  const fs::path& file_of(const std::string& name) const;        // the safetensors file holding it
  // For a serving checkpoint: the part a tensor is stored in; nullopt for the other layouts.
  std::optional<ParamSide> part_of(const std::string& name) const;
  // Where a tensor of `side` would be stored (the file named in "missing tensor" errors).
  fs::path expected_file(ParamSide side) const;

  // Reads `name` into out (product of shape floats), checking the stored shape equals `shape`. F32/F64/BF16 convert
  // directly; F8_E4M3 needs its "<name>_scale_inv" of shape [ceil(rows/128), ceil(cols/128)] (per matrix for 3-D).
  void read_f32(const std::string& name, const std::vector<int64_t>& shape, float* out) const;

 private:
  struct Location {
    size_t file = 0;
    std::optional<ParamSide> part;
  };
  void add_file(const fs::path& path, std::optional<ParamSide> part);
  void open_hf();
  void open_serving_part(const fs::path& part_dir, std::optional<ParamSide> expected_side);
  void adopt_config(const fs::path& path);
  void finish();

  CheckpointLayout layout_ = CheckpointLayout::training;
  fs::path dir_;
  fs::path config_path_;
  std::string config_text_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Location> where_;   // every stored tensor, scale companions included
  std::vector<std::string> names_;
  std::map<ParamSide, fs::path> part_files_;
};

}  // namespace stepwise
