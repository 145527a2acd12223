// safetensors reader (memory-mapped, hardened) and writer (atomic).
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {str: str}}, then the data buffer. The reader validates the header length, the JSON, every dtype,
// shape and offset range against the file size, and overlaps, before any byte of data is touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/fs.h"

namespace stepwise {

struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data buffer
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Opens and validates `path`; throws Error("<path>: <what is wrong>") for any malformed content.
  static SafetensorsFile open(const fs::path& path);

  const fs::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& at(const std::string& name) const;  // throws Error naming file and tensor when absent
  std::span<const std::byte> bytes(const TensorInfo& t) const;

  // Copies tensor `name` into `out` (numel elements), converting F32/BF16/F16/F64 to float. Throws Error naming the
  // tensor when it is absent, its shape differs from `expected_shape`, or its dtype is not a float type.
  void read_f32(const std::string& name, const std::vector<int64_t>& expected_shape, float* out) const;

 private:
  struct Mapping;
  fs::path path_;
  std::shared_ptr<Mapping> map_;
  const std::byte* data_ = nullptr;  // start of the data buffer
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel * dtype_size bytes
};

// Writes tensors (in the given order) and metadata to `path` atomically (temporary file, fsync, rename).
void write_safetensors(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace stepwise
