// libFuzzer (Jazzer.js) harness: safetensors header and offset validation (src/io/safetensors.ts parseHeader,
// reached through openSafetensors, which maps the file with the native addon's mapFile), then every
// tensor's view. Any input must give a file whose views lie inside the mapping, or a SafetensorsError.
import { openSafetensors } from "../../dist/src/io/safetensors.js";
import { checkToolError, scratchFile } from "./oracle.js";

const write = scratchFile("input.safetensors");

export function fuzz(data) {
  const path = write(data);
  let file;
  try {
    file = openSafetensors(path);
  } catch (error) {
    return checkToolError(error);
  }
  for (const name of file.names()) {
    const info = file.info(name);
    const bytes = file.bytes(name);
    if (bytes.byteOffset !== info.byteOffset || bytes.byteLength !== info.byteLength || info.byteOffset + info.byteLength > data.length) {
      throw new Error(`tensor ${name}: view [${bytes.byteOffset}, +${bytes.byteLength}) disagrees with its info or the file (${data.length} bytes)`);
    }
    try {
      const tensor = file.tensor(name);
      const elements = tensor.shape.reduce((a, b) => a * b, 1);
      if (tensor.data.length !== elements) throw new Error(`tensor ${name}: ${tensor.data.length} elements for shape [${tensor.shape}]`);
    } catch (error) {
      checkToolError(error);
    }
  }
  return `ok ${file.names().map((name) => file.info(name).dtype).join(",")}`;
}
