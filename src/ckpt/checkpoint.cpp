// Implementation of atomic checkpoint directories (see checkpoint.h).
#include "ckpt/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace stepwise {

namespace {
constexpr std::string_view kPrefix = "checkpoint-";
constexpr std::string_view kTmpPrefix = ".tmp-checkpoint-";

void write_json(const fs::path& path, const nlohmann::json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

bool parse_step(const std::string& name, int64_t* step) {
  if (name.rfind(kPrefix, 0) != 0) return false;
  const char* b = name.data() + kPrefix.size();
  const char* e = name.data() + name.size();
  auto [p, ec] = std::from_chars(b, e, *step);
  return ec == std::errc() && p == e && b != e;
}
}  // namespace

void write_checkpoint_dir(const fs::path& dir, const CheckpointContents& c) {
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const fs::path tmp = parent / (std::string(kTmpPrefix) + dir.filename().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    write_json(tmp / "config.json", c.config);
    if (!c.generation_config.is_null()) write_json(tmp / "generation_config.json", c.generation_config);
    write_safetensors(tmp / "model.safetensors", c.model, {{"format", "pt"}});
    if (!c.optimizer.empty()) write_safetensors(tmp / "optimizer.safetensors", c.optimizer);
    if (!c.tokenizer_dir.empty())
      for (const char* name : {"tokenizer.model", "tokenizer.json"})
        if (fs::exists(c.tokenizer_dir / name)) write_file_atomic(tmp / name, read_file(c.tokenizer_dir / name));
    for (const auto& [name, content] : c.extra_files) write_file_atomic(tmp / name, content);
    if (!c.trainer_state.is_null()) write_json(tmp / "trainer_state.json", c.trainer_state);
    fsync_dir(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  std::error_code ec;
  if (fs::exists(dir)) {  // replace an existing checkpoint only once the new one is complete
    const fs::path old = parent / (".old-" + dir.filename().string() + "-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(dir, old, ec);
    if (ec) fail(dir.string(), ": cannot move the previous checkpoint aside: ", ec.message());
    fs::rename(tmp, dir, ec);
    if (ec) fail(dir.string(), ": cannot rename the new checkpoint into place: ", ec.message());
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, dir, ec);
    if (ec) fail(dir.string(), ": cannot rename the new checkpoint into place: ", ec.message());
  }
  fsync_dir(parent);
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    int64_t step;
    if (e.is_directory() && parse_step(e.path().filename().string(), &step) &&
        fs::exists(e.path() / "model.safetensors"))
      out.emplace_back(step, e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

fs::path save_checkpoint(const fs::path& run_dir, int64_t step, const CheckpointContents& c, int keep_last) {
  const fs::path dir = run_dir / (std::string(kPrefix) + std::to_string(step));
  write_checkpoint_dir(dir, c);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir)) {  // leftovers of saves killed mid-way
    const std::string name = e.path().filename().string();
    if (name.rfind(kTmpPrefix, 0) == 0 || name.rfind(".old-checkpoint-", 0) == 0) fs::remove_all(e.path(), ec);
  }
  if (keep_last > 0) {
    auto all = list_checkpoints(run_dir);
    for (size_t i = 0; i + keep_last < all.size(); ++i) fs::remove_all(all[i].second, ec);
  }
  return dir;
}

}  // namespace stepwise
