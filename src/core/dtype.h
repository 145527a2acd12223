// Element types of stored tensors (checkpoints, serving weights, token shards) and their sizes and safetensors names.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace stepwise {

enum class DType : uint8_t { f32, f64, bf16, f16, f8_e4m3, i64, i32, i16, u16, u8, i8, boolean };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);                       // safetensors names: "F32", "BF16", "F8_E4M3", ...
bool dtype_from_name(std::string_view name, DType* out);   // false when the name is unknown

// bf16 <-> f32 (round to nearest even; NaN stays NaN).
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t x);

}  // namespace stepwise
