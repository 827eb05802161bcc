/**
 * Backend selection: `auto` tries cuda → webgpu → cpu and takes the first that is available; a named backend
 * is used or refused with the reason it is unavailable.
 */
import type { Backend } from "./backend.js";
import { createCpuBackend } from "./cpu/backend.js";
import { createCudaBackend, cudaStatus, describeCudaProbe } from "./cuda/backend.js";
import type { CpuIsa } from "./native.js";

export type BackendName = "auto" | "cpu" | "webgpu" | "cuda";
export const BACKEND_NAMES: readonly BackendName[] = ["auto", "cpu", "webgpu", "cuda"];

export interface BackendOptions {
  /** CPU only: force an instruction-set path. */
  isa?: CpuIsa;
  /** CPU only: worker threads (default: all cores). */
  threads?: number;
}

export interface BackendAvailability {
  name: Exclude<BackendName, "auto">;
  available: boolean;
  reason: string;
}

/** CUDA: the addon must have been built with nvcc, and a driver and a GPU of compute capability ≥ 8.0 found. */
function probeCuda(): BackendAvailability {
  const status = cudaStatus();
  if ("reason" in status) return { name: "cuda", available: false, reason: status.reason };
  return { name: "cuda", available: true, reason: describeCudaProbe(status.probe) };
}

/** What each backend would do on this machine, without starting any. */
export function probeBackends(): BackendAvailability[] {
  return [
    probeCuda(),
    { name: "webgpu", available: false, reason: "the WebGPU backend is not implemented yet (issue: WebGPU backend)" },
    { name: "cpu", available: true, reason: "native C++ kernels" },
  ];
}

export function createBackend(name: BackendName, options: BackendOptions = {}): Backend {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`--backend: unknown backend "${name}" (choose one of ${BACKEND_NAMES.join(", ")})`);
  }
  const probes = probeBackends();
  const pick = name === "auto" ? probes.find((p) => p.available)! : probes.find((p) => p.name === name)!;
  if (!pick.available) throw new Error(`--backend ${name}: unavailable: ${pick.reason}`);
  if (pick.name === "cuda") return createCudaBackend();
  return createCpuBackend({ isa: options.isa, threads: options.threads });
}
