/** The README's CLI reference is exactly the CLI's --help output (regenerate with `npm run docs:cli`). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliReferenceMarkdown } from "../src/cli/main.js";

describe("README", () => {
  it("carries the current --help of every command", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const start = readme.indexOf("<!-- cli-reference:start -->");
    const end = readme.indexOf("<!-- cli-reference:end -->");
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    const section = readme.slice(start + "<!-- cli-reference:start -->".length, end).trim();
    expect(section, "README.md is stale: run `npm run docs:cli`").toBe(cliReferenceMarkdown().trim());
  });
});
