#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, Release), runs each libFuzzer target (request
# parser, safetensors reader) for a bounded time (FUZZ_SECONDS, default 20; skipped without clang), then the CPU
# suite `ctest -L main`. Where nvcc is installed it also builds the CUDA backend and runs `ctest -L gpu`, whose tests
# skip without a GPU (so CI proves the CUDA code compiles and the GPU suite starts cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash tools/fuzz.sh
ctest --test-dir build/cpu-release -L main --output-on-failure -j"$(nproc)"
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  bash tools/build_cuda.sh
  ctest --test-dir build/cuda-release -L gpu --output-on-failure
else
  echo "tools/test.sh: nvcc not found; the CUDA backend was not built"
fi
