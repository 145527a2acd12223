#!/usr/bin/env bash
# Configures and builds stepwise with the CUDA backend (STEPWISE_CUDA=ON, sm_90a) into build/cuda-release.
# Needs nvcc (default /usr/local/cuda/bin/nvcc) but no GPU: CI uses it to prove the CUDA code compiles.
# Usage: tools/build_cuda.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset cuda-release "$@" >/dev/null
cmake --build build/cuda-release -j"$(nproc)"
