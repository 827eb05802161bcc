/**
 * `auto` backend selection on a machine without a GPU: decided without a WebGPU probe, so Dawn prints none of
 * its driver warnings ("Couldn't load Vulkan", lavapipe's "maxDynamic… reduced") on every command.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mayHaveGpu } from "../src/engine/select.js";

const dir = mkdtempSync(join(tmpdir(), "labor-llm-dri-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("auto backend selection", () => {
  it("looks for a DRM render node on Linux and assumes a GPU may exist elsewhere", () => {
    expect(mayHaveGpu("linux", join(dir, "missing"))).toBe(false);
    mkdirSync(join(dir, "dri"));
    writeFileSync(join(dir, "dri", "card0"), "");
    expect(mayHaveGpu("linux", join(dir, "dri"))).toBe(false);
    writeFileSync(join(dir, "dri", "renderD128"), "");
    expect(mayHaveGpu("linux", join(dir, "dri"))).toBe(true);
    expect(mayHaveGpu("darwin", join(dir, "missing"))).toBe(true);
    expect(mayHaveGpu("win32", join(dir, "missing"))).toBe(true);
  });

  it.skipIf(mayHaveGpu())("picks the CPU without printing anything on a machine without a GPU", () => {
    const script = `import("${join(__dirname, "..", "dist", "src", "engine", "select.js")}").then(async (m) => {
      const backend = await m.createBackend("auto"); console.log(backend.describe()); });`;
    const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^cpu /);
    expect(run.stderr).toBe("");
  });
});
