#!/usr/bin/env bash
# One check of the CUDA backend on a fresh GPU machine with no internet (≤ 8 minutes):
#   1. build the addon with nvcc (only for this GPU's architecture, to save time),
#   2. run the shared op suite on CUDA (test/cuda-ops.test.ts) and the llama.cpp parity test on CUDA,
#   3. measure the PyTorch peer (bench/device/peft_peer.py: bf16 GEMM peak, PyTorch+PEFT LoRA steps),
#   4. benchmark ours (bench/device/cuda-bench.ts: matmul TFLOP/s of both tensor-core kernels, forward vs CPU,
#      LoRA tokens/s on `1b` and a Llama-2-7B shape with a per-op profile of one 7B step, scoring person-years/s),
# and print one table last.
#
# Usage (repository root):  bash bench/device/cuda-check.sh
# Needs: CUDA toolkit (nvcc; /usr/local/cuda/bin is searched), cmake, a C++17 compiler, python3 with torch,
# transformers and peft. Node: `node` on PATH, else $LABOR_NODE_TARBALL or bench/device/carry/node.tar.xz.
# node_modules: ./node_modules, else $LABOR_NODE_MODULES_TARBALL or bench/device/carry/node_modules.tar.xz.
# The parity test needs bench/peers/node_modules (or bench/device/carry/peers.tar.xz); it is skipped, with
# the reason, without them. Make the carry files with bench/device/pack-carry.sh on a machine with Node.
# Environment: LABOR_CHECK_BUILD_DIR (default build), LABOR_CHECK_BUDGET (seconds, default 470), LABOR_BENCH_STEPS (timed steps of ours and the peer, default 5),
# LABOR_BENCH_ONLY (comma list of matmul,parity,attention,lora1b,lora7b,lora7b-variants,scoring), SKIP_7B=1 (peer and
# ours), LABOR_CHECK_ONLY (comma list of the steps ops,parity,peer,bench; default all: a short correctness run
# is LABOR_CHECK_ONLY=ops).
# Logs and the table also go to $OUT when set (the device runner's output folder).
set -uo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)
budget=${LABOR_CHECK_BUDGET:-470}
work=$(mktemp -d /tmp/labor-cuda-check.XXXXXX)
rows="$work/rows.tsv"
: > "$rows"
left() { echo $(( budget - ($(date +%s) - started) )); }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "${4:-}" "${5:-}" >> "$rows"; }
log() { echo "== $* ($(( $(date +%s) - started )) s)"; }

print_table() {
  echo
  echo "CUDA check — $(date -u +%Y-%m-%dT%H:%MZ) — ${gpu_name:-unknown GPU} — total $(( $(date +%s) - started )) s"
  python3 - "$rows" <<'PY' 2>/dev/null || column -t -s $'\t' "$rows" 2>/dev/null || cat "$rows"
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
head = ["what", "ours", "peer", "ours/peer", "note"]
rows = [head] + [r + [""] * (5 - len(r)) for r in rows]
widths = [max(len(r[i]) for r in rows) for i in range(4)]
for n, r in enumerate(rows):
    print("  ".join(r[i].ljust(widths[i]) for i in range(4)) + ("  " + r[4] if r[4] else ""))
    if n == 0:
        print("  ".join("-" * w for w in widths) + "  ----")
PY
  # The device runner returns at most 8 files from $OUT: the table, and every log and JSON in one archive.
  if [ -n "${OUT:-}" ]; then
    cp "$rows" "$OUT"/ 2>/dev/null || true
    tar -C "$work" -czf "$OUT/cuda-check-logs.tar.gz" $(cd "$work" && ls -- *.log *.json 2>/dev/null) 2>/dev/null || true
  fi
}
trap print_table EXIT

# ---- GPU
gpu_name=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
compute_cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
row "gpu" "${gpu_name:-nvidia-smi found no GPU}" "" "" "compute capability ${compute_cap:-?}"

# ---- Node and node_modules (carried when the machine has none)
if ! command -v node >/dev/null; then
  tarball=${LABOR_NODE_TARBALL:-bench/device/carry/node.tar.xz}
  if [ -f "$tarball" ]; then
    mkdir -p "$work/node-dist" && tar -C "$work/node-dist" -xJf "$tarball"
    export PATH="$work/node-dist/node/bin:$PATH"
  fi
