#!/usr/bin/env bash
# Runs D of experiments/recipe/README.md: the dev experiment with ensembles of two (pre-registered), then what the
# rule reports beside the report's own comparisons: per survey, each member's FT-LLM − CAREER (small), the
# FT-LLM ×2 against member 1's CAREER (small), and, by how often the training split shows the previous title, the
# stays of the FT-LLM ×2 against CAREER (small) ×2 (log/copy-by-title.mjs).
# Usage (from the repository root, after `npm ci`):
#   experiments/recipe/runs-d.sh [--seed N] [--compare] [OUT_DIR]   (flags in any order)
#       the dev experiment at seed N (default 1) with --members 2 in OUT_DIR, then the comparisons;
#       --compare: only the comparisons, on the predictions finished so far
#   experiments/recipe/runs-d.sh --pooled OUT_DIR...
#       the rule's pooled primary over several seeds' OUT_DIRs: per survey, FT-LLM ×2 − CAREER (small) ×2 with
#       people resampled within each seed (log/pooled.py), and each member's single comparison pooled the same way
# The runs of the sessions used OUT_DIR /work/scratch/expN for seed N.
set -euo pipefail
log_dir="$(dirname "$0")/log"
surveys=(nlsy79 nlsy97 psid)  # each survey's data seed: seed + 1000 × its index (pipeline.ts)
# The rule's comparisons, LABEL|A|B (A and B: row slugs of the predictions steps), reported per run and pooled.
rule_comparisons=(
  "FT-LLM ×2 − CAREER (small) ×2 (primary)|ft-llm-2|career-small-2"
  "FT-LLM − CAREER (small), member 1|ft-llm|career-small-"
  "FT-LLM − CAREER (small), member 2|ft-llm-member-2|career-small-member-2"
  "FT-LLM ×2 − CAREER (small), member 1|ft-llm-2|career-small-"
)

# The predictions file of one model on one survey in one run: step predictions-<survey>-<slug of the row label>-<12 hex>.
pred() {  # pred OUT SURVEY SLUG
  local dir
  dir="$(ls "$1/steps" | grep -E "^predictions-$2-$3-[0-9a-f]{12}$" || true)"
  [ -n "$dir" ] && [ -f "$1/steps/$dir/predictions.jsonl" ] && echo "$1/steps/$dir/predictions.jsonl"
}

if [ "${1:-}" = --pooled ]; then
  shift
  [ $# -ge 2 ] || { echo "runs-d.sh --pooled needs at least two OUT_DIRs" >&2; exit 2; }
  pooled() {  # pooled SURVEY LABEL A B: A − B pooled over every OUT_DIR that has scored both
    local files=() a b out
    for out in "${outs[@]}"; do
      a="$(pred "$out" "$1" "$3")" && b="$(pred "$out" "$1" "$4")" || { echo "$1 $2: $out has not scored both"; return 0; }
      files+=("$a" "$b")
    done
    echo "$1 $2:"
    /usr/bin/python3 "$log_dir/pooled.py" "${files[@]}" | sed 's/^/  /'
  }
  outs=()
  for out in "$@"; do outs+=("$(realpath "$out")"); done
  echo "runs: ${outs[*]}"
  for survey in "${surveys[@]}"; do
    for comparison in "${rule_comparisons[@]}"; do
      IFS='|' read -r label a b <<<"$comparison"
      pooled "$survey" "$label" "$a" "$b"
    done
  done
  exit 0
fi

seed=1 compare_only=no out_arg=labor-llm-runs-d
while [ $# -gt 0 ]; do  # flags before or after OUT_DIR (`runs-d.sh OUT_DIR --compare` as documented before --seed)
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --compare) compare_only=yes; shift ;;
    *) out_arg="$1"; shift ;;
  esac
done
out="$(realpath -m "$out_arg")"
if [ "$compare_only" = no ]; then
  node bin/labor-llm.js experiment --seed "$seed" --test-people 100 --members 2 --out "$out"
fi

paired() {  # paired SURVEY LABEL A B: the paired difference of two models' mean log loss, if both are scored
  local a b
  a="$(pred "$out" "$1" "$3")" && b="$(pred "$out" "$1" "$4")" || { echo "$1 $2: not scored yet"; return 0; }
  echo "$1 $2: $(/usr/bin/python3 "$log_dir/paired.py" "$a" "$b" | tail -1)"
}

for index in "${!surveys[@]}"; do
  survey="${surveys[$index]}"
  for comparison in "${rule_comparisons[@]}"; do
    IFS='|' read -r label a b <<<"$comparison"
    paired "$survey" "$label" "$a" "$b"
  done
  paired "$survey" "ensemble gain, FT-LLM: ×2 − member 1" ft-llm-2 ft-llm
  paired "$survey" "ensemble gain, CAREER (small): ×2 − member 1" career-small-2 career-small-
  [ "$survey" = nlsy79 ] && paired "$survey" "FT-LLM ×2 − CAREER (paper) ×2" ft-llm-2 career-paper-2
  files=()
  for model in oracle career-small-2 ft-llm-2; do
    file="$(pred "$out" "$survey" "$model")" && files+=("$file")
  done
  if [ ${#files[@]} -eq 3 ]; then
    node "$log_dir/copy-by-title.mjs" "$survey" 1000 $((seed + 1000 * index)) "${files[@]}"
  fi
done
