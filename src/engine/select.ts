/**
 * Backend selection: `auto` tries cuda → webgpu → cpu and takes the first that is available; a named backend
 * is used or refused with the reason it is unavailable. `auto` passes over a software WebGPU adapter (Mesa's
 * lavapipe, SwiftShader): it runs the WGSL kernels correctly but far slower than the native CPU kernels, so it
 * is used only when asked for (`--backend webgpu`).
 */
import { readdirSync } from "node:fs";
import type { Backend } from "./backend.js";
import { createCpuBackend } from "./cpu/backend.js";
import { createCudaBackend, cudaStatus, describeCudaProbe } from "./cuda/backend.js";
import type { CpuIsa } from "./native.js";
import { requestAdapter, type AdapterSummary } from "./webgpu/device.js";
import { WebGpuBackend } from "./webgpu/backend.js";

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
  /** Why it is unavailable, or what it would run on. */
  reason: string;
  /** Whether `auto` would take it when it is the first available (false for a software WebGPU adapter). */
  preferred: boolean;
  /** WebGPU: the adapter found (name, features, limits). */
  adapter?: AdapterSummary;
}

/** A CPU-emulated adapter: Dawn's fallback flag, or a known software driver's name. */
export function isSoftwareAdapter(adapter: AdapterSummary): boolean {
  return adapter.isFallback || /llvmpipe|lavapipe|swiftshader|software/i.test(`${adapter.vendor} ${adapter.architecture} ${adapter.description}`);
}

/** CUDA: the addon must have been built with nvcc, and a driver and a GPU of compute capability ≥ 8.0 found. */
function probeCuda(): BackendAvailability {
  const status = cudaStatus();
  if ("reason" in status) return { name: "cuda", available: false, reason: status.reason, preferred: false };
  return { name: "cuda", available: true, reason: describeCudaProbe(status.probe), preferred: true };
}

/** What each backend would do on this machine, without starting any (WebGPU: finds an adapter, opens no device). */
export async function probeBackends(): Promise<BackendAvailability[]> {
  const found = await requestAdapter();
  let webgpu: BackendAvailability;
  if ("reason" in found) {
    webgpu = { name: "webgpu", available: false, reason: found.reason, preferred: false };
  } else {
    const software = isSoftwareAdapter(found.summary);
    webgpu = {
      name: "webgpu",
      available: true,
      reason: `${found.summary.name}${software ? " (a software adapter: auto prefers the native CPU kernels; --backend webgpu forces it)" : ""}`,
      preferred: !software,
      adapter: found.summary,
    };
  }
  return [
    probeCuda(),
    webgpu,
    { name: "cpu", available: true, reason: "native C++ kernels", preferred: true },
  ];
}

/**
 * Whether a GPU that WebGPU could drive may be present. On Linux every GPU driver (Mesa's and NVIDIA's) exposes
 * a DRM render node, /dev/dri/renderD*; without one only a software adapter can exist, which `auto` passes
 * over anyway — and probing it makes Dawn print driver warnings on every command ("Couldn't load Vulkan",
 * lavapipe's "maxDynamic… reduced"), which read like errors. Other platforms (Metal, D3D12) are probed.
 */
export function mayHaveGpu(platform: NodeJS.Platform = process.platform, driDirectory = "/dev/dri"): boolean {
  if (platform !== "linux") return true;
  try {
    return readdirSync(driDirectory).some((entry) => entry.startsWith("renderD"));
  } catch {
    return false;
  }
}

export async function createBackend(name: BackendName, options: BackendOptions = {}): Promise<Backend> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`--backend: unknown backend "${name}" (choose one of ${BACKEND_NAMES.join(", ")})`);
  }
  const cpu = () => createCpuBackend({ isa: options.isa, threads: options.threads });
  if (name === "cpu") return cpu();
  // auto on a machine without a GPU: the answer is the CPU; no WebGPU probe (and none of Dawn's warnings).
  if (name === "auto" && !probeCuda().available && !mayHaveGpu()) return cpu();
  const probes = await probeBackends();
  const pick = name === "auto" ? probes.find((p) => p.available && p.preferred)! : probes.find((p) => p.name === name)!;
  if (!pick.available) throw new Error(`--backend ${name}: unavailable: ${pick.reason}`);
  if (pick.name === "webgpu") return WebGpuBackend.create();
  if (pick.name === "cuda") return createCudaBackend();
  return cpu();
}
