/**
 * Builds and runs test/native/amx_emulation.cc: the AMX matmul (native/cpu/ops_amx.cc), per-call and with
 * weights packed once, over a software model of the tile instructions, so it is checked on CPUs without
 * AMX. Needs g++ with -mamx-* (GCC 11+) and AVX-512 on this CPU (the emulation runs the AVX-512 parts of
 * the kernel for real).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { loadNative } from "../src/engine/native.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const compiler = spawnSync("g++", ["--version"]).status === 0;
const avx512 = loadNative().cpu.isaInfo().available.includes("avx512");

it.skipIf(!compiler || !avx512)("AMX matmul over emulated tiles: per-call and packed-once weights", () => {
  const dir = mkdtempSync(join(tmpdir(), "amx-emulation-"));
  try {
    const binary = join(dir, "amx_emulation");
    const sources = ["test/native/amx_emulation.cc", "native/cpu/thread_pool.cc", "native/cpu/buffer.cc",
      "native/cpu/packed_weight.cc", "native/cpu/ops_scalar.cc", "native/cpu/ops_avx512.cc"];
    execFileSync("g++", ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-maybe-uninitialized",
      "-mamx-tile", "-mamx-bf16", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mfma",
      "-mf16c", "-Inative", ...sources, "-lpthread", "-o", binary], { cwd: root, stdio: "pipe" });
    const run = spawnSync(binary, [], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(/^AMX emulation: \d+ cases \(\d+ with a weight packed once\), 0 failures/m);
    expect(run.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
