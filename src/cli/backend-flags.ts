import type { Backend } from "../engine/backend.js";
import { BACKEND_NAMES, createBackend, type BackendName } from "../engine/select.js";
import type { CpuIsa } from "../engine/native.js";
import { oneOf, optionalInteger, type FlagSpec } from "./args.js";

export const BACKEND_FLAGS: FlagSpec = {
  backend: { type: "string" },
  threads: { type: "string" },
  isa: { type: "string" },
};

export const BACKEND_HELP = `  --backend NAME   auto | cpu | webgpu | cuda (default auto: cuda → webgpu → cpu, first available;
                   auto passes over a software WebGPU adapter such as lavapipe)
  --threads N      CPU worker threads (default: all cores)
  --isa PATH       CPU kernels: amx | avx512 | avx2 | scalar (default: best this CPU runs)`;

const ISAS: readonly CpuIsa[] = ["amx", "avx512", "avx2", "scalar"];

export async function backendFromFlags(values: Record<string, unknown>): Promise<Backend> {
  const name = oneOf<BackendName>(values, "backend", BACKEND_NAMES, "auto");
  const threads = values.threads === undefined ? undefined : optionalInteger(values, "threads", 0, 1);
  const isa = values.isa === undefined ? undefined : oneOf<CpuIsa>(values, "isa", ISAS, "scalar");
  return createBackend(name, { threads, isa });
}
