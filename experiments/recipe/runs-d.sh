#!/usr/bin/env bash
# Runs D of experiments/recipe/README.md: the dev experiment with ensembles of two at seed 1 (pre-registered), then
# what the rule reports beside the report's own comparisons: per survey, each member's FT-LLM − CAREER (small), the
# FT-LLM ×2 against member 1's CAREER (small), and, by how often the training split shows the previous title, the
# stays of the FT-LLM ×2 against CAREER (small) ×2 (log/copy-by-title.mjs).
# Usage: experiments/recipe/runs-d.sh [OUT_DIR] [--compare]   (from the repository root, after `npm ci`;
#        --compare: only the comparisons, on the predictions finished so far)
# This session's run used OUT_DIR /work/scratch/exp1, which held seed 1's cache from earlier sessions.
set -euo pipefail
out="$(realpath -m "${1:-labor-llm-runs-d}")"
log_dir="$(dirname "$0")/log"
if [ "${2:-}" != --compare ]; then
  node bin/labor-llm.js experiment --seed 1 --test-people 100 --members 2 --out "$out"
fi

# The predictions file of one model on one survey: step predictions-<survey>-<slug of the row label>-<12 hex>.
pred() {
  local dir
  dir="$(ls "$out/steps" | grep -E "^predictions-$1-$2-[0-9a-f]{12}$" || true)"
  [ -n "$dir" ] && [ -f "$out/steps/$dir/predictions.jsonl" ] && echo "$out/steps/$dir/predictions.jsonl"
}
paired() {  # paired SURVEY LABEL A B: the paired difference of two models' mean log loss, if both are scored
  local a b
  a="$(pred "$1" "$3")" && b="$(pred "$1" "$4")" || { echo "$1 $2: not scored yet"; return 0; }
  echo "$1 $2: $(/usr/bin/python3 "$log_dir/paired.py" "$a" "$b" | tail -1)"
}

seed=1
surveys=(nlsy79 nlsy97 psid)  # each survey's data seed: seed + 1000 × its index (pipeline.ts)
for index in "${!surveys[@]}"; do
  survey="${surveys[$index]}"
  paired "$survey" "FT-LLM ×2 − CAREER (small) ×2 (primary)" ft-llm-2 career-small-2
  paired "$survey" "FT-LLM − CAREER (small), member 1" ft-llm career-small-
  paired "$survey" "FT-LLM − CAREER (small), member 2" ft-llm-member-2 career-small-member-2
  paired "$survey" "FT-LLM ×2 − CAREER (small), member 1" ft-llm-2 career-small-
  paired "$survey" "ensemble gain, FT-LLM: ×2 − member 1" ft-llm-2 ft-llm
  paired "$survey" "ensemble gain, CAREER (small): ×2 − member 1" career-small-2 career-small-
  [ "$survey" = nlsy79 ] && paired "$survey" "FT-LLM ×2 − CAREER (paper) ×2" ft-llm-2 career-paper-2
  files=()
  for model in oracle career-small-2 ft-llm-2; do
    file="$(pred "$survey" "$model")" && files+=("$file")
  done
  if [ ${#files[@]} -eq 3 ]; then
    node "$log_dir/copy-by-title.mjs" "$survey" 1000 $((seed + 1000 * index)) "${files[@]}"
  fi
done
