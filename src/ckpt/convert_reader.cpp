// Implementation of CheckpointReader (see convert_reader.h): layout detection, validation of the HF index and the
// serving manifests, and fp32 reads with BF16 / block-FP8 dequantisation.
#include "ckpt/convert_reader.h"

#include <nlohmann/json.hpp>

#include "ckpt/fp8.h"
#include "core/error.h"

namespace stepwise {

using json = nlohmann::json;

namespace {
json parse_json_file(const fs::path& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<ParamSide> side_from_name(std::string_view name) {
  if (name == "attention") return ParamSide::attention;
  if (name == "ffn") return ParamSide::ffn;
  return std::nullopt;
}
}  // namespace

std::string_view checkpoint_layout_name(CheckpointLayout layout) {
  switch (layout) {
    case CheckpointLayout::training: return "training";
    case CheckpointLayout::hf: return "hf";
    case CheckpointLayout::serving: return "serving";
    case CheckpointLayout::serving_part: return "serving part";
  }
  return "?";
}

std::string_view param_side_name(ParamSide side) { return side == ParamSide::attention ? "attention" : "ffn"; }

CheckpointReader CheckpointReader::open(const fs::path& dir, std::optional<ParamSide> only_side) {
  CheckpointReader r;
  r.dir_ = dir;
  if (!fs::is_directory(dir)) fail(dir.string(), ": not a directory (expected a checkpoint directory)");
  const bool has_serving_parts =
      fs::exists(dir / "attention" / kServeManifestName) || fs::exists(dir / "ffn" / kServeManifestName);
  if (fs::exists(dir / kHfIndexName)) {
    r.layout_ = CheckpointLayout::hf;
    r.adopt_config(dir / "config.json");
    r.open_hf();
  } else if (fs::exists(dir / kServeManifestName)) {
    r.layout_ = CheckpointLayout::serving_part;
    r.open_serving_part(dir, only_side);
  } else if (has_serving_parts) {
    r.layout_ = CheckpointLayout::serving;
    if (fs::exists(dir / "config.json")) r.adopt_config(dir / "config.json");
    for (ParamSide side : {ParamSide::attention, ParamSide::ffn}) {
      if (only_side && *only_side != side) continue;
      const fs::path part_dir = dir / param_side_name(side);
      if (!fs::exists(part_dir / kServeManifestName))
        fail((part_dir / kServeManifestName).string(),
             ": missing: a serving checkpoint holds both the attention and the ffn part");
      r.open_serving_part(part_dir, side);
    }
  } else if (fs::exists(dir / "model.safetensors")) {
    r.layout_ = CheckpointLayout::training;
    r.adopt_config(dir / "config.json");
    r.add_file(dir / "model.safetensors", std::nullopt);
  } else {
    fail(dir.string(), ": not a checkpoint: it holds neither model.safetensors, ", kHfIndexName,
         ", nor serving parts (attention/", kServeManifestName, ", ffn/", kServeManifestName, ")");
  }
  r.finish();
  return r;
}

void CheckpointReader::adopt_config(const fs::path& path) {
  if (!fs::exists(path)) fail(path.string(), ": missing (every checkpoint layout holds config.json)");
  std::string text = read_file(path);
  json parsed;
  try {
    parsed = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
  if (config_path_.empty()) {
    config_path_ = path;
    config_text_ = std::move(text);
    return;
  }
  if (parsed != json::parse(config_text_))
    fail(path.string(), ": differs from ", config_path_.string(), " (the parts of a checkpoint share one config)");
}

void CheckpointReader::add_file(const fs::path& path, std::optional<ParamSide> part) {
  files_.push_back(SafetensorsFile::open(path));
  const size_t index = files_.size() - 1;
  for (const TensorInfo& t : files_.back().tensors()) {
    auto it = where_.find(t.name);
    if (it != where_.end())
      fail(path.string(), ": tensor '", t.name, "' is also stored in ", files_[it->second.file].path().string());
    where_[t.name] = Location{index, part};
  }
}

void CheckpointReader::open_hf() {
  const fs::path index_path = dir_ / kHfIndexName;
  const json index = parse_json_file(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    fail(index_path.string(), ": needs a \"weight_map\" object {tensor name: shard file}");
  std::map<std::string, std::vector<std::string>> names_by_file;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string() || !is_plain_file_name(it.value().get<std::string>()))
      fail(index_path.string(), ": weight_map entry '", it.key(), "' must name a shard file in the same directory");
    names_by_file[it.value().get<std::string>()].push_back(it.key());
  }
  for (const auto& [file, names] : names_by_file) {
    const fs::path shard = dir_ / file;
    if (!fs::is_regular_file(shard))
      fail(index_path.string(), ": weight_map names shard '", file, "' (for tensor '", names.front(), "') but ",
           shard.string(), " does not exist");
    add_file(shard, std::nullopt);
  }
  uint64_t stored_bytes = 0;
  for (const auto& [file, names] : names_by_file) {
    const fs::path shard = dir_ / file;
    for (const std::string& name : names) {
      auto it = where_.find(name);
      if (it == where_.end())
        fail(index_path.string(), ": weight_map maps tensor '", name, "' to ", file, " but ", shard.string(),
             " does not hold it");
      if (files_[it->second.file].path() != shard)
        fail(index_path.string(), ": weight_map maps tensor '", name, "' to ", file, " but it is stored in ",
             files_[it->second.file].path().string());
    }
  }
  for (const SafetensorsFile& f : files_)
    for (const TensorInfo& t : f.tensors()) {
      if (!index["weight_map"].contains(t.name))
        fail(f.path().string(), ": holds tensor '", t.name, "' that ", index_path.string(),
             " does not list in weight_map");
      stored_bytes += t.end - t.begin;
    }
  if (index.contains("metadata") && index["metadata"].is_object() && index["metadata"].contains("total_size")) {
    const json& total = index["metadata"]["total_size"];
    if (!total.is_number_unsigned() || total.get<uint64_t>() != stored_bytes)
      fail(index_path.string(), ": metadata.total_size is ", total.dump(), " but the shards hold ", stored_bytes,
           " bytes of tensors");
  }
}

void CheckpointReader::open_serving_part(const fs::path& part_dir, std::optional<ParamSide> expected_side) {
  const fs::path manifest_path = part_dir / kServeManifestName;
  const json m = parse_json_file(manifest_path);
  const std::string where = manifest_path.string();
  if (!m.is_object()) fail(where, ": not a JSON object");
  if (m.value("format", json()) != json(kServeManifestFormat))
    fail(where, ": \"format\" must be \"", kServeManifestFormat, "\"");
  if (!m.contains("version") || !m["version"].is_number_integer())
    fail(where, ": \"version\" missing or not an integer");
  if (m["version"].get<int64_t>() != kServeManifestVersion)
    fail(where, ": unsupported version ", m["version"].get<int64_t>(), " (this build reads ", kServeManifestVersion,
         ")");
  const std::optional<ParamSide> side =
      m.contains("part") && m["part"].is_string() ? side_from_name(m["part"].get<std::string>()) : std::nullopt;
  if (!side) fail(where, ": \"part\" must be \"attention\" or \"ffn\"");
  if (expected_side && *side != *expected_side)
    fail(where, ": part is '", param_side_name(*side), "' but the '", param_side_name(*expected_side),
         "' part was expected here");
  if (!m.contains("dtype") || !m["dtype"].is_string()) fail(where, ": \"dtype\" missing");
  if (!m.contains("tensors") || !m["tensors"].is_array()) fail(where, ": \"tensors\" must be a list");

  adopt_config(part_dir / "config.json");
  const fs::path weights = part_dir / "model.safetensors";
  add_file(weights, side);
  const SafetensorsFile& f = files_.back();
  for (const json& entry : m["tensors"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
      fail(where, ": every \"tensors\" entry needs a \"name\"");
    const std::string name = entry["name"].get<std::string>();
    const TensorInfo* t = f.find(name);
    if (!t) fail(where, ": lists tensor '", name, "' that ", weights.string(), " does not hold");
    if (entry.value("dtype", json()) != json(std::string(dtype_name(t->dtype))) ||
        entry.value("shape", json()) != json(t->shape))
      fail(where, ": tensor '", name, "': listed as ", entry.value("dtype", json()).dump(), " ",
           entry.value("shape", json()).dump(), " but stored as ", dtype_name(t->dtype), " ", shape_str(t->shape));
  }
  if (m["tensors"].size() != f.tensors().size()) {
    std::map<std::string, bool> listed;
    for (const json& entry : m["tensors"]) listed[entry["name"].get<std::string>()] = true;
    for (const TensorInfo& t : f.tensors())
      if (!listed.count(t.name)) fail(weights.string(), ": holds tensor '", t.name, "' that ", where, " does not list");
    fail(where, ": lists a tensor twice");
  }
  part_files_[*side] = weights;
}

void CheckpointReader::finish() {
  names_.clear();
  for (const SafetensorsFile& f : files_)
    for (const TensorInfo& t : f.tensors()) {
      if (t.dtype == DType::f8_e4m3 && !where_.count(t.name + std::string(kScaleInvSuffix)))
        fail(f.path().string(), ": F8_E4M3 tensor '", t.name, "' has no '", t.name, kScaleInvSuffix,
             "' block scales");
      if (ends_with(t.name, kScaleInvSuffix)) {
        const std::string base = t.name.substr(0, t.name.size() - kScaleInvSuffix.size());
        auto it = where_.find(base);
        if (it != where_.end() && files_[it->second.file].at(base).dtype == DType::f8_e4m3) continue;
      }
      names_.push_back(t.name);
    }
}

const TensorInfo& CheckpointReader::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(dir_.string(), ": no tensor '", name, "' in this ", checkpoint_layout_name(layout_),
                               " checkpoint");
  return files_[it->second.file].at(name);
}

const fs::path& CheckpointReader::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(dir_.string(), ": no tensor '", name, "'");
  return files_[it->second.file].path();
}

std::optional<ParamSide> CheckpointReader::part_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? std::nullopt : it->second.part;
}

