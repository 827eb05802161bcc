#!/usr/bin/env bash
# Packs what bench/device/cuda-check.sh needs on a GPU machine that has no internet and maybe no Node:
#   bench/device/carry/node.tar.xz          this machine's node binary + its Node-API headers (for cmake-js)
#   bench/device/carry/node_modules.tar.xz  node_modules without the lint/WebGPU packages (tsc, vitest, cmake-js, …)
#   bench/device/carry/peers.tar.xz         with --with-peers: bench/peers/node_modules (node-llama-cpp, for the parity test)
# Run it here after `npm ci` (and `npm run peers` for --with-peers), then hand the files to the device run as
# carried paths, e.g. run(command="bash bench/device/cuda-check.sh", carry=["bench/device/carry"]).
# The carry limit is 64 MiB in all (the working tree counts too): ~35 MiB without peers, ~42 MiB with them;
# check `du -sh bench/device/carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/device/carry
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

node_bin=$(readlink -f "$(command -v node)")
node_prefix=$(dirname "$(dirname "$node_bin")")
headers="$node_prefix/include/node"
[ -f "$headers/node_api.h" ] || headers=/usr/include/node
[ -f "$headers/node_api.h" ] || { echo "pack-carry: no Node-API headers next to $node_bin" >&2; exit 1; }
mkdir -p "$stage/node/bin" "$stage/node/include/node"
cp "$node_bin" "$stage/node/bin/node"
find "$headers" -maxdepth 1 -type f -name '*.h' -exec cp {} "$stage/node/include/node/" \;
tar -C "$stage" -cf - node | xz -T0 -6 > "$out/node.tar.xz"

tar -cf - --exclude='node_modules/webgpu' --exclude='node_modules/eslint' --exclude='node_modules/@eslint' \
  --exclude='node_modules/typescript-eslint' --exclude='node_modules/@typescript-eslint' --exclude='node_modules/.cache' \
  node_modules | xz -T0 -6 > "$out/node_modules.tar.xz"

if [ "${1:-}" = "--with-peers" ]; then
  # llama/gitRelease.bundle is llama.cpp's source for building from scratch (34 MiB); the prebuilt binaries run without it.
  tar -cf - --exclude='node-llama-cpp/llama/gitRelease.bundle' bench/peers/node_modules | xz -T0 -6 > "$out/peers.tar.xz"
fi
du -sh "$out"/*
