// Implementation of dtype tables and bf16 conversion (see dtype.h).
#include "core/dtype.h"

#include <cstring>

namespace stepwise {

namespace {
struct Entry {
  DType type;
  size_t size;
  std::string_view name;
};
constexpr Entry kTable[] = {
    {DType::f32, 4, "F32"},   {DType::f64, 8, "F64"},     {DType::bf16, 2, "BF16"},  {DType::f16, 2, "F16"},
    {DType::f8_e4m3, 1, "F8_E4M3"}, {DType::i64, 8, "I64"}, {DType::i32, 4, "I32"}, {DType::i16, 2, "I16"},
    {DType::u16, 2, "U16"},   {DType::u8, 1, "U8"},       {DType::i8, 1, "I8"},      {DType::boolean, 1, "BOOL"},
};
}  // namespace

size_t dtype_size(DType t) { return kTable[static_cast<int>(t)].size; }
std::string_view dtype_name(DType t) { return kTable[static_cast<int>(t)].name; }

bool dtype_from_name(std::string_view name, DType* out) {
  for (const Entry& e : kTable)
    if (e.name == name) {
      *out = e.type;
      return true;
    }
  return false;
}

uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t x) {
  uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace stepwise
