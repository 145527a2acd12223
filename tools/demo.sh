#!/usr/bin/env bash
# The README's main job on a laptop-sized CPU: installs what is missing, builds, then runs the medical pipeline on
# step3-tiny: tokenizer -> pretrain -> SFT -> DPO -> convert (bf16 serving checkpoints) -> eval -> one report.
# Re-running resumes: finished steps are skipped. Extra arguments are pipeline overrides (e.g. eval.limit=50).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
SW=build/cpu-release/tools/stepwise
$SW data stats data/medical-zh
$SW run recipes/medical/pipeline.yaml "$@"
echo "demo: open runs/demo/report.md (chart runs/demo/report.svg); serve a model with"
echo "      $SW serve --model runs/demo/serve/dpo"
