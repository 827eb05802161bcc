#!/usr/bin/env bash
# The fine-tuning recipe sweep of experiments/recipe/README.md: each run is `labor-llm demo` with one recipe,
# every recipe flag given explicitly (the demo's defaults have since become run G), scoring the first 12 test
# people (278 person-years; K: 50) so a run takes minutes; all runs share one working directory, so the data,
# the baselines and a foundation that two runs share are computed once.
# Usage: experiments/recipe/sweep.sh [OUT_DIR]   (from the repository root, after `npm ci`)
set -euo pipefail
out="${1:-labor-llm-recipe-sweep}"
run() {
  local name=$1 people=$2; shift 2
  echo "=== $name: $*"
  node bin/labor-llm.js demo --out "$out" --test-people "$people" "$@" | grep -E '^\| (oracle|markov|logit|career|off-the-shelf LLM|FT-LLM) '
}
pre3="--pretrain-epochs 3"
lora="--finetune-mode lora --finetune-lr 3e-3 --finetune-epochs 2 --finetune-eval-every 0 --finetune-title-list-copies 0"
full="--finetune-mode full --finetune-lr 1e-3 --finetune-eval-every 25"
run A0 12 --title-list-copies 0 $pre3 $lora
run A  12 --title-list-copies 20 $pre3 $lora
run B  12 --title-list-copies 20 $pre3 $full --finetune-epochs 2 --finetune-title-list-copies 0
run C  12 --title-list-copies 20 $pre3 $full --finetune-epochs 4 --finetune-title-list-copies 0
run D  12 --title-list-copies 20 $pre3 --finetune-mode full --finetune-lr 3e-3 --finetune-eval-every 25 --finetune-epochs 4 --finetune-title-list-copies 0
run F  12 --title-list-copies 20 $pre3 $full --finetune-epochs 4 --finetune-title-list-copies 10
run E1 12 --title-list-copies 20 $pre3 --model-preset demo-deep $lora
run E2 12 --title-list-copies 20 $pre3 --model-preset demo-deep $full --finetune-epochs 4 --finetune-title-list-copies 10
run H  12 --title-list-copies 20 $pre3 $full --finetune-epochs 6 --finetune-title-list-copies 10
run I  12 --title-list-copies 60 $pre3 $full --finetune-epochs 4 --finetune-title-list-copies 10
run G  12 --title-list-copies 20 --pretrain-epochs 5 $full --finetune-epochs 4 --finetune-title-list-copies 10
run J  12 --title-list-copies 20 --pretrain-epochs 8 $full --finetune-epochs 4 --finetune-title-list-copies 10
run K  50 --title-list-copies 20 --pretrain-epochs 16 $full --finetune-epochs 4 --finetune-title-list-copies 10
# Second session (README "Runs L–N"): 50 test people, compared with the dev experiment's J on the same people.
ft="$full --finetune-epochs 4 --finetune-title-list-copies 10"
run L  50 --title-list-copies 20 --resumes 8000 --pretrain-epochs 2 $ft
run N  50 --title-list-copies 20 --pretrain-epochs 8 --title-list-repeat-groups 4 $ft
run N2 50 --title-list-copies 20 --pretrain-epochs 8 --title-list-repeat-groups 4 $ft --finetune-title-list-repeat-groups 4
run N3 50 --title-list-copies 20 --pretrain-epochs 8 --title-list-repeat-groups 4 --finetune-mode lora --finetune-lr 3e-3 --finetune-epochs 4 --finetune-eval-every 25 --finetune-title-list-copies 10 --finetune-title-list-repeat-groups 4
run M2 50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-deep --title-list-repeat-groups 4 $ft --finetune-title-list-repeat-groups 4
run M  50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-deep $ft
# Third session (README "Runs R–W"): relabelled careers (data/relabel.ts), 50 test people, J's settings otherwise.
run R05 50 --title-list-copies 20 --pretrain-epochs 8 $ft --finetune-relabel-share 0.5
run R1  50 --title-list-copies 20 --pretrain-epochs 8 $ft --finetune-relabel-share 1
run S   50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 $ft --finetune-relabel-share 1
run S2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 $ft --finetune-relabel-share 1 --finetune-lr 3e-4
run S3  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 $ft --finetune-lr 3e-4
run T1  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss after-renamed $ft --finetune-relabel-share 1 --finetune-lr 3e-4
run T2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss after-renamed $ft --finetune-relabel-share 1
run U   50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss copy-decision $ft --finetune-relabel-share 1
run V   50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-deep --relabel-share 1 --relabel-loss copy-decision $ft --finetune-relabel-share 1
run W   50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-wide $ft
# Fourth session (README "Runs V2–Y"): tuned width, lower lr, the step-count control, and the "stays" loss.
run W2  50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-wide --pretrain-lr 1e-3 $ft
run V2  50 --title-list-copies 20 --pretrain-epochs 8 --model-preset demo-deep --relabel-share 1 --relabel-loss copy-decision $ft --finetune-relabel-share 1 --finetune-lr 3e-4
run U2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss copy-decision $ft --finetune-relabel-share 1 --finetune-lr 3e-4
run X1  50 --title-list-copies 20 --pretrain-epochs 4 --relabel-share 1 --relabel-loss copy-decision $ft --finetune-relabel-share 1 --finetune-lr 3e-4
run Y1  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-relabel-share 1
run Y2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft
run Y3  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-relabel-share 0.5
# Fifth session (README "Runs Z and A"): fine-tuning options on Y2's foundation, and the "stays-leave" loss.
run Z1  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-lr 3e-4
run Z2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-title-list-repeat-groups 4
run Z3  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-lr 1e-4
run Z4  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-title-list-repeat-groups 1
run A1  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays-leave $ft
run A2  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays-leave $ft --finetune-relabel-share 1
run A3  50 --title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays-leave $ft --finetune-relabel-share 0.5
# Sixth session (README "Runs P and Q"): on Y2's foundation with Z2's recipe — frozen embeddings, epochs, learning
# rate, the loss on every token, more replayed lists, and the foundation's resumes replayed in the fine-tuning.
z2="--title-list-copies 20 --pretrain-epochs 8 --relabel-share 1 --relabel-loss stays $ft --finetune-title-list-repeat-groups 4"
run P1  50 $z2 --finetune-freeze embeddings
run P2  50 $z2 --finetune-freeze embeddings --finetune-title-list-copies 0
run P3  50 $z2 --finetune-epochs 8
run P4  50 $z2 --finetune-epochs 6
run P5  50 $z2 --finetune-epochs 3
run P6  50 $z2 --finetune-lr 2e-3
run P7  50 $z2 --finetune-loss all
run P8  50 $z2 --finetune-title-list-copies 20
run P9  50 $z2 --finetune-freeze attention
run P10 50 $z2 --finetune-freeze mlp
run Q1  50 $z2 --finetune-resumes-share 0.5
run Q2  50 $z2 --finetune-epochs 3 --finetune-resumes-share 1
# Seventh session (README "Runs O"): Z2's recipe on the 4-layer foundation, at seeds 0 and 1, and Z2 itself at seed 1.
run O0   50 $z2 --model-preset demo-deep
run Z2s1 50 $z2 --seed 1
run O1   50 $z2 --seed 1 --model-preset demo-deep
# The seed-2 foundation at the recipe's peak pretraining lr and at half of it (end of "Runs O").
run O2   50 $z2 --seed 2 --pretrain-lr 3e-3
run O2lr 50 $z2 --seed 2 --pretrain-lr 1.5e-3
# Eighth session (end of "Runs O"): the foundation at peak lr 1.5e-3 at seeds 0 and 1 (O2lr: seed 2), paired with Z2
# and Z2s1; adopted for the dev foundation.
run Olr0 50 $z2 --pretrain-lr 1.5e-3
run Olr1 50 $z2 --seed 1 --pretrain-lr 1.5e-3
