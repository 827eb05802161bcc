/**
 * WGSL sources from shaders/ (one file per op family), specialised by a tiny preprocessor: `#if A || B`,
 * `#if !A`, `#else`, `#endif` on boolean defines. shaders/common.wgsl is prepended to every kernel.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type Defines = Readonly<Record<string, boolean>>;

/** The shaders/ folder of this package, found from this file (src/… when run from TS, dist/src/… when built). */
function shaderDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "shaders");
    if (existsSync(join(candidate, "common.wgsl"))) return candidate;
    dir = dirname(dir);
  }
  throw new Error("webgpu: shaders/common.wgsl not found above " + dirname(fileURLToPath(import.meta.url)));
}

const sources = new Map<string, string>();

function source(name: string): string {
  let text = sources.get(name);
  if (text === undefined) {
    text = readFileSync(join(shaderDirectory(), `${name}.wgsl`), "utf8");
    sources.set(name, text);
  }
  return text;
}

function condition(expression: string, defines: Defines, where: string): boolean {
  return expression.split("||").some((term) => {
    const name = term.trim();
    const negated = name.startsWith("!");
    const bare = negated ? name.slice(1).trim() : name;
    if (!/^[A-Z0-9_]+$/.test(bare)) throw new Error(`${where}: bad #if condition "${expression}"`);
    return (defines[bare] ?? false) !== negated;
  });
}

/** Keep the lines whose #if/#else branches are taken. */
export function preprocess(text: string, defines: Defines, where: string): string {
  const out: string[] = [];
  // Each open #if: is its current branch taken, and was its enclosing branch taken?
  const stack: { taken: boolean; parent: boolean; matched: boolean }[] = [];
  const active = () => (stack.length === 0 ? true : stack[stack.length - 1].taken);
  text.split("\n").forEach((line, index) => {
    const directive = line.trim();
    if (directive.startsWith("#if ")) {
      const parent = active();
      const value = parent && condition(directive.slice(4), defines, `${where}:${index + 1}`);
      stack.push({ taken: value, parent, matched: value });
    } else if (directive === "#else") {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`${where}:${index + 1}: #else without #if`);
      top.taken = top.parent && !top.matched;
    } else if (directive === "#endif") {
      if (!stack.pop()) throw new Error(`${where}:${index + 1}: #endif without #if`);
    } else if (active()) {
      out.push(line);
    }
  });
  if (stack.length > 0) throw new Error(`${where}: unterminated #if`);
  return out.join("\n");
}

/** The full WGSL of kernel family `name` under `defines`. */
export function shaderCode(name: string, defines: Defines): string {
  return `${source("common")}\n${preprocess(source(name), defines, `shaders/${name}.wgsl`)}`;
}
