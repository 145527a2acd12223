// Implementation of `stepwise convert` (see convert.h): read + validate the source with CheckpointReader, then write
// one of the three layouts into a temporary sibling directory that is renamed into place when complete.
#include "ckpt/convert.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.h"
#include "ckpt/convert_load.h"
#include "ckpt/fp8.h"
#include "core/error.h"
#include "model/param_table.h"
#include "model/step3_config.h"

namespace stepwise {

using ordered_json = nlohmann::ordered_json;

namespace {
constexpr const char* kSharedFiles[] = {"tokenizer.model", "tokenizer.json", "generation_config.json"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void write_json_file(const fs::path& path, const ordered_json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

// The ParamTable's tensors in checkpoint order, each stored expert bias right after its layer's router.
std::vector<ParamSpec> tensors_to_convert(const std::vector<ParamSpec>& specs, const Step3Config& cfg,
                                          const CheckpointReader& reader) {
  std::map<int64_t, ParamSpec> biases;
  for (ParamSpec& b : expert_bias_specs(cfg))
    if (reader.contains(b.name)) biases[b.layer] = std::move(b);
  std::vector<ParamSpec> out;
  for (const ParamSpec& s : specs) {
    out.push_back(s);
    if (ends_with(s.name, ".moe.gate.weight") && biases.count(s.layer)) out.push_back(biases[s.layer]);
  }
  return out;
}

std::vector<float> read_values(const CheckpointReader& reader, const ParamSpec& s) {
  std::vector<float> v(static_cast<size_t>(s.count));   // (shape)
  reader.read_f32(s.name, s.shape, v.data());
  return v;
}

std::vector<TensorToWrite> views(const std::vector<EncodedTensor>& tensors) {
  std::vector<TensorToWrite> out;
  for (const EncodedTensor& t : tensors) out.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
  return out;
}

void copy_shared_files(const fs::path& source_root, const fs::path& dest) {
  for (const char* name : kSharedFiles)
    if (fs::is_regular_file(source_root / name)) write_file_atomic(dest / name, read_file(source_root / name));
}

// Builds `dir` through fill(tmp) in a sibling temporary directory, then renames it into place; an existing `dir` is
// replaced only once the new one is complete, and a failed fill leaves nothing behind.
void write_dir_atomic(const fs::path& dir, const std::function<void(const fs::path&)>& fill) {
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = parent / (".tmp-convert-" + dir.filename().string() + "-" + pid);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::error_code ec;
  try {
    fill(tmp);
    fsync_dir(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  const fs::path old = parent / (".old-convert-" + dir.filename().string() + "-" + pid);
  if (fs::exists(dir)) {
    fs::remove_all(old, ec);
    fs::rename(dir, old, ec);
    if (ec) fail(dir.string(), ": cannot move the previous directory aside: ", ec.message());
  }
  fs::rename(tmp, dir, ec);
  if (ec) fail(dir.string(), ": cannot rename the converted checkpoint into place: ", ec.message());
  fs::remove_all(old, ec);
  fsync_dir(parent);
}

void write_serving(const CheckpointReader& reader, const std::vector<ParamSpec>& tensors, WeightDType dtype,
                   const ordered_json& config, const fs::path& source_root, const fs::path& out) {
  for (ParamSide side : {ParamSide::attention, ParamSide::ffn}) {
    const fs::path part = out / param_side_name(side);
    fs::create_directories(part);
    std::vector<EncodedTensor> encoded;
    ordered_json listed = ordered_json::array();
    for (const ParamSpec& s : tensors) {
      if (s.side != side) continue;
      const std::vector<float> values = read_values(reader, s);
      for (EncodedTensor& e : encode_tensor(s, values.data(), dtype)) {
        listed.push_back({{"name", e.name}, {"dtype", std::string(dtype_name(e.dtype))}, {"shape", e.shape}});
        encoded.push_back(std::move(e));
      }
    }
    write_safetensors(part / "model.safetensors", views(encoded), {{"format", "pt"}});
    write_json_file(part / "config.json", config);
    ordered_json manifest;
    manifest["format"] = kServeManifestFormat;
    manifest["version"] = kServeManifestVersion;
    manifest["part"] = param_side_name(side);
    manifest["dtype"] = weight_dtype_name(dtype);
    if (dtype == WeightDType::fp8) {
      manifest["fp8_format"] = "e4m3fn";
      manifest["weight_block_size"] = {kFp8BlockSize, kFp8BlockSize};
    }
    manifest["tensors"] = std::move(listed);
    write_json_file(part / kServeManifestName, manifest);
    fsync_dir(part);
  }
  write_json_file(out / "config.json", config);
  copy_shared_files(source_root, out);
}

void write_hf(const CheckpointReader& reader, const std::vector<ParamSpec>& tensors, WeightDType dtype,
              int64_t shard_bytes, const ordered_json& config, const fs::path& source_root, const fs::path& out) {
  std::vector<std::vector<const ParamSpec*>> shards(1);   // greedy: a tensor starts a new shard when it would overflow
  uint64_t in_shard = 0;
  for (const ParamSpec& s : tensors) {
    const uint64_t b = encoded_bytes(s, dtype);
    if (!shards.back().empty() && in_shard + b > static_cast<uint64_t>(shard_bytes)) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&s);
    in_shard += b;
  }
  const int64_t count = static_cast<int64_t>(shards.size());
  ordered_json weight_map = ordered_json::object();
  uint64_t total = 0;
  for (int64_t k = 0; k < count; ++k) {
    const std::string file = hf_shard_name(k + 1, count);
    std::vector<EncodedTensor> encoded;
    for (const ParamSpec* s : shards[static_cast<size_t>(k)]) {
      const std::vector<float> values = read_values(reader, *s);
      for (EncodedTensor& e : encode_tensor(*s, values.data(), dtype)) {
        weight_map[e.name] = file;
        total += e.bytes.size();
        encoded.push_back(std::move(e));
      }
    }
    write_safetensors(out / file, views(encoded), {{"format", "pt"}});
  }
  ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = std::move(weight_map);
  write_json_file(out / kHfIndexName, index);
  write_json_file(out / "config.json", config);
  copy_shared_files(source_root, out);
}

void write_training(const CheckpointReader& reader, const std::vector<ParamSpec>& tensors, const ordered_json& config,
                    const fs::path& source_root, const fs::path& to) {
  std::vector<std::vector<float>> values;
  values.reserve(tensors.size());
  CheckpointContents c;
  c.config = nlohmann::json::parse(config.dump());
  for (const ParamSpec& s : tensors) {
    values.push_back(read_values(reader, s));
    c.model.push_back({s.name, DType::f32, s.shape, values.back().data()});
  }
  const fs::path generation = source_root / "generation_config.json";
  if (fs::is_regular_file(generation)) c.generation_config = nlohmann::json::parse(read_file(generation));
  c.tokenizer_dir = source_root;
  write_checkpoint_dir(to, c);
}

std::vector<std::pair<fs::path, uint64_t>> list_weight_files(const fs::path& dir) {
  std::vector<std::pair<fs::path, uint64_t>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") out.emplace_back(e.path(), e.file_size());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::string_view convert_format_name(ConvertFormat format) {
  switch (format) {
    case ConvertFormat::serve: return "serve";
    case ConvertFormat::hf: return "hf";
    case ConvertFormat::train: return "train";
  }
  return "?";
}

ConvertFormat parse_convert_format(std::string_view text) {
  for (ConvertFormat f : {ConvertFormat::serve, ConvertFormat::hf, ConvertFormat::train})
    if (text == convert_format_name(f)) return f;
  fail("unknown format '", text, "' (valid: serve, hf, train)");
}

int64_t parse_byte_size(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (digits == 0 || ec != std::errc() || end != text.data() + digits)
    fail("bad size '", text, "': expected a number with an optional unit (e.g. 2GB, 500MB, 64MiB)");
  std::string unit;
  for (char ch : text.substr(digits)) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::map<std::string, double> kUnits = {
      {"", 1},      {"b", 1},          {"kb", 1e3},       {"mb", 1e6},       {"gb", 1e9},
      {"tb", 1e12}, {"kib", 1024.0},   {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) fail("bad size '", text, "': unknown unit '", unit, "' (use B, kB, MB, GB, KiB, MiB, GiB)");
  const double bytes = std::floor(number * it->second);
  if (!(bytes >= 1) || bytes > 9e18) fail("bad size '", text, "': must be at least 1 byte");
  return static_cast<int64_t>(bytes);
}

std::string hf_shard_name(int64_t index, int64_t count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05lld-of-%05lld.safetensors", static_cast<long long>(index),
                static_cast<long long>(count));
  return buf;
}

ConvertSummary convert_checkpoint(const fs::path& from, const fs::path& to, const ConvertOptions& options) {
  const WeightDType dtype =
      options.dtype.value_or(options.format == ConvertFormat::serve ? WeightDType::bf16 : WeightDType::fp32);
  if (options.format == ConvertFormat::train && dtype != WeightDType::fp32)
    fail("--format train writes fp32 weights (training needs them); --dtype ", weight_dtype_name(dtype),
         " is not allowed");
  if (options.shard_bytes <= 0) fail("--shard-size must be positive");
  if (fs::exists(to) && fs::weakly_canonical(to) == fs::weakly_canonical(from))
    fail(to.string(), ": --to is the --from directory");
  if (fs::exists(to) && !options.overwrite) fail(to.string(), ": already exists (pass --overwrite to replace it)");

  const CheckpointReader reader = CheckpointReader::open(from);
  const Step3Config cfg = Step3Config::from_json_string(reader.config_text(), reader.config_path().string());
  const std::vector<ParamSpec> specs = step3_param_specs(cfg);
  check_checkpoint_tensors(reader, cfg, specs);
  const std::vector<ParamSpec> tensors = tensors_to_convert(specs, cfg, reader);

  ordered_json config = ordered_json::parse(reader.config_text());
  config["torch_dtype"] = dtype == WeightDType::fp32 ? "float32" : "bfloat16";
  const fs::path source_root = reader.layout() == CheckpointLayout::serving_part ? from.parent_path() : from;

  switch (options.format) {
    case ConvertFormat::serve:
      write_dir_atomic(to, [&](const fs::path& tmp) { write_serving(reader, tensors, dtype, config, source_root, tmp); });
      break;
    case ConvertFormat::hf:
      write_dir_atomic(to, [&](const fs::path& tmp) {
        write_hf(reader, tensors, dtype, options.shard_bytes, config, source_root, tmp);
      });
      break;
    case ConvertFormat::train:
      write_training(reader, tensors, config, source_root, to);
      break;
  }
  ConvertSummary summary;
  summary.source_layout = reader.layout();
  summary.dtype = dtype;
  summary.parameters = static_cast<int64_t>(tensors.size());
  summary.weight_files = list_weight_files(to);
  return summary;
}

}  // namespace stepwise
