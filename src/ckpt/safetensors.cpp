// Implementation of the safetensors reader and writer (see safetensors.h).
#include "ckpt/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace stepwise {

using json = nlohmann::json;

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB, as the reference implementation limits it

int64_t checked_numel(const std::vector<int64_t>& shape, const fs::path& path, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(path.string(), ": tensor '", name, "': negative dimension in shape");
    if (d != 0 && n > (int64_t(1) << 50) / d) fail(path.string(), ": tensor '", name, "': shape too large");
    n *= d;
  }
  return n;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr && size) ::munmap(addr, size);
  }
};

SafetensorsFile SafetensorsFile::open(const fs::path& path) {
  SafetensorsFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path.string(), ": cannot open: ", std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path.string(), ": cannot stat: ", std::strerror(errno));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  f.map_ = std::make_shared<Mapping>();
  if (file_size > 0) {
    void* addr = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      ::close(fd);
      fail(path.string(), ": cannot mmap: ", std::strerror(errno));
    }
    f.map_->addr = addr;
    f.map_->size = file_size;
  }
  ::close(fd);
  const auto* base = static_cast<const std::byte*>(f.map_->addr);

  if (file_size < 8) fail(path.string(), ": truncated: ", file_size, " bytes, no room for the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);  // little-endian on every platform we build for
  if (header_len > kMaxHeaderBytes) fail(path.string(), ": header length ", header_len, " exceeds the 100 MiB limit");
  if (header_len > file_size - 8)
    fail(path.string(), ": truncated: header length ", header_len, " but only ", file_size - 8, " bytes follow");
  const uint64_t data_size = file_size - 8 - header_len;
  f.data_ = base + 8 + header_len;

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const json::parse_error& e) {
    fail(path.string(), ": header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(path.string(), ": header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path.string(), ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(path.string(), ": __metadata__ value '", m.key(), "' is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(path.string(), ": tensor '", name, "': entry is not an object");
    TensorInfo t;
    t.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(path.string(), ": tensor '", name, "': missing dtype");
    if (!dtype_from_name(v["dtype"].get<std::string>(), &t.dtype))
      fail(path.string(), ": tensor '", name, "': unknown dtype '", v["dtype"].get<std::string>(), "'");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(path.string(), ": tensor '", name, "': missing shape");
    for (const json& d : v["shape"]) {
      if (!d.is_number_integer()) fail(path.string(), ": tensor '", name, "': shape holds a non-integer");
      t.shape.push_back(d.get<int64_t>());
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path.string(), ": tensor '", name, "': data_offsets must be two non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.begin > t.end || t.end > data_size)
      fail(path.string(), ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
           "] out of range (data buffer is ", data_size, " bytes)");
    const uint64_t expected = static_cast<uint64_t>(checked_numel(t.shape, path, name)) * dtype_size(t.dtype);
    if (t.end - t.begin != expected)
      fail(path.string(), ": tensor '", name, "': ", t.end - t.begin, " bytes but shape ", shape_str(t.shape), " of ",
           dtype_name(t.dtype), " needs ", expected);
    f.tensors_.push_back(std::move(t));
  }
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : f.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      fail(path.string(), ": tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name, "' overlap");
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(path_.string(), ": missing tensor '", name, "'");
  return *t;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& t) const {
  return {data_ + t.begin, static_cast<size_t>(t.end - t.begin)};
}

void SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& expected_shape, float* out) const {
  const TensorInfo& t = at(name);
  if (t.shape != expected_shape)
    fail(path_.string(), ": tensor '", name, "': shape ", shape_str(t.shape), ", expected ", shape_str(expected_shape));
  const std::byte* src = data_ + t.begin;
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32:
      std::memcpy(out, src, n * sizeof(float));
      break;
    case DType::f64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      break;
    default:
      fail(path_.string(), ": tensor '", name, "': dtype ", dtype_name(t.dtype), " cannot be read as float here");
  }
}

void write_safetensors(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    if (header.contains(t.name)) fail(path.string(), ": duplicate tensor name '", t.name, "'");
    uint64_t n = static_cast<uint64_t>(checked_numel(t.shape, path, t.name)) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + n}}};
    sizes.push_back(n);
    offset += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data buffer starts 8-byte aligned
  const uint64_t header_len = h.size();
  write_file_atomic_with(path, [&](std::FILE* f) {
    bool ok = std::fwrite(&header_len, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    for (size_t i = 0; ok && i < tensors.size(); ++i)
      ok = sizes[i] == 0 || std::fwrite(tensors[i].data, 1, sizes[i], f) == sizes[i];
    if (!ok) fail(path.string(), ": write failed: ", std::strerror(errno));
  });
}

}  // namespace stepwise
