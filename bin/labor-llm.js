#!/usr/bin/env node
// The `labor-llm` command: runs the compiled CLI (npm install / npm ci compiles it via the prepare script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const entry = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "src", "cli", "main.js");
if (!existsSync(entry)) {
  console.error("labor-llm: not built yet: run `npm install` (or `npm run build`) in the package directory");
  process.exit(1);
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
