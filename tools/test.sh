#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, Release), runs the CPU suite `ctest -L main`,
# then runs each libFuzzer target (request parser, safetensors reader) for a bounded time (FUZZ_SECONDS, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
ctest --test-dir build/cpu-release -L main --output-on-failure -j"$(nproc)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash tools/fuzz.sh
