// Argument checks for the CPU kernels: a malformed params struct (null pointer, bad dimension, id out of range) throws
// std::invalid_argument whose message names the op and the field ("rope_forward: D = 7 must be even").
// kernels/ may not include src/core/error.h (layering), so this is the kernels' own small equivalent.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace stepwise::cpu {

template <class... Parts>
[[noreturn]] void kernel_fail(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

inline void require_pointer(const void* ptr, const char* op, const char* field) {
  if (ptr == nullptr) kernel_fail(op, field, " is null");
}

inline void require_positive(int64_t value, const char* op, const char* field) {
  if (value <= 0) kernel_fail(op, field, " = ", value, " must be positive");
}

inline void require_nonnegative(int64_t value, const char* op, const char* field) {
  if (value < 0) kernel_fail(op, field, " = ", value, " is negative");
}

}  // namespace stepwise::cpu
