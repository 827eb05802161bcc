// libFuzzer (Jazzer.js) harness: the binary predictions reader (src/score/predictions-binary.ts
// readBinaryPredictions; the magic itself is checked by readPredictions before it calls this). Any input must
// give records with one log-probability per code, or a one-line Error naming the file.
import { readBinaryPredictions } from "../../dist/src/score/predictions-binary.js";
import { checkToolError, scratchFile } from "./oracle.js";

const write = scratchFile("input.bin");

export async function fuzz(data) {
  const path = write(data);
  let records = 0;
  try {
    await readBinaryPredictions(path, (record, header) => {
      records++;
      if (record.logProbs.length !== header.codes.length) {
        throw new Error(`record has ${record.logProbs.length} log-probs for ${header.codes.length} codes`);
      }
    });
  } catch (error) {
    return checkToolError(error);
  }
  return `ok ${records}`;
}
