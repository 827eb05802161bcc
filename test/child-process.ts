/** Running the CLI as a child process in crash tests: its output, exit status and the signal that ended it. */
import { spawn } from "node:child_process";

export interface Finished {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Seed of random kill points (printed in failures; set LABOR_TEST_SEED to replay one). */
export const killSeed = Number(process.env.LABOR_TEST_SEED ?? Date.now() % 1e6);

/** Run node with `args` as a child; `killAfterMs` sends it SIGKILL from outside after that long. */
export function runChild(args: string[], env: Record<string, string> = {}, killAfterMs?: number): Promise<Finished> {
  const child = spawn(process.execPath, args, { env: { ...process.env, CI: "1", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  return new Promise((resolve) =>
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    }),
  );
}
