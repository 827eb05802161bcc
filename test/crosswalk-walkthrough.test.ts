/**
 * The README's walkthrough from a raw NLSY79-style extract to predictions, run command by command as written
 * (in-process through the CLI's `main`, with `walkthrough/` redirected to a temp directory): crosswalk → check
 * → model init → textify → train → score → baseline → eval. If this test changes, change the README with it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli/main.js";
import { loadPanel } from "../src/data/load.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-walkthrough-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** The commands of the README's walkthrough block: continuation lines joined, comments dropped. */
function walkthroughCommands(): string[][] {
  const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
  const start = readme.indexOf("<!-- walkthrough:start -->");
  const end = readme.indexOf("<!-- walkthrough:end -->");
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  const block = readme.slice(start, end).split("```sh\n")[1].split("```")[0];
  return block
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line !== "")
    .map((line) => {
      const words = line.split(/\s+/);
      expect(words[0]).toBe("labor-llm");
      return words.slice(1).map((word) => word.replace(/^walkthrough\//, `${workDir}/`));
    });
}

describe("README walkthrough: a raw extract to train → score → eval", () => {
  it("runs every command as written", async () => {
    const commands = walkthroughCommands();
    expect(commands.map((words) => words[0] + (words[0] === "data" || words[0] === "model" || words[0] === "baseline" ? ` ${words[1]}` : ""))).toEqual([
      "data crosswalk", "data check", "model init", "data textify", "data textify", "train", "score", "baseline markov", "eval",
    ]);
    const outputs: string[] = [];
    for (const words of commands) {
      const out: string[] = [];
      vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
      vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
      vi.spyOn(process.stderr, "write").mockImplementation(() => true);
      let status: number;
      try {
        status = await main(words);
      } finally {
        vi.restoreAllMocks();
      }
      expect(status, `labor-llm ${words.join(" ")}\n${out.join("\n")}`).toBe(0);
      outputs.push(out.join("\n"));
    }
    // The example extract is a synthetic panel written back as raw codes: the crosswalk gives it back exactly.
    const { panel } = generateSyntheticPanel({ profile: "nlsy79", people: 24, seed: 6 });
    expect(await loadPanel(join(workDir, "panel", "panel.csv"))).toEqual(panel);
    expect(outputs[0]).toContain("| 1979 | census1970 |");
    expect(outputs[0]).toContain("| 2018 | census2000 |");
    expect(outputs[0]).toContain("| 1979–1981 | census1970 | 69 | 38 | 0 | 29 | 1 | 1 | 0 | 0 |"); // per vintage
    expect(outputs[0]).toContain("| all | | 480 | 360 | 0 | 37 | 38 | 45 | 0 | 0 |");
    expect(outputs[1]).toContain(": ok — 24 people, 480 person-years, years 1979–2018");
    const predictions = readFileSync(join(workDir, "ft.jsonl"), "utf8").trim().split("\n");
    const markov = readFileSync(join(workDir, "markov.jsonl"), "utf8").trim().split("\n");
    expect(predictions.length).toBeGreaterThan(10);
    expect(predictions.length).toBe(markov.length);
    expect(existsSync(join(workDir, "report", "metrics.md"))).toBe(true);
    const table = readFileSync(join(workDir, "report", "metrics.md"), "utf8");
    expect(table).toContain("markov");
    expect(table).toContain("FT-LLM");
  }, 300_000);
});
