#!/usr/bin/env bash
# The fine-tuning recipe sweep of experiments/recipe/README.md: each run is `labor-llm demo` with one recipe,
# scoring the first 12 test people (278 person-years) so a run takes minutes; all runs share one working
# directory, so the data, the baselines and a foundation that two runs share are computed once.
# Usage: experiments/recipe/sweep.sh [OUT_DIR]   (from the repository root, after `npm ci`)
set -euo pipefail
out="${1:-labor-llm-recipe-sweep}"
run() {
  local name=$1; shift
  echo "=== $name: $*"
  node bin/labor-llm.js demo --out "$out" --test-people 12 "$@" | grep -E '^\| (oracle|markov|logit|career|off-the-shelf LLM|FT-LLM) '
}
full="--finetune-mode full --finetune-lr 1e-3 --finetune-eval-every 25"
run A0 --title-list-copies 0 --finetune-mode lora
run A  --title-list-copies 20 --finetune-mode lora
run B  --title-list-copies 20 $full --finetune-epochs 2
run C  --title-list-copies 20 $full --finetune-epochs 4
run D  --title-list-copies 20 --finetune-mode full --finetune-lr 3e-3 --finetune-eval-every 25 --finetune-epochs 4
run F  --title-list-copies 20 $full --finetune-epochs 4 --finetune-title-list-copies 10
run E1 --title-list-copies 20 --model-preset demo-deep --finetune-mode lora
run E2 --title-list-copies 20 --model-preset demo-deep $full --finetune-epochs 4 --finetune-title-list-copies 10
run H  --title-list-copies 20 $full --finetune-epochs 6 --finetune-title-list-copies 10
run G  --title-list-copies 20 --pretrain-epochs 5 $full --finetune-epochs 4 --finetune-title-list-copies 10
run I  --title-list-copies 60 $full --finetune-epochs 4 --finetune-title-list-copies 10
