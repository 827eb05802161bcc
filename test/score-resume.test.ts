/**
 * Long scoring runs that survive and spread, through the built command in child processes: `score` killed
 * with SIGKILL at random points (inside its journal's appends and the final write, and from outside at a
 * random moment) and resumed each time ends with the uninterrupted run's file, byte for byte, in both
 * layouts; 3 shards run as separate processes and merged equal one run; the journal's torn-record
 * detection, the shard cut and merge's checks in-process.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPanel } from "../src/data/load.js";
import { panelToCsv, type PersonRecord } from "../src/data/panel.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { WRITE_FAULT_ENV } from "../src/io/fault-injection.js";
import { createBackend, LlmScorer, loadLlama, predictionHeader, scoreToFile, Tokenizer, type ResumeInfo } from "../src/index.js";
import { encodePerson, JournalWriter, readJournal } from "../src/score/journal.js";
import { mergePredictionShards, parseShard, shardRange } from "../src/score/shards.js";
import { makeRandom } from "./op-suite.js";
import { killSeed, runChild, type Finished } from "./child-process.js";

const bin = join(__dirname, "..", "bin", "labor-llm.js");
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-score-resume-"));
const modelDir = join(workDir, "tiny");
const panelPath = join(workDir, "panel.csv");
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const seed = killSeed;

function scoreArgs(out: string, extra: string[] = []): string[] {
  return [bin, "score", "--model", modelDir, "--panel", panelPath, "--split", "all", "--out", out, "--documents", "2", "--threads", "1", "--backend", "cpu", ...extra];
}


beforeAll(() => {
  expect(spawnSync(process.execPath, [bin, "model", "init", "--config", "tiny", "--seed", "1", "--out", modelDir], { encoding: "utf8" }).status).toBe(0);
  // 7 people of 1–3 waves (13 person-years): 4 groups of --documents 2, uneven person-years.
  const { panel } = generateSyntheticPanel({ profile: "nlsy79", people: 7, seed: 5 });
  const people = panel.people.map((person, i) => ({ ...person, waves: person.waves.slice(0, 1 + ((i * 5) % 3)) }));
  writeFileSync(panelPath, panelToCsv({ people }));
});

describe("score --resume", () => {
  for (const extension of ["jsonl", "bin"]) {
    it(`SIGKILL at random points, resumed each time, ends with the uninterrupted run's .${extension} byte for byte`, async () => {
      const reference = join(workDir, `reference.${extension}`);
      const clean = await runChild(scoreArgs(reference));
      expect(clean.status, clean.stderr).toBe(0);
      const out = join(workDir, `killed.${extension}`);
      const journal = `${out}.partial`;
      const random = makeRandom(seed + extension.length);
      const points: string[] = [];
      let kills = 0;
      let finished: Finished | undefined;
      let journalBeforeLast = false;
      for (let attempt = 0; attempt < 6 && !finished; attempt++) {
        // kill@N inside this process's writes (journal appends, the final file), every third try a SIGKILL
        // from outside at a random moment; the last try runs to the end.
        const fromOutside = attempt % 3 === 2;
        if (attempt === 5) {
          journalBeforeLast = existsSync(journal);
          finished = await runChild(scoreArgs(out, ["--resume"]));
          break;
        }
        const point = fromOutside ? `after ${Math.floor(600 + random() * 1500)} ms` : `kill@${Math.floor(random() * 20000)}`;
        points.push(point);
        const env: Record<string, string> = fromOutside ? {} : { [WRITE_FAULT_ENV]: point };
        const torn = existsSync(journal) ? (readJournal(journal)?.tornBytes ?? 0) : 0;
        const result = await runChild(scoreArgs(out, attempt > 0 ? ["--resume"] : []), env, fromOutside ? Number(point.split(" ")[1]) : undefined);
        const where = `seed ${seed}, points ${points.join(", ")}: ${result.stderr}`;
        // (A kill from outside may come before the resumed run has read the journal.)
        if (torn > 0 && (result.signal !== "SIGKILL" || result.stderr.includes("resuming"))) {
          expect(result.stderr, where).toContain(`discarded a torn last record (${torn} bytes)`);
        }
        if (result.signal === "SIGKILL") {
          kills++;
          continue;
        }
        expect(result.status, where).toBe(0);
        finished = result;
      }
      expect(finished?.status, `seed ${seed}, points ${points.join(", ")}: ${finished?.stderr}`).toBe(0);
      expect(finished, `seed ${seed}, points ${points.join(", ")}`).toBeDefined();
      expect(kills, `seed ${seed}: at least two kills`).toBeGreaterThanOrEqual(2);
      if (journalBeforeLast) expect(finished!.stderr).toMatch(/resuming .*\.partial: \d+ people \(\d+ person-years\) already scored/);
      expect(existsSync(journal)).toBe(false);
      expect(readFileSync(out).equals(readFileSync(reference)), `seed ${seed}, points ${points.join(", ")}`).toBe(true);
      if (extension === "bin") return;
      // Resuming a complete run does nothing; a journal left behind without --resume is an error.
      const again = await runChild(scoreArgs(out, ["--resume"]));
      expect(again.stdout).toMatch(/is already complete: \d+ person-years of 7 people \(all\); nothing to resume/);
      const partial = await runChild(scoreArgs(join(workDir, `p.${extension}`)), { [WRITE_FAULT_ENV]: "kill@3000" });
      expect(partial.signal).toBe("SIGKILL");
      const refused = await runChild(scoreArgs(join(workDir, `p.${extension}`)));
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/p\.(jsonl|bin)\.partial holds \d+ scored people of an interrupted run: pass --resume to continue it, or delete it/);
      const changed = await runChild(scoreArgs(join(workDir, `p.${extension}`), ["--resume", "--template", "code"]));
      expect(changed.status).toBe(1);
      expect(changed.stderr).toMatch(/cannot resume .*: header.meta.template was "default" in the interrupted run, now "code"/);
    }, 180_000);
  }
});

describe("score --shard I/N and score merge", () => {
  it("3 shards in separate processes merge into the single run's file, byte for byte (both layouts)", async () => {
    for (const extension of ["jsonl", "bin"]) {
      const reference = join(workDir, `reference.${extension}`);
      if (!existsSync(reference)) expect((await runChild(scoreArgs(reference))).status).toBe(0);
      const shards = [1, 2, 3].map((i) => join(workDir, `shard-${i}.${extension}`));
      const results = await Promise.all(shards.map((path, i) => runChild(scoreArgs(path, ["--shard", `${i + 1}/3`]))));
      results.forEach((r) => expect(r.status, r.stderr).toBe(0));
      expect(results[1].stdout).toMatch(/shard 2\/3: people \d+\.\.\d+ of 7/);
      const merged = join(workDir, `merged.${extension}`);
      const merge = await runChild([bin, "score", "merge", "--out", merged, shards[2], shards[0], shards[1]]);
      expect(merge.status, merge.stderr).toBe(0);
      expect(merge.stdout).toContain("wrote");
      expect(readFileSync(merged).equals(readFileSync(reference))).toBe(true);
      if (extension === "jsonl") {
        await expect(mergePredictionShards([shards[0], shards[2]], join(workDir, "x.jsonl"))).rejects.toThrow("merge: shard 2/3 is missing");
        await expect(mergePredictionShards([shards[0], shards[0], shards[1], shards[2]], join(workDir, "x.jsonl"))).rejects.toThrow(/shard-1\.jsonl: shard 1\/3 given twice/);
        await expect(mergePredictionShards(shards, join(workDir, "x.bin"))).rejects.toThrow(/must share a layout/);
        await expect(mergePredictionShards([reference], join(workDir, "x.jsonl"))).rejects.toThrow(/reference\.jsonl: not a shard's predictions/);
      }
    }
  }, 120_000);

  it("cuts whole groups, contiguous, balanced by person-years", () => {
    const people = Array.from({ length: 40 }, (_, i) => ({ waves: new Array(1 + ((i * 7) % 11)) }) as unknown as PersonRecord);
    const years = (first: number, end: number) => people.slice(first, end).reduce((n, p) => n + p.waves.length, 0);
    const total = years(0, people.length);
    for (const count of [1, 2, 3, 5, 40]) {
      let next = 0;
      for (let index = 1; index <= count; index++) {
        const { first, end } = shardRange(people, 4, { index, count });
        expect(first).toBe(next);
        expect(first % 4).toBe(0);
        expect(end).toBeGreaterThanOrEqual(first);
        // Within one group's person-years of an equal share.
        if (count <= 5) expect(Math.abs(years(first, end) - total / count)).toBeLessThanOrEqual(2 * 4 * 11);
        next = end;
      }
      expect(next).toBe(people.length);
    }
    expect(parseShard("2/8")).toEqual({ index: 2, count: 8 });
    for (const bad of ["0/3", "4/3", "1/0", "a/b", "3"]) expect(() => parseShard(bad)).toThrow(/--shard must be I\/N with 1 ≤ I ≤ N/);
  });
});

describe("scoreToFile (the API's resumable scoring)", () => {
  it("a call aborted part-way (AbortSignal) continues with resume: true to the uninterrupted call's file", async () => {
    const { model } = loadLlama(modelDir, await createBackend("cpu"));
    const scorer = new LlmScorer(model, Tokenizer.fromDirectory(modelDir), { documentsPerGroup: 2 });
    const { people } = await loadPanel(panelPath);
    const header = predictionHeader("api", scorer.taxonomy, false, { panel: "in-process" });
    const clean = join(workDir, "api-clean.bin");
    await scoreToFile({ scorer, people, outPath: clean, header });
    const out = join(workDir, "api.bin");
    // Abort while the second group is being scored (the first holds 4 person-years): the API's AbortSignal.
    const controller = new AbortController();
    const stop = (done: number) => {
      if (done >= 5) controller.abort(new Error("stopped"));
    };
    await expect(scoreToFile({ scorer, people, outPath: out, header, onProgress: stop, signal: controller.signal })).rejects.toThrow("stopped");
    expect(existsSync(`${out}.partial`)).toBe(true);
    let resumed: ResumeInfo | undefined;
    const result = await scoreToFile({ scorer, people, outPath: out, header, resume: true, onResume: (info) => (resumed = info) });
    // The abort takes effect between passes: the group being scored when it came is finished and journaled.
    expect(resumed).toMatchObject({ tornBytes: 0 });
    expect(resumed!.people).toBeGreaterThanOrEqual(2);
    expect(resumed!.people).toBeLessThan(people.length);
    expect(result).toMatchObject({ people: 7, resumedPeople: resumed!.people, resumedPersonYears: resumed!.personYears, alreadyComplete: false });
    expect(readFileSync(out).equals(readFileSync(clean))).toBe(true);
  }, 60_000);
});

describe("the scoring journal", () => {
  it("keeps complete frames and reports a torn or corrupted tail", () => {
    const path = join(workDir, "j.partial");
    const writer = JournalWriter.create(path, { format: "test" });
    writer.appendFrames([encodePerson(0, [Float64Array.of(-1, -2)], 2), encodePerson(1, [Float64Array.of(-3, -Infinity), Float64Array.of(-5, -6)], 2)]);
    writer.close();
    const whole = statSync(path).size;
    expect(readJournal(path)).toMatchObject({ identity: { format: "test" }, validBytes: whole, tornBytes: 0 });
    expect(readJournal(path)!.people).toHaveLength(2);
    // Cut inside the last frame: it is torn, the first survives.
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, whole - 5));
    const cut = readJournal(path)!;
    expect(cut.people).toHaveLength(1);
    expect(cut.tornBytes).toBe(whole - 5 - cut.validBytes);
    // A flipped byte in the last frame's payload fails its checksum.
    const flipped = Buffer.from(bytes);
    flipped[whole - 3] ^= 0xff;
    writeFileSync(path, flipped);
    expect(readJournal(path)!.people).toHaveLength(1);
    // Appending after a torn tail cuts it off first.
    writeFileSync(path, bytes.subarray(0, whole - 5));
    const appender = JournalWriter.append(path, cut.validBytes);
    appender.appendFrames([encodePerson(1, [Float64Array.of(-7, -8)], 2)]);
    appender.close();
    expect(readJournal(path)).toMatchObject({ tornBytes: 0 });
    expect(readJournal(path)!.people).toHaveLength(2);
    writeFileSync(path, "LLMJRN");
    expect(readJournal(path)).toBeNull();
    writeFileSync(path, "NOTAJOURNAL");
    expect(() => readJournal(path)).toThrow(/j\.partial: not a labor-llm scoring journal/);
  });
});
