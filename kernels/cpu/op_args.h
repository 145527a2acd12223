// Argument checks shared by the attention and MoE CPU kernels: a malformed params struct (null pointer, bad dimension,
// expert id out of range) throws std::invalid_argument naming the op and the field ("router_forward: K = 9 > E = 8").
// kernels/ may not include src/core/error.h (layering), hence this small private equivalent.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace stepwise::cpu::op_args {

template <class... Parts>
[[noreturn]] void fail(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

inline void require(const void* ptr, const char* op, const char* field) {
  if (ptr == nullptr) fail(op, field, " is null");
}

inline void require_positive(int64_t value, const char* op, const char* field) {
  if (value <= 0) fail(op, field, " = ", value, " must be positive");
}

inline void require_nonnegative(int64_t value, const char* op, const char* field) {
  if (value < 0) fail(op, field, " = ", value, " is negative");
}

}  // namespace stepwise::cpu::op_args
