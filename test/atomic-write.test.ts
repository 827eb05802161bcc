/**
 * writeFileAtomic under injected faults (LABOR_LLM_WRITE_FAULT): a full disk in the middle of a write fails
 * with one line naming the file and leaves the previous content and no temp file; the byte counter and the
 * path filter.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { writeFileAtomic } from "../src/io/atomic-write.js";
import { WRITE_FAULT_ENV } from "../src/io/fault-injection.js";

const dir = mkdtempSync(join(tmpdir(), "labor-llm-atomic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  delete process.env[WRITE_FAULT_ENV];
});

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("writeFileAtomic with an injected full disk", () => {
  it("fails with one line naming the file; the old content stays, no temp file is left", () => {
    const path = join(dir, "state.bin");
    writeFileSync(path, "previous");
    process.env[WRITE_FAULT_ENV] = "enospc@1500";
    expect(() => writeFileAtomic(path, (sink) => {
      sink.write(bytes(1000, 1));
      sink.write(bytes(1000, 2));  // passes byte 1500: fails
    })).toThrow(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: write failed: ENOSPC: no space left on device`));
    expect(readFileSync(path, "utf8")).toBe("previous");
    expect(readdirSync(dir)).toEqual(["state.bin"]);
  });

  it("counts bytes across writes from when the variable is set, and only for paths containing PATH_PART", () => {
    process.env[WRITE_FAULT_ENV] = "enospc@2500:target";
    writeFileAtomic(join(dir, "other.bin"), (sink) => sink.write(bytes(5000, 3)));  // not counted
    writeFileAtomic(join(dir, "target-1.bin"), (sink) => sink.write(bytes(2000, 4)));  // 2000 of 2500
    expect(() => writeFileAtomic(join(dir, "target-2.bin"), (sink) => sink.write(bytes(1000, 5)))).toThrow(/target-2\.bin: write failed: ENOSPC/);
    expect(readFileSync(join(dir, "target-1.bin"))).toHaveLength(2000);
    delete process.env[WRITE_FAULT_ENV];
    writeFileAtomic(join(dir, "target-2.bin"), (sink) => sink.write(bytes(1000, 5)));
    expect(readFileSync(join(dir, "target-2.bin"))).toHaveLength(1000);
  });
});
