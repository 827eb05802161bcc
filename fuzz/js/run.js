// A mutation fuzzer for the TypeScript readers (libFuzzer's engine cannot drive them: Jazzer.js, the
// libFuzzer binding for Node, ships only prebuilds needing glibc ≥ 2.38 and downloads its libFuzzer fork
// to build from source). libFuzzer-style mutators — bit flips, byte and 1/2/4/8-byte little-endian
// integer overwrites with interesting values, inserts, erases, repeats, splices of two corpus entries,
// and ASCII-number edits inside JSON — over the seed corpus, without coverage feedback; an input that
// makes the reader do something new by the harness's own `signature` (its outcome: which error message
// shape, or success) joins the in-memory corpus. Block coverage of the reader files is measured by V8
// once, over the whole run (NODE_V8_COVERAGE), by fuzz/run.sh.
//
//   node --expose-gc fuzz/js/run.js <harness> --runs N | --seconds S [--seed K]
// prints one JSON line: {harness, executions, seconds, corpus, crashes}; a crash (an input the harness
// rejects) is written to fuzz/out/<harness>/crash-<sha1> and ends the run with exit code 1.
import { Buffer } from "node:buffer";
import { performance } from "node:perf_hooks";
import { setImmediate } from "node:timers";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [harnessName, ...rest] = process.argv.slice(2);
const option = (name) => {
  const i = rest.indexOf(name);
  return i < 0 ? undefined : Number(rest[i + 1]);
};
const maxRuns = option("--runs") ?? Infinity;
const maxSeconds = option("--seconds") ?? Infinity;
let state = (option("--seed") ?? 1) >>> 0 || 1;
const random = () => {
  state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
  return state / 4294967296;
};
const below = (n) => Math.floor(random() * n);

const harness = await import(join(here, `${harnessName}.fuzz.js`));
const seedDir = join(here, "..", "corpus", harnessName);
const outDir = join(here, "..", "out", harnessName);
mkdirSync(outDir, { recursive: true });
const corpus = readdirSync(seedDir).sort().map((name) => readFileSync(join(seedDir, name)));
if (corpus.length === 0) throw new Error(`no seeds in ${seedDir}`);
const signatures = new Set();

const INTERESTING = [0, 1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 1];

function mutate(input) {
  let bytes = Buffer.from(input);
  const steps = 1 + below(4);
  for (let s = 0; s < steps; s++) {
    const at = bytes.length === 0 ? 0 : below(bytes.length);
    switch (below(9)) {
      case 0: if (bytes.length) bytes[at] ^= 1 << below(8); break;
      case 1: if (bytes.length) bytes[at] = below(256); break;
      case 2: {  // an interesting little-endian integer of 1, 2, 4 or 8 bytes
        const width = [1, 2, 4, 8][below(4)];
        if (bytes.length < width) break;
        const pos = below(bytes.length - width + 1);
        let value = BigInt(INTERESTING[below(INTERESTING.length)]) + BigInt(below(3) - 1);
        value = BigInt.asUintN(width * 8, value);
        for (let i = 0; i < width; i++) bytes[pos + i] = Number((value >> BigInt(8 * i)) & 255n);
        break;
      }
      case 3: bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([below(256)]), bytes.subarray(at)]); break;
      case 4: bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + below(16))]); break;
      case 5: {  // repeat a chunk
        const len = 1 + below(32);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + len), bytes.subarray(at)]);
        break;
      }
      case 6: {  // splice with another corpus entry
        const other = corpus[below(corpus.length)];
        const from = below(other.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), other.subarray(from, from + 1 + below(64))]);
        break;
      }
      case 7: bytes = bytes.subarray(0, at); break;  // truncate
      case 8: {  // rewrite an ASCII number (JSON) with another
        const text = bytes.toString("latin1");
        const matches = [...text.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/g)];
        if (matches.length === 0) break;
        const m = matches[below(matches.length)];
        const replacement = ["-1", "0", "1", "1e308", "-0", "1.5", "9007199254740993", "4294967296", "1e-7", "NaN", "null", '"1"', "[]", "{}", String(below(100000))][below(15)];
        bytes = Buffer.concat([bytes.subarray(0, m.index), Buffer.from(replacement, "latin1"), bytes.subarray(m.index + m[0].length)]);
        break;
      }
    }
  }
  return bytes;
}

const started = performance.now();
let executions = 0;
const report = (crashes) => console.log(JSON.stringify({
  harness: harnessName, executions, seconds: Math.round((performance.now() - started) / 100) / 10,
  corpus: corpus.length, signatures: signatures.size, crashes,
}));
for (const seed of corpus) await run(seed);
while (executions < maxRuns && (performance.now() - started) / 1000 < maxSeconds) {
  // Mapped files are unmapped when their ArrayBuffer is collected; V8 does not count them as memory, so
  // collect now and then, and let the event loop turn so the addon's finalizers run, or thousands of live
  // mappings pile up (run with --expose-gc).
  if (executions % 500 === 0) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const input = mutate(corpus[below(corpus.length)]);
  if (await run(input)) corpus.push(input);
}
report(0);

async function run(input) {
  executions++;
  let signature;
  try {
    signature = await harness.fuzz(input);
  } catch (error) {
    const name = `crash-${createHash("sha1").update(input).digest("hex")}`;
    writeFileSync(join(outDir, name), input);
    console.error(`${harnessName}: input ${join(outDir, name)} (${input.length} bytes) after ${executions} executions:`);
    console.error(error instanceof Error ? error.stack : String(error));
    report(1);
    process.exit(1);
  }
  if (signature === undefined || signatures.has(signature) || corpus.length >= 4096) return false;
  signatures.add(signature);
  return true;
}
