#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, Release), runs each libFuzzer target (request
# parser, safetensors reader) for a bounded time (FUZZ_SECONDS, default 20; skipped without clang), then the CPU
# suite `ctest -L main`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash tools/fuzz.sh
ctest --test-dir build/cpu-release -L main --output-on-failure -j"$(nproc)"
