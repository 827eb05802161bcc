/** `labor-llm ensemble` and score/ensemble.ts: the mixture checked against a hand-computed case, and its refusals. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { runEnsemble } from "../src/cli/commands/ensemble.js";
import { writeEnsemble } from "../src/score/ensemble.js";
import { PREDICTIONS_FORMAT, readPredictions, writePredictions, type PredictionHeader, type PredictionRecord } from "../src/score/predictions.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-ensemble-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const CODES = [4, 7, 8];

function header(model: string, normalised: boolean, codes = CODES): PredictionHeader {
  return { format: PREDICTIONS_FORMAT, version: 1, model, codes, normalised };
}

function record(personId: string, year: number, truth: number, probs: number[]): PredictionRecord {
  return {
    personId, dataset: "NLSY79", year, sex: "female", race: "white", region: "south", birthYear: 1960, education: 1,
    previous: null, truth, logProbs: Float64Array.from(probs, (p) => Math.log(p)),
  };
}

function write(name: string, model: string, normalised: boolean, records: PredictionRecord[], codes = CODES): string {
  const path = join(workDir, name);
  writePredictions(path, header(model, normalised, codes), records);
  return path;
}

async function read(path: string): Promise<{ header: PredictionHeader; records: PredictionRecord[] }> {
  const records: PredictionRecord[] = [];
  const header = await readPredictions(path, (r) => records.push(r));
  return { header, records };
}

// Member a is raw (unnormalised: masses 2 and 0.5 over the codes); b is normalised.
const a = write("a.jsonl", "A", false, [record("1", 1980, 4, [1, 1, 0]), record("1", 1981, 7, [0.25, 0.125, 0.125])]);
const b = write("b.jsonl", "B", true, [record("1", 1980, 4, [0.9, 0.1, 0]), record("1", 1981, 7, [0, 0.5, 0.5])]);

describe("ensemble of predictions", () => {
  it("averages the members' normalised probabilities (hand-computed)", async () => {
    const out = join(workDir, "ab.jsonl");
    const result = await writeEnsemble([a, b], out, "A+B");
    expect(result.records).toBe(2);
    const { header: h, records } = await read(out);
    expect(h).toMatchObject({ model: "A+B", codes: CODES, normalised: true });
    // 1980: a → (0.5, 0.5, 0), b → (0.9, 0.1, 0): mean (0.7, 0.3, 0), the last −∞ in both stays −∞.
    // 1981: a → (0.5, 0.25, 0.25), b → (0, 0.5, 0.5): mean (0.25, 0.375, 0.375).
    const expected = [[0.7, 0.3, 0], [0.25, 0.375, 0.375]];
    records.forEach((r, i) => {
      expect(Array.from(r.logProbs, Math.exp).map((p) => Number(p.toFixed(6)))).toEqual(expected[i]);
      expect(r.truth).toBe([4, 7][i]);
    });
    expect(records[0].logProbs[2]).toBe(-Infinity);
    // The mean log loss of the mixture is below the members' mean (log is concave): 1981's truth, code 7.
    expect(-records[1].logProbs[1]).toBeLessThan((-Math.log(0.25) - Math.log(0.5)) / 2);
  });

  it("refuses members that do not score the same person-years or outcomes, and leaves no output", async () => {
    const other = write("other.jsonl", "C", true, [record("1", 1980, 4, [0.5, 0.5, 0]), record("2", 1981, 7, [0.5, 0.5, 0])]);
    const short = write("short.jsonl", "D", true, [record("1", 1980, 4, [0.5, 0.5, 0])]);
    const codes = write("codes.jsonl", "E", true, [record("1", 1980, 4, [0.5, 0.5, 0]), record("1", 1981, 7, [0.5, 0.5, 0])], [4, 8, 7]);
    const out = join(workDir, "bad.jsonl");
    await expect(writeEnsemble([a, other], out, "x")).rejects.toThrow(/other\.jsonl: record 2 is person "2" 1981, but .*a\.jsonl's is person "1" 1981/);
    await expect(writeEnsemble([a, short], out, "x")).rejects.toThrow(/short\.jsonl: 1 person-years, but .*a\.jsonl has 2/);
    await expect(writeEnsemble([a, codes], out, "x")).rejects.toThrow(/codes\.jsonl: its outcome codes differ/);
    await expect(writeEnsemble([a], out, "x")).rejects.toThrow(/at least 2 predictions files, got 1/);
    expect(() => readFileSync(out)).toThrow();
  });

  it("the command writes the ensemble, names it, and never writes over a member", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void lines.push(parts.join(" ")));
    const out = join(workDir, "cli.jsonl");
    expect(await runEnsemble(["--predictions", a, b, "--out", out, "--name", "A and B"])).toBe(0);
    expect(lines.join("\n")).toMatch(/wrote .*cli\.jsonl: A and B, 2 person-years/);
    expect((await read(out)).header.model).toBe("A and B");
    expect(await runEnsemble(["--predictions", a, "--predictions", b, "--out", join(workDir, "default.jsonl")])).toBe(0);
    expect((await read(join(workDir, "default.jsonl"))).header.model).toBe("ensemble of 2");
    const before = readFileSync(a, "utf8");
    await expect(runEnsemble(["--predictions", a, b, "--out", a])).rejects.toThrow(/--out .*a\.jsonl is one of the members/);
    await expect(runEnsemble(["--predictions", a, b, "--out", relative(process.cwd(), b)])).rejects.toThrow(/is one of the members/);
    await expect(runEnsemble(["--predictions", a, "--out", out])).rejects.toThrow(/at least 2 predictions files, got 1/);
    await expect(runEnsemble(["--predictions", a, b])).rejects.toThrow(/--out/);
    expect(readFileSync(a, "utf8")).toBe(before);
  });
});
