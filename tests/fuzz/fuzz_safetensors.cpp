// libFuzzer target for the safetensors reader: any byte string, written to a file and opened, must either load (and
// every tensor then reads back) or fail with stepwise::Error — never crash, hang or read out of bounds (ASan).
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/safetensors.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/stepwise_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  stepwise::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    auto file = stepwise::SafetensorsFile::open(path);
    for (const auto& t : file.tensors()) {
      auto bytes = file.bytes(t);
      uint8_t folded = 0;   // touch every byte the reader hands out
      for (std::byte b : bytes) folded ^= static_cast<uint8_t>(b);
      volatile uint8_t sink = folded;
      (void)sink;
      if (t.numel() < (1 << 20) && (t.dtype == stepwise::DType::f32 || t.dtype == stepwise::DType::bf16)) {
        std::vector<float> out(static_cast<size_t>(t.numel()));
        file.read_f32(t.name, t.shape, out.data());
      }
    }
  } catch (const stepwise::Error&) {
  }
  return 0;
}