fs::path CheckpointReader::expected_file(ParamSide side) const {
  switch (layout_) {
    case CheckpointLayout::training: return dir_ / "model.safetensors";
    case CheckpointLayout::hf: return dir_ / kHfIndexName;
    case CheckpointLayout::serving_part: return files_.front().path();
    case CheckpointLayout::serving: {
      auto it = part_files_.find(side);
      return it != part_files_.end() ? it->second : dir_ / param_side_name(side) / "model.safetensors";
    }
  }
  return dir_;
}

void CheckpointReader::read_f32(const std::string& name, const std::vector<int64_t>& shape, float* out) const {
  const TensorInfo& t = info(name);
  const SafetensorsFile& f = files_[where_.at(name).file];
  if (t.dtype != DType::f8_e4m3) {
    f.read_f32(name, shape, out);   // checks shape and dtype, names file and tensor
    return;
  }
  if (t.shape != shape)
    fail(f.path().string(), ": tensor '", name, "': shape ", shape_str(t.shape), ", expected ", shape_str(shape));
  if (shape.size() != 2 && shape.size() != 3)
    fail(f.path().string(), ": F8_E4M3 tensor '", name, "' must be 2-D or 3-D (scales are per 128x128 block)");
  const int64_t rows = shape[shape.size() - 2], cols = shape[shape.size() - 1];
  const int64_t matrices = shape.size() == 3 ? shape[0] : 1;
  std::vector<int64_t> scale_shape = fp8_scale_shape(rows, cols);   // [ceil(rows/128), ceil(cols/128)]
  const int64_t scales_per_matrix = scale_shape[0] * scale_shape[1];
  if (shape.size() == 3) scale_shape.insert(scale_shape.begin(), matrices);
  const std::string scale_name = name + std::string(kScaleInvSuffix);
  std::vector<float> scales(static_cast<size_t>(matrices * scales_per_matrix));
  files_[where_.at(scale_name).file].read_f32(scale_name, scale_shape, scales.data());
  const auto* codes = reinterpret_cast<const uint8_t*>(f.bytes(t).data());   // (matrices, rows, cols)
  for (int64_t m = 0; m < matrices; ++m)
    fp8_block_dequantize(codes + m * rows * cols, scales.data() + m * scales_per_matrix, rows, cols,
                         out + m * rows * cols);
}

}  // namespace stepwise