fi
if ! command -v node >/dev/null; then
  row "node" "missing" "" "" "no node on PATH and no carried tarball (bench/device/pack-carry.sh makes one)"
  exit 1
fi
if [ ! -d node_modules/vitest ]; then
  modules=${LABOR_NODE_MODULES_TARBALL:-bench/device/carry/node_modules.tar.xz}
  [ -f "$modules" ] && tar -xJf "$modules"
fi
if [ ! -d bench/peers/node_modules/node-llama-cpp ] && [ -f bench/device/carry/peers.tar.xz ]; then
  tar -xJf bench/device/carry/peers.tar.xz
fi
if [ ! -d node_modules/vitest ] || [ ! -d node_modules/cmake-js ]; then
  row "node_modules" "missing" "" "" "no node_modules and no carried tarball (bench/device/pack-carry.sh)"
  exit 1
fi
# cmake-js takes the Node-API headers from $npm_config_nodedir/include/node; without it, it would download them.
if [ -z "${npm_config_nodedir:-}" ]; then
  for prefix in "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" /usr /usr/local; do
    if [ -f "$prefix/include/node/node_api.h" ]; then export npm_config_nodedir="$prefix"; break; fi
  done
fi
row "node" "$(node --version)" "" "" "$(command -v node); headers ${npm_config_nodedir:-none found: cmake-js will try to download them}/include/node"

# ---- build (this GPU's architecture only; the default build covers 80 and 90a, plus compute_90 PTX)
log build
build_dir=${LABOR_CHECK_BUILD_DIR:-build}
case $build_dir in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
export LABOR_LLM_ADDON="$build_dir/Release/labor_llm.node"
arch_flag=()
# Hopper (9.0) builds the arch-specific 90a: the wgmma kernel (LABOR_CUDA_GEMM=wgmma) exists only there.
arch=$compute_cap; [ "$arch" = 90 ] && arch=90a
[ -n "${compute_cap:-}" ] && arch_flag=(--CDCMAKE_CUDA_ARCHITECTURES="$arch")
build_started=$(date +%s)
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
if node node_modules/cmake-js/bin/cmake-js compile --out "$build_dir" "${arch_flag[@]}" > "$work/build.log" 2>&1 &&
   node node_modules/typescript/bin/tsc -p tsconfig.json > "$work/tsc.log" 2>&1; then
  cuda_line=$(grep -o 'labor-llm: CUDA backend.*' "$work/build.log" | head -1)
  row "build (addon + tsc)" "ok" "" "" "$(( $(date +%s) - build_started )) s; ${cuda_line}"
else
  row "build (addon + tsc)" "FAILED" "" "" "see build.log / tsc.log: $(grep -m1 -iE 'error' "$work/build.log" "$work/tsc.log" | cut -c1-160)"
  tail -n 30 "$work/build.log" "$work/tsc.log" 2>/dev/null
  exit 1
fi
node -e "const c=require(process.env.LABOR_LLM_ADDON).cuda.probe(); console.log(JSON.stringify(c))" > "$work/probe.json" 2>&1
row "cuda probe" "$(node -e "const c=require('$work/probe.json'); process.stdout.write(c.available ? 'available' : 'UNAVAILABLE')" 2>/dev/null || echo 'addon did not load')" \
  "" "" "$(node -e "const c=require('$work/probe.json'); process.stdout.write(c.available ? c.device + ', compute ' + c.computeCapability + ', archs ' + c.archs : c.reason)" 2>/dev/null || head -c 200 "$work/probe.json")"

