// libFuzzer target over the HTTP request parsers (built with clang and -DSTEPWISE_FUZZ=ON):
//   ./fuzz_request_parser -max_total_time=60 corpus/
// A crash, an exception other than RequestError, or a broken invariant of a parsed request is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/request_parser_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepwise::fuzz::exercise_request_parsers(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
