#!/usr/bin/env bash
# Configures and builds stepwise (CPU, Release) into build/cpu-release; prints the binary's path.
# Usage: tools/build.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset cpu-release "$@" >/dev/null
cmake --build build/cpu-release -j"$(nproc)"