# ---- tests
step_wanted() { [ -z "${LABOR_CHECK_ONLY:-}" ] || [[ ",$LABOR_CHECK_ONLY," == *",$1,"* ]]; }
vitest_row() {  # label, log, files...
  local label=$1 logfile=$2; shift 2
  # Leave 40% of the budget for the peer and the benchmarks (188 s of the default 470; on an H200 they took
  # 25 s and 65 s, the op suite 36 s and the parity test 52 s).
  local limit=$(( $(left) - budget * 40 / 100 )); [ $limit -gt 240 ] && limit=240
  if [ $limit -lt 30 ]; then row "$label" "not run" "" "" "out of time budget"; return; fi
  # LABOR_CUDA_SYNC=1: a fault inside a kernel is reported by the op that caused it, not by a later readback.
  LABOR_CUDA_SYNC=1 timeout "$limit" node node_modules/vitest/vitest.mjs run "$@" --reporter=verbose > "$logfile" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E '^ +Tests ' "$logfile" | tail -1 | sed 's/^ *Tests *//')
  local failed
  failed=$(grep -E '^ +(×|✗|FAIL) ' "$logfile" | head -3 | sed 's/^ *//' | cut -c1-120 | paste -sd ';' -)
  local skipped
  skipped=$(grep -E '↓' "$logfile" | head -2 | sed 's/^ *↓ *//' | cut -c1-140 | paste -sd ';' -)
  if [ $rc -eq 124 ]; then row "$label" "TIMED OUT" "" "" "after ${limit} s; ${summary}"
  elif [ $rc -eq 0 ] && [[ "$summary" =~ ^[0-9]+\ skipped ]]; then row "$label" "SKIPPED" "" "" "${summary}; ${skipped}"
  elif [ $rc -eq 0 ]; then row "$label" "passed" "" "" "${summary}${skipped:+; skipped: $skipped}"
  else row "$label" "FAILED" "" "" "${summary}; ${failed}"
  fi
}
if step_wanted ops; then
  log "op suite on CUDA"
  vitest_row "op suite on CUDA" "$work/op-suite.log" test/cuda-ops.test.ts
fi
if step_wanted parity; then
  log "parity with llama.cpp on CUDA"
  vitest_row "parity vs llama.cpp (CUDA)" "$work/parity.log" test/parity-llama-cpp-cuda.test.ts
fi

# ---- PyTorch peer, then ours
log "PyTorch + PEFT peer"
peer_args=()
[ "${SKIP_7B:-0}" = 1 ] && peer_args=(--skip-7b)
peer_limit=$(( $(left) - budget * 25 / 100 )); [ $peer_limit -gt 200 ] && peer_limit=200
if ! step_wanted peer; then
  row "PyTorch peer" "not run" "" "" "LABOR_CHECK_ONLY=$LABOR_CHECK_ONLY"
elif [ $peer_limit -gt 30 ] && command -v python3 >/dev/null; then
  timeout "$peer_limit" python3 bench/device/peft_peer.py "$work/peer.json" "${peer_args[@]}" > "$work/peer.log" 2>&1 ||
    row "PyTorch peer" "failed or timed out" "" "" "$(tail -1 "$work/peer.log" | cut -c1-160)"
  python3 - "$work/peer.json" >> "$rows" 2>/dev/null <<'PY' || true
import json, sys
p = json.load(open(sys.argv[1]))
errors = "; ".join(f"{k}: {v['error']}" for k, v in p.get("lora", {}).items() if "error" in v)
status = "FAILED" if "error" in p else "ok"
note = p.get("error") or f"torch {p.get('torch')} on {p.get('device')}" + (f"; {errors}" if errors else "")
print(f"PyTorch peer\t{status}\t\t\t{note}")
PY
else
  row "PyTorch peer" "not run" "" "" "no python3 or out of time budget"
fi
log "CUDA benchmarks"
bench_limit=$(( $(left) - 5 ))
if [ "${SKIP_7B:-0}" = 1 ] && [ -z "${LABOR_BENCH_ONLY:-}" ]; then export LABOR_BENCH_ONLY=matmul,parity,attention,lora1b,scoring; fi
if ! step_wanted bench; then
  row "CUDA benchmarks" "not run" "" "" "LABOR_CHECK_ONLY=$LABOR_CHECK_ONLY"
elif [ $bench_limit -gt 20 ]; then
  timeout "$bench_limit" node dist/bench/device/cuda-bench.js "$rows" "$work/peer.json" > "$work/bench.log" 2>&1 ||
    row "CUDA benchmarks" "stopped (rc $?)" "" "" "$(tail -1 "$work/bench.log" | cut -c1-160)"
else
  row "CUDA benchmarks" "not run" "" "" "out of time budget"
fi
