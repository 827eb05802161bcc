/**
 * The cached steps (experiment/steps.ts): a finished step is reused with its recorded value, an unfinished one
 * is redone, and the directory a step records is absolute even when the root was given relative to the working
 * directory (a relative one would break the cache for a rerun from elsewhere).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runStep } from "../src/experiment/steps.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-steps-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe("runStep", () => {
  it("records an absolute directory for a relative root, reuses a finished step and redoes an unfinished one", async () => {
    const root = relative(process.cwd(), join(workDir, "steps"));
    expect(isAbsolute(root)).toBe(false);
    let runs = 0;
    const produce = async (dir: string) => {
      runs++;
      writeFileSync(join(dir, "out.txt"), "x");
      return { path: join(dir, "out.txt") };
    };
    const first = await runStep(root, "thing", { a: 1 }, produce);
    expect(isAbsolute(first.dir) && isAbsolute(first.value.path)).toBe(true);
    expect(first.dir.startsWith(join(workDir, "steps"))).toBe(true);
    const again = await runStep(root, "thing", { a: 1 }, produce);
    expect([again.reused, again.value.path, runs]).toEqual([true, first.value.path, 1]);
    // Without its done.json (an interrupted step) it runs again.
    rmSync(join(first.dir, "done.json"));
    const redone = await runStep(root, "thing", { a: 1 }, produce);
    expect([redone.reused, runs, existsSync(redone.value.path)]).toEqual([false, 2, true]);
    const other = await runStep(root, "thing", { a: 2 }, produce);
    expect(other.dir).not.toBe(first.dir);
  });
});
