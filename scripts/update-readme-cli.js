// Rewrites README.md's CLI reference (between the cli-reference markers) from the built CLI's --help texts.
import { readFileSync, writeFileSync } from "node:fs";
import { cliReferenceMarkdown } from "../dist/src/cli/main.js";

const START = "<!-- cli-reference:start -->";
const END = "<!-- cli-reference:end -->";
const readme = readFileSync("README.md", "utf8");
const start = readme.indexOf(START);
const end = readme.indexOf(END);
if (start < 0 || end < start) throw new Error(`README.md: markers ${START} … ${END} not found`);
const updated = readme.slice(0, start + START.length) + "\n" + cliReferenceMarkdown() + "\n" + readme.slice(end);
writeFileSync("README.md", updated);
console.log(updated === readme ? "README.md: CLI reference already current" : "README.md: CLI reference updated");
