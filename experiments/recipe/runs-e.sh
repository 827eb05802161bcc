#!/usr/bin/env bash
# Runs E of experiments/recipe/README.md: two members per seed (the adopted recipe, runs W's base; the second with
# --model-seed 1000+seed), at seeds 3 and 4, 50 test people; then FT-LLM×2 and CAREER×2 (labor-llm ensemble) and
# the pre-registered paired comparisons (log/pooled.py). A finished member is not rerun (its report exists), and
# an interrupted one resumes from its cached steps.
# Usage: experiments/recipe/runs-e.sh [OUT_DIR] [--compare]   (from the repository root, after `npm ci`;
#        --compare: only the ensembles and comparisons, of the members finished so far)
# This session ran the members two at a time with --threads 1 (a, b of one seed side by side), in OUT_DIR
# /work/scratch with directory names e3--, e3-1003, e4--, e4-1004 (this script's e3-a, e3-b, e4-a, e4-b).
set -euo pipefail
out="$(realpath -m "${1:-labor-llm-runs-e}")"
compare_only="${2:-}"
ft="--finetune-mode full --finetune-lr 1e-3 --finetune-eval-every 25 --finetune-epochs 4 --finetune-title-list-copies 10"
recipe="--title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-title-list-repeat-groups 4 --pretrain-lr 1.5e-3"
seeds=(3 4)
log_dir="$(dirname "$0")/log"

member() {  # member SEED a|b
  local dir="$out/e$1-$2" extra=""
  [ "$2" = b ] && extra="--model-seed $((1000 + $1))"
  [ -f "$dir/report/metrics.json" ] && return 0
  node bin/labor-llm.js demo --out "$dir" --test-people 50 --seed "$1" $recipe $extra | grep -E '^\| (career|FT-LLM) '
}

file() {  # file DIR MODEL_INDEX: the predictions file of a finished member (0 oracle … 3 CAREER, 5 FT-LLM)
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['files'][int(sys.argv[2])])" "$1/report/metrics.json" "$2"
}

if [ "$compare_only" != --compare ]; then
  for seed in "${seeds[@]}"; do member "$seed" a; member "$seed" b; done
fi

ft_single=(); career_single=(); ft2_career2=(); ft2_career1=(); ft_gain=(); career_gain=()
for seed in "${seeds[@]}"; do
  a="$out/e$seed-a" b="$out/e$seed-b"
  [ -f "$a/report/metrics.json" ] && [ -f "$b/report/metrics.json" ] || { echo "seed $seed: members not finished"; continue; }
  node bin/labor-llm.js ensemble --predictions "$(file "$a" 5)" "$(file "$b" 5)" --out "$out/ft-llm-x2-seed$seed.jsonl" --name "FT-LLM x2" > /dev/null
  node bin/labor-llm.js ensemble --predictions "$(file "$a" 3)" "$(file "$b" 3)" --out "$out/career-x2-seed$seed.jsonl" --name "CAREER x2" > /dev/null
  ft_single+=("$(file "$a" 5)" "$(file "$a" 3)" "$(file "$b" 5)" "$(file "$b" 3)")
  ft2_career2+=("$out/ft-llm-x2-seed$seed.jsonl" "$out/career-x2-seed$seed.jsonl")
  ft2_career1+=("$out/ft-llm-x2-seed$seed.jsonl" "$(file "$a" 3)")
  ft_gain+=("$out/ft-llm-x2-seed$seed.jsonl" "$(file "$a" 5)")
  career_gain+=("$out/career-x2-seed$seed.jsonl" "$(file "$a" 3)")
done
[ ${#ft2_career2[@]} -gt 0 ] || exit 0
pooled() { echo "== $1"; shift; /usr/bin/python3 "$log_dir/pooled.py" "$@"; }
pooled "primary: FT-LLM x2 − CAREER x2" "${ft2_career2[@]}"
pooled "each member: FT-LLM − CAREER (a, b of each seed; a and b score the same people, so the pooled interval is too narrow)" "${ft_single[@]}"
pooled "FT-LLM x2 − CAREER (member a)" "${ft2_career1[@]}"
pooled "ensemble gain, FT-LLM: x2 − member a" "${ft_gain[@]}"
pooled "ensemble gain, CAREER: x2 − member a" "${career_gain[@]}"
