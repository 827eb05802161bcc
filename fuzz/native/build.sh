#!/usr/bin/env bash
# Builds the native libFuzzer harnesses (fuzz/native/*_fuzz.cc) with clang, ASan and UBSan, against the
# CPU kernels (native/cpu/*.cc, no Node-API) into fuzz/native/build/. Needs clang and its fuzzer runtime
# (Debian: apt-get install -y clang libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=fuzz/native/build
mkdir -p "$out/obj"
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -Wno-unknown-warning-option -fsanitize=address,undefined -fno-sanitize-recover=undefined -Inative)
isa_flags() {
  case "$1" in
    *_avx2.cc) echo "-mavx2 -mfma -mf16c" ;;
    *_avx512.cc) echo "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c" ;;
    *_amx.cc) echo "-mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mfma -mf16c" ;;
  esac
}
objects=()
for source in native/cpu/*.cc; do
  object="$out/obj/$(basename "${source%.cc}").o"
  if [[ ! -f "$object" || "$source" -nt "$object" || -n "$(find native/cpu -name '*.h' -newer "$object")" ]]; then
    # shellcheck disable=SC2046
    nice -n 10 clang++ "${flags[@]}" -fsanitize=fuzzer-no-link $(isa_flags "$source") -c "$source" -o "$object"
  fi
  objects+=("$object")
done
for harness in fuzz/native/*_fuzz.cc; do
  name=$(basename "${harness%.cc}")
  nice -n 10 clang++ "${flags[@]}" -fsanitize=fuzzer "$harness" "${objects[@]}" -lpthread -o "$out/$name"
done
