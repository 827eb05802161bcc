// Line coverage of the reader files from a V8 coverage directory (NODE_V8_COVERAGE): each character takes
// the count of the innermost block range over it; a line counts as covered when any of its non-blank
// characters ran, as reached when any did not run. Prints one JSON line per file.
//   node fuzz/js/coverage.js <coverage dir> <dist file> ...
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, ...files] = process.argv.slice(2);
const reports = readdirSync(dir).filter((name) => name.endsWith(".json")).map((name) => JSON.parse(readFileSync(join(dir, name), "utf8")));
for (const file of files) {
  const url = pathToFileURL(resolve(file)).href;
  const source = readFileSync(file, "utf8");
  const counts = new Int32Array(source.length).fill(-1);
  const ranges = reports.flatMap((report) => report.result.filter((script) => script.url === url))
    .flatMap((script) => script.functions.flatMap((fn) => fn.ranges));
  ranges.sort((a, b) => (b.endOffset - b.startOffset) - (a.endOffset - a.startOffset));
  for (const range of ranges) {
    for (let i = range.startOffset; i < Math.min(range.endOffset, source.length); i++) {
      counts[i] = counts[i] <= 0 || range.count === 0 ? range.count : counts[i] + range.count;
    }
  }
  let lines = 0, covered = 0, offset = 0;
  for (const line of source.split("\n")) {
    let ran = false, code = false;
    for (let i = 0; i < line.length; i++) {
      if (/\s/.test(line[i]) || counts[offset + i] < 0) continue;
      code = true;
      if (counts[offset + i] > 0) ran = true;
    }
    if (code && !line.trim().startsWith("//") && !line.trim().startsWith("*") && !line.trim().startsWith("/*")) {
      lines++;
      if (ran) covered++;
    }
    offset += line.length + 1;
  }
  console.log(JSON.stringify({ file, lines, covered, percent: lines ? Math.round((1000 * covered) / lines) / 10 : 0 }));
}
