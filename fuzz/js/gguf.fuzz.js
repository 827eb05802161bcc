// libFuzzer (Jazzer.js) harness: the GGUF reader (src/io/gguf.ts readGgufHeader). Any input must give a
// header or a one-line Error naming the file; tensor offsets that are returned must be numbers ≥ 0.
import { readGgufHeader } from "../../dist/src/io/gguf.js";
import { checkToolError, scratchFile } from "./oracle.js";

const write = scratchFile("input.gguf");

export function fuzz(data) {
  const path = write(data);
  let header;
  try {
    header = readGgufHeader(path);
  } catch (error) {
    return checkToolError(error);
  }
  if (!Number.isSafeInteger(header.dataOffset) || header.dataOffset < 0) throw new Error(`bad dataOffset ${header.dataOffset}`);
  for (const tensor of header.tensors) {
    if (!Number.isSafeInteger(tensor.offset) || tensor.offset < 0) throw new Error(`tensor ${tensor.name}: bad offset ${tensor.offset}`);
  }
  return `ok ${header.tensors.length} ${header.metadata.size}`;
}
