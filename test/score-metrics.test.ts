/** Metrics on hand-computed small cases; the predictions file round trip and its error messages. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { areaUnderCurve, computeMetrics, ReliabilityAccumulator, equalWidthEdges } from "../src/score/metrics.js";
import { readPredictions, writePredictions, type PredictionHeader, type PredictionRecord } from "../src/score/predictions.js";
import { normaliseLogprobs } from "../src/score/normalise.js";
import { CandidateTrie } from "../src/score/trie.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-metrics-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const CODES = [10, 20, 992];

function record(previous: number | null, truth: number, probabilities: number[], year = 2000): PredictionRecord {
  return {
    personId: "p",
    dataset: "TEST",
    year,
    sex: "female",
    race: "white",
    region: "south",
    birthYear: 1970,
    education: 1,
    previous,
    truth,
    logProbs: Float64Array.from(probabilities, Math.log),
  };
}

// Four person-years over outcomes 10, 20 and 992 (unemployed); the last is raw with valid mass 0.5.
const RECORDS = [
  record(null, 10, [0.5, 0.35, 0.15]),
  record(10, 10, [0.6, 0.25, 0.15]),
  record(10, 992, [0.7, 0.1, 0.2]),
  record(992, 20, [0.1, 0.2, 0.2], 2001),
];

describe("metrics", () => {
  const m = computeMetrics("hand", CODES, RECORDS);

  it("perplexity, normalised and raw, all years and transitions", () => {
    expect(m.personYears).toBe(4);
    expect(m.perplexity).toBeCloseTo(Math.exp(-(Math.log(0.5) + Math.log(0.6) + Math.log(0.2) + Math.log(0.4)) / 4), 10);
    expect(m.perplexityRaw).toBeCloseTo(Math.exp(-(Math.log(0.5) + Math.log(0.6) + Math.log(0.2) + Math.log(0.2)) / 4), 10);
    expect(m.transitions).toBe(2);
    expect(m.transitionPerplexity).toBeCloseTo(Math.exp(-(Math.log(0.2) + Math.log(0.4)) / 2), 10);
    expect(m.transitionPerplexityRaw).toBeCloseTo(5, 10);
    expect(m.validMassMean).toBeCloseTo(0.875, 12);
    expect(m.validMassMin).toBeCloseTo(0.5, 12);
    expect(m.byGroup.year["2000"]).toEqual({ count: 3, perplexity: expect.closeTo(Math.exp(-(Math.log(0.5) + Math.log(0.6) + Math.log(0.2)) / 3), 10) });
    expect(m.byGroup.education["high school diploma"].count).toBe(4);
  });

  it("accuracy@1/@5 (ties count as hits) and top-1 calibration", () => {
    expect(m.accuracyAt1).toBeCloseTo(0.75, 12);
    expect(m.accuracyAt5).toBe(1);
    // Confidences 0.5 ✓, 0.6 ✓, 0.7 ✗, 0.4 ✓, each alone in its bin: ECE = (0.5 + 0.4 + 0.7 + 0.6) / 4.
    expect(m.calibrationTop1.ece).toBeCloseTo(0.55, 10);
    expect(m.calibrationTop1.bins.reduce((a, b) => a + b.count, 0)).toBe(4);
    expect(m.calibrationAll.bins.reduce((a, b) => a + b.count, 0)).toBe(12);
  });

  it("stay/move and labour-force tasks", () => {
    // P(stay): 0.6 (stayed), 0.7 (moved), 0.4 (moved).
    expect(m.stay.count).toBe(3);
    expect(m.stay.baseRate).toBeCloseTo(1 / 3, 12);
    expect(m.stay.logLoss).toBeCloseTo(-(Math.log(0.6) + Math.log(0.3) + Math.log(0.6)) / 3, 10);
    expect(m.stay.auc).toBeCloseTo(0.5, 12);
    // P(unemployed or NILF): 0.15, 0.15, 0.2 (event), 0.4: the event beats two negatives and loses to one.
    expect(m.laborForce.count).toBe(4);
    expect(m.laborForce.baseRate).toBeCloseTo(0.25, 12);
    expect(m.laborForce.auc).toBeCloseTo(2 / 3, 12);
  });

  it("AUC and reliability bins on small cases", () => {
    expect(areaUnderCurve([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBeCloseTo(0.75, 12);
    expect(areaUnderCurve([0.5, 0.5], [true, false])).toBeCloseTo(0.5, 12);
    expect(Number.isNaN(areaUnderCurve([0.3], [true]))).toBe(true);
    const bins = new ReliabilityAccumulator(equalWidthEdges(2));
    bins.add(0.2, false);
    bins.add(0.4, true);
    bins.add(1, true);
    const result = bins.result();
    expect(result.bins.map((b) => b.count)).toEqual([2, 1]);
    expect(result.ece).toBeCloseTo((2 / 3) * Math.abs(0.3 - 0.5) + (1 / 3) * 0, 12);
  });

  it("normalising gives a distribution and the log of the valid mass", () => {
    const { logMass, normalised } = normaliseLogprobs([Math.log(0.1), Math.log(0.3), -Infinity]);
    expect(logMass).toBeCloseTo(Math.log(0.4), 12);
    expect(Array.from(normalised, Math.exp)).toEqual([expect.closeTo(0.25, 12), expect.closeTo(0.75, 12), 0]);
  });
});

describe("predictions file", () => {
  const header: PredictionHeader = { format: "labor-llm-predictions", version: 1, model: "hand", codes: CODES, normalised: false };

  // JSON Lines keeps 8 significant digits, the binary layout f32 (7 decimals vs 6 below).
  it.each([["p.jsonl", 7], ["p.bin", 6]] as const)("round-trips records (−∞ kept) through %s and streams them back", async (file, digits) => {
    const path = join(workDir, file);
    const records = [...RECORDS, { ...record(20, 20, [0.5, 0.5, 0]) }];
    expect(writePredictions(path, header, records)).toBe(5);
    const back: PredictionRecord[] = [];
    expect(await readPredictions(path, (r) => back.push(r))).toEqual(header);
    expect(back).toHaveLength(5);
    expect(back[4].logProbs[2]).toBe(-Infinity);
    back.forEach((r, i) => {
      expect({ ...r, logProbs: undefined }).toEqual({ ...records[i], logProbs: undefined });
      r.logProbs.forEach((v, c) => (Number.isFinite(v) ? expect(v).toBeCloseTo(records[i].logProbs[c], digits) : expect(v).toBe(-Infinity)));
    });
  });

  it("the binary layout: magic, then an exact size of header + records + 4 bytes per log-prob", () => {
    const path = join(workDir, "layout.bin");
    writePredictions(path, header, RECORDS);
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 8).toString("latin1")).toBe("LLMPRED1");
    const start = 16 + bytes.readUInt32LE(8) + bytes.readUInt32LE(12);
    expect(statSync(path).size).toBe(Math.ceil(start / 8) * 8 + 4 * RECORDS.length * CODES.length);
  });

  it("names the file and record of a bad binary file", async () => {
    const path = join(workDir, "bad.bin");
    writePredictions(path, header, RECORDS);
    const good = readFileSync(path);
    writeFileSync(path, good.subarray(0, good.length - 4));
    await expect(readPredictions(path, () => {})).rejects.toThrow(`${path}: binary predictions file is ${good.length - 4} bytes; 4 records × 3 codes need exactly ${good.length}`);
    writePredictions(path, header, [{ ...RECORDS[0], logProbs: Float64Array.from([0.5, -1, -2]) }]);
    await expect(readPredictions(path, () => {})).rejects.toThrow(`${path}: record 0: log_probs[0] = 0.5 is not a log-probability`);
    writePredictions(path, { ...header, codes: [10, 30, 992] }, [RECORDS[1]]);
    const text = readFileSync(path);
    writeFileSync(path, text.subarray(0, 20));
    await expect(readPredictions(path, () => {})).rejects.toThrow(`${path}: binary predictions header`);
  });

  it("names the file and line of a bad record", async () => {
    const path = join(workDir, "bad.jsonl");
    writeFileSync(path, JSON.stringify(header) + "\n" + JSON.stringify({ person_id: "x", truth: 30, education: "high-school", log_probs: [0, 0, 0] }) + "\n");
    await expect(readPredictions(path, () => {})).rejects.toThrow(`${path}:2: "truth" 30 is not one of the header's codes`);
    writeFileSync(path, '{"format":"something else"}\n');
    await expect(readPredictions(path, () => {})).rejects.toThrow(`${path}:1: not a labor-llm predictions file`);
  });
});

describe("candidate trie", () => {
  it("shares prefixes and sums log-probabilities along paths", () => {
    const trie = new CandidateTrie([
      { code: 1, text: "a b\n", ids: [5, 6, 9] },
      { code: 2, text: "a c\n", ids: [5, 7, 9] },
      { code: 3, text: "d\n", ids: [8, 9] },
    ]);
    expect(trie.nodeCount).toBe(1 + 7);
    expect(trie.unsharedTokenCount).toBe(8);
    const nodeLogprobs = Array.from({ length: trie.nodeCount }, (_, n) => -n);
    const expected = (ids: number[]) => {
      let node = 0;
      let sum = 0;
      for (const id of ids) {
        node = Array.from(trie.tokens.keys()).find((n) => trie.parents[n] === node && trie.tokens[n] === id)!;
        sum += nodeLogprobs[node];
      }
      return sum;
    };
    expect(Array.from(trie.candidateLogprobs(nodeLogprobs))).toEqual([expected([5, 6, 9]), expected([5, 7, 9]), expected([8, 9])]);
  });

  it("refuses candidates that are prefixes of others", () => {
    expect(() => new CandidateTrie([{ code: 1, text: "a", ids: [5] }, { code: 2, text: "a b", ids: [5, 6] }])).toThrow(/outcome 1 .* prefix of another/);
  });
});
