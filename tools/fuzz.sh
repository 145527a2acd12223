#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz/) and runs each for a bounded time (FUZZ_SECONDS, default 30).
# A crash, leak or sanitizer report fails the script. Skips (exit 0, with a message) when clang++ is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null; then echo "fuzz: clang++ not found, skipped"; exit 0; fi
seconds=${FUZZ_SECONDS:-30}
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_C_COMPILER=clang -DSTEPWISE_FUZZ=ON -DSTEPWISE_TESTS=ON >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target fuzz_request_parser fuzz_safetensors
for target in fuzz_request_parser fuzz_safetensors; do
  corpus=build/fuzz/corpus_$target
  mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus_${target#fuzz_}" ] && cp -n tests/fuzz/corpus_${target#fuzz_}/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  build/fuzz/tests/fuzz/$target -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$corpus" 2>&1 | tail -4
done
