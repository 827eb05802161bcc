/**
 * Strict JSON for files we are handed: an object, with no duplicate keys. `JSON.parse` silently keeps the
 * last of two equal keys, which would let a crafted safetensors header describe one tensor twice and have
 * us read whichever came last (REFERENCE §1 rule 2), so headers, index files and config.json are scanned
 * once more after they parse.
 */

/** Where a duplicated key was found: the key, and the keys of the objects that enclose it (outermost first). */
export interface DuplicateKey {
  key: string;
  path: string[];
}

interface ObjectFrame {
  kind: "object";
  keys: Set<string>;
  expectingKey: boolean;
  /** The last key read in this object (the one whose value is being scanned). */
  currentKey: string;
}

interface ArrayFrame {
  kind: "array";
}

/**
 * The first key that occurs twice in one object of `text`, or null. `text` must already be valid JSON
 * (call `JSON.parse` first): the scanner only tracks strings and brackets. Iterative, so a deeply nested
 * document cannot overflow the stack.
 */
export function findDuplicateKey(text: string): DuplicateKey | null {
  const stack: Array<ObjectFrame | ArrayFrame> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      stack.push({ kind: "object", keys: new Set(), expectingKey: true, currentKey: "" });
    } else if (c === 0x5b /* [ */) {
      stack.push({ kind: "array" });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === "object") top.expectingKey = true;
    } else if (c === 0x22 /* " */) {
      const end = endOfString(text, i);
      const top = stack[stack.length - 1];
      if (top?.kind === "object" && top.expectingKey) {
        // Decode escapes so that "a" and "\u0061" count as the same key.
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { key, path: enclosingKeys(stack) };
        top.keys.add(key);
        top.currentKey = key;
        top.expectingKey = false;
      }
      i = end;
    }
  }
  return null;
}

/** Index of the closing quote of the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  return text.length - 1;
}

function enclosingKeys(stack: Array<ObjectFrame | ArrayFrame>): string[] {
  const keys: string[] = [];
  for (let depth = 0; depth < stack.length - 1; depth++) {
    const frame = stack[depth];
    keys.push(frame.kind === "object" ? frame.currentKey : "[]");
  }
  return keys;
}

/** Parse JSON text that must be an object without duplicate keys; `fail` gets a detail like "is not valid JSON (…)". */
/**
 * Parse text that must be a JSON object without duplicate keys. `fail` receives a detail such as
 * `is not valid JSON (…)` or `has duplicate key "x"` and must throw (the caller adds the file name).
 */
export function parseJsonObject(text: string, fail: (detail: string) => never): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    fail(`is not valid JSON (${(error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ")})`);
  }
  if (!isPlainObject(value)) fail(`must be a JSON object, found ${describeJson(value)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    const where = duplicate.path.length > 0 ? ` inside ${JSON.stringify(duplicate.path.join("."))}` : "";
    fail(`has duplicate key ${JSON.stringify(duplicate.key)}${where}`);
  }
  return value as Record<string, unknown>;
}

/** A JSON object (not an array, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short rendering of a JSON value for an error message. */
export function describeJson(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value) && value.every((v) => typeof v === "number")) return `[${value.join(", ")}]`;
  const text = JSON.stringify(value) ?? String(value);
  const kind = Array.isArray(value) ? "array " : value === null ? "" : typeof value === "object" ? "object " : "";
  return kind + (text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
