#!/usr/bin/env bash
# The README's main job on a laptop-sized CPU: installs, builds, then runs the medical pipeline on a tiny model.
# Today: corpus statistics (the committed corpus), a tokenizer trained on it, and token statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
SW=build/cpu-release/tools/stepwise
OUT=${OUT_DIR:-runs/demo}
mkdir -p "$OUT"
$SW data stats data/medical-zh
