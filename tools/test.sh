#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, Release) and runs the CPU suite `ctest -L main`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
ctest --test-dir build/cpu-release -L main --output-on-failure -j"$(nproc)"
