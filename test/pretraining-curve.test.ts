/**
 * A foundation's pretraining curve (experiment/stages.ts foundationLossCurve) from its training log: window means
 * by hand, validations left out, a missing log giving no curve, and a damaged log named by file and line.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { foundationLossCurve } from "../src/experiment/stages.js";
import { TRAIN_LOG_FILE } from "../src/train/loop.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-pretraining-curve-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** A foundation value whose training directory holds `lines` as its log. */
function foundationWithLog(name: string, lines: string[]) {
  const trainDir = join(workDir, name, "train");
  mkdirSync(join(trainDir, "final"), { recursive: true });
  writeFileSync(join(trainDir, TRAIN_LOG_FILE), lines.join("\n") + "\n");
  return { modelDir: join(trainDir, "final"), steps: 0, lastLoss: null, seconds: 0 };
}

describe("foundationLossCurve", () => {
  it("averages the step losses in windows, each point at its window's last step, leaving validations out", () => {
    const lines = [];
    for (let step = 1; step <= 7; step++) {
      lines.push(JSON.stringify({ step, loss: step, learningRate: 1e-3, tokens: 10 }));
      if (step === 4) lines.push(JSON.stringify({ validation: true, step, loss: 100 }));
    }
    const value = foundationWithLog("seven", lines);
    // 7 steps in at most 3 points: windows of 3 steps, the last one short.
    expect(foundationLossCurve(value, 3)).toEqual([{ step: 3, loss: 2 }, { step: 6, loss: 5 }, { step: 7, loss: 7 }]);
    expect(foundationLossCurve(value, 100).map((p) => p.loss)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("gives no curve where the log is gone, and names the file and line of a damaged log", () => {
    expect(foundationLossCurve({ modelDir: join(workDir, "absent", "train", "final"), steps: 0, lastLoss: null, seconds: 0 })).toEqual([]);
    // A blank line before the damaged one: the error still gives the file's line number (3).
    const value = foundationWithLog("damaged", [JSON.stringify({ step: 1, loss: 2 }), "", "{\"step\": 2, \"loss\""]);
    expect(() => foundationLossCurve(value)).toThrow(/damaged[/\\]train[/\\]train_log\.jsonl:3: not a JSON line/);
  });
});
