/**
 * llama.cpp through node-llama-cpp@3.21.1 (installed in bench/peers/, never a runtime dependency): the
 * implementation we did not write, used by the parity test and the benchmarks.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** node-llama-cpp in bench/peers/node_modules, found from this file in bench/peers or in its compiled copy (dist/bench/peers). */
function findPeerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const relative = join("node_modules", "node-llama-cpp", "dist", "index.js");
  const candidates = [join(here, relative), join(here, "..", "..", "..", "bench", "peers", relative)];
  return candidates.find((path) => existsSync(path)) ?? candidates[0];
}

const peerEntry = findPeerEntry();

/** Why the peer can't be used here, or null when it can. */
export function llamaCppUnavailableReason(): string | null {
  return existsSync(peerEntry)
    ? null
    : "node-llama-cpp is not installed in bench/peers (run: npm ci --prefix bench/peers --omit=optional)";
}

export interface LlamaCppRunOptions {
  threads?: number;
  /** "F32" (exact parity) or llama.cpp's default "F16" KV cache. */
  kvCacheType?: "F32" | "F16";
}

/** The slice of node-llama-cpp's API used here (typed locally: the peer is not a dependency of the package). */
interface PeerSequence {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  controlledEvaluate(input: unknown[]): Promise<Array<{ next: { probabilities?: Map<number, number> } } | undefined>>;
  clearHistory(): Promise<void>;
  dispose(): void;
}
interface PeerContext {
  getSequence(): PeerSequence;
  dispose(): Promise<void>;
}
interface PeerModel {
  createContext(options: Record<string, unknown>): Promise<PeerContext>;
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}
interface PeerLlama {
  loadModel(options: { modelPath: string }): Promise<PeerModel>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(options: Record<string, unknown>): Promise<PeerLlama>;
}

async function importPeer(): Promise<NodeLlamaCpp> {
  const reason = llamaCppUnavailableReason();
  if (reason) throw new Error(reason);
  return (await import(pathToFileURL(peerEntry).href)) as NodeLlamaCpp;
}

/**
 * Per-token natural-log probabilities from llama.cpp: for each sequence, result[t] = log p(tokens[t] | tokens[<t])
 * for t ≥ 1 (NaN at t = 0), read from the full next-token distribution after each token.
 */
export async function llamaCppTokenLogprobs(
  ggufPath: string,
  sequences: readonly (readonly number[])[],
  options: LlamaCppRunOptions = {},
): Promise<Float64Array[]> {
  const { getLlama } = await importPeer();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  const model = await llama.loadModel({ modelPath: ggufPath });
  const longest = Math.max(...sequences.map((s) => s.length));
  const kvType = options.kvCacheType ?? "F32";
  const context = await model.createContext({
    contextSize: Math.max(256, Math.ceil(longest / 256) * 256),
    batchSize: Math.max(256, longest),
    flashAttention: false,
    threads: options.threads,
    experimentalKvCacheKeyType: kvType,
    experimentalKvCacheValueType: kvType,
  });
  try {
    const results: Float64Array[] = [];
    const sequence = context.getSequence();
    for (const tokens of sequences) {
      await sequence.clearHistory();
      const input = tokens.map((token) => [token, { generateNext: { probabilities: true } }]);
      const outputs = await sequence.controlledEvaluate(input);
      const logprobs = new Float64Array(tokens.length).fill(NaN);
      for (let t = 1; t < tokens.length; t++) {
        const probabilities = outputs[t - 1]?.next.probabilities;
        const p = probabilities?.get(tokens[t]);
        logprobs[t] = p === undefined ? -Infinity : Math.log(p);
      }
      results.push(logprobs);
    }
    sequence.dispose();
    return results;
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/** A loaded llama.cpp model and context for timing prompt evaluation (no logits read back). */
export interface LlamaCppPromptSession {
  /** Evaluate every sequence from an empty KV cache (F16, llama.cpp's default); returns the seconds taken. */
  evaluate(sequences: readonly (readonly number[])[]): Promise<number>;
  dispose(): Promise<void>;
}

export async function openLlamaCppPrompt(ggufPath: string, longest: number, threads: number): Promise<LlamaCppPromptSession> {
  const { getLlama } = await importPeer();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  const model = await llama.loadModel({ modelPath: ggufPath });
  const context = await model.createContext({
    contextSize: Math.max(256, Math.ceil(longest / 256) * 256),
    batchSize: Math.max(256, longest),
    threads,
  });
  const sequence = context.getSequence();
  return {
    async evaluate(sequences) {
      const start = performance.now();
      for (const tokens of sequences) {
        await sequence.clearHistory();
        await sequence.evaluateWithoutGeneratingNewTokens([...tokens]);
      }
      return (performance.now() - start) / 1000;
    },
    async dispose() {
      sequence.dispose();
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
