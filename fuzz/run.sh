#!/usr/bin/env bash
# npm run fuzz [-- SECONDS]: each fuzzer for SECONDS (default 60; FUZZ_RUNS=N runs N executions instead),
# one worker each, at low priority. JS readers: fuzz/js/run.js (mutation fuzzer, V8 line coverage of the
# reader's file); native: the libFuzzer + ASan/UBSan harness of fuzz/native/ (clang needed; skipped with a
# note where clang or its fuzzer runtime is missing). Crashes land in fuzz/out/<harness>/.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-60}}"
limit=(--seconds "$seconds")
[[ -n "${FUZZ_RUNS:-}" ]] && limit=(--runs "$FUZZ_RUNS")
npx tsc -p tsconfig.json || exit 1
status=0
declare -A reader=([safetensors]=dist/src/io/safetensors.js [gguf]=dist/src/io/gguf.js [predictions-bin]=dist/src/score/predictions-binary.js)
for harness in safetensors gguf predictions-bin; do
  coverage="fuzz/out/$harness/v8-coverage"
  rm -rf "$coverage" && mkdir -p "$coverage"
  NODE_V8_COVERAGE="$coverage" nice -n 10 node --expose-gc fuzz/js/run.js "$harness" "${limit[@]}" || status=1
  node fuzz/js/coverage.js "$coverage" "${reader[$harness]}"
done
if command -v clang++ >/dev/null; then
  bash fuzz/native/build.sh && for harness in fuzz/native/build/*_fuzz; do
    name=$(basename "$harness")
    mkdir -p "fuzz/out/$name/corpus"
    runs=(-max_total_time="$seconds")
    [[ -n "${FUZZ_RUNS:-}" ]] && runs=(-runs="$FUZZ_RUNS")
    nice -n 10 "$harness" "fuzz/out/$name/corpus" "fuzz/corpus/$name" -workers=1 -jobs=1 "${runs[@]}" \
      -artifact_prefix="fuzz/out/$name/" -print_final_stats=1 2>&1 | grep -E "^stat::|Done|cov:.*(DONE|INITED)|ERROR|SUMMARY" || true
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  done
else
  echo "native fuzzers skipped: no clang++ (apt-get install -y clang libclang-rt-14-dev)"
fi
exit $status
