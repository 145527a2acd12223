// Implementation of parameter encoding into fp32 / bf16 / block-fp8 storage (see convert_encode.h).
#include "ckpt/convert_encode.h"

#include <cmath>
#include <cstring>

#include "ckpt/convert_reader.h"
#include "ckpt/fp8.h"
#include "core/error.h"

namespace stepwise {

namespace {
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Scale tensor shape of an fp8 weight: [ceil(rows/128), ceil(cols/128)], or [E, ..] for per-expert 3-D weights.
std::vector<int64_t> scale_shape_of(const std::vector<int64_t>& shape) {
  const size_t r = shape.size();
  std::vector<int64_t> out = fp8_scale_shape(shape[r - 2], shape[r - 1]);
  if (r == 3) out.insert(out.begin(), shape[0]);
  return out;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}
}  // namespace

std::string_view weight_dtype_name(WeightDType dtype) {
  switch (dtype) {
    case WeightDType::fp32: return "fp32";
    case WeightDType::bf16: return "bf16";
    case WeightDType::fp8: return "fp8";
  }
  return "?";
}

WeightDType parse_weight_dtype(std::string_view text) {
  for (WeightDType d : {WeightDType::fp32, WeightDType::bf16, WeightDType::fp8})
    if (text == weight_dtype_name(d)) return d;
  fail("unknown dtype '", text, "' (valid: bf16, fp8, fp32)");
}

bool is_expert_bias(const ParamSpec& s) { return s.layer >= 0 && ends_with(s.name, ".moe.gate.expert_bias"); }

bool fp8_block_quantized(const ParamSpec& s) {
  const bool router = ends_with(s.name, ".moe.gate.weight");
  return s.layer >= 0 && (s.shape.size() == 2 || s.shape.size() == 3) && !router;
}

DType stored_dtype(const ParamSpec& s, WeightDType dtype) {
  if (is_expert_bias(s) || dtype == WeightDType::fp32) return DType::f32;
  if (dtype == WeightDType::fp8 && fp8_block_quantized(s)) return DType::f8_e4m3;
  return DType::bf16;
}

uint64_t encoded_bytes(const ParamSpec& s, WeightDType dtype) {
  const DType t = stored_dtype(s, dtype);
  uint64_t bytes = static_cast<uint64_t>(numel(s.shape)) * dtype_size(t);
  if (t == DType::f8_e4m3) bytes += static_cast<uint64_t>(numel(scale_shape_of(s.shape))) * sizeof(float);
  return bytes;
}

std::vector<EncodedTensor> encode_tensor(const ParamSpec& s, const float* values, WeightDType dtype) {
  const int64_t n = numel(s.shape);
  EncodedTensor w{s.name, stored_dtype(s, dtype), s.shape, {}};
  w.bytes.resize(static_cast<size_t>(n) * dtype_size(w.dtype));
  if (w.dtype == DType::f32) {
    std::memcpy(w.bytes.data(), values, w.bytes.size());
    return {std::move(w)};
  }
  if (w.dtype == DType::bf16) {
    auto* out = reinterpret_cast<uint16_t*>(w.bytes.data());
    for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(values[i]);
    return {std::move(w)};
  }
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i]))
      fail("tensor '", s.name, "': element ", i, " is ", values[i], "; fp8 block quantisation needs finite weights");
  EncodedTensor scales{s.name + std::string(kScaleInvSuffix), DType::f32, scale_shape_of(s.shape), {}};
  scales.bytes.resize(static_cast<size_t>(numel(scales.shape)) * sizeof(float));
  const size_t r = s.shape.size();
  const int64_t rows = s.shape[r - 2], cols = s.shape[r - 1], matrices = r == 3 ? s.shape[0] : 1;
  const int64_t scales_per_matrix = numel(fp8_scale_shape(rows, cols));
  auto* codes = reinterpret_cast<uint8_t*>(w.bytes.data());        // (matrices, rows, cols)
  auto* scale = reinterpret_cast<float*>(scales.bytes.data());     // (matrices, ceil(rows/128), ceil(cols/128))
  for (int64_t m = 0; m < matrices; ++m)
    fp8_block_quantize(values + m * rows * cols, rows, cols, codes + m * rows * cols, scale + m * scales_per_matrix);
  std::vector<EncodedTensor> out;
  out.push_back(std::move(w));
  out.push_back(std::move(scales));
  return out;
}

}  // namespace stepwise
