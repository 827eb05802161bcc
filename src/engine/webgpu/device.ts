/**
 * The WebGPU side of the WebGPU backend: loading Dawn (npm `webgpu`), the device (with the adapter's real
 * limits and its shader-f16/subgroups features), the buffer pool, the pipeline cache, one command encoder per
 * step (ops only record; `flush` submits; no per-op sync), error scopes turned into errors that name the op and
 * its shapes, and readback.
 *
 * Ordering: recorded dispatches run in recording order. `queue.writeBuffer` runs at the point of the queue
 * where it is called, i.e. before the commands still being recorded — so an upload into a buffer that
 * recorded-but-unsubmitted commands use (a pooled buffer being reused) first submits those commands.
 */
import { shaderCode, type Defines } from "./shaders.js";

export interface WebGpuModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

export type LoadResult = { module: WebGpuModule } | { reason: string };

let loaded: LoadResult | undefined;

/** Import the optional `webgpu` package (Dawn's Node bindings) once; say why when it can't be. */
export async function loadWebGpuModule(): Promise<LoadResult> {
  if (loaded) return loaded;
  const name = "webgpu"; // not a literal import: the package is an optional dependency
  try {
    const module = (await import(name)) as WebGpuModule;
    // GPUBufferUsage, GPUMapMode, … are globals in a browser; Dawn's Node bindings hand them over here.
    for (const [key, value] of Object.entries(module.globals)) {
      if (!(key in globalThis)) (globalThis as Record<string, unknown>)[key] = value;
    }
    loaded = { module };
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    loaded = { reason: `the optional npm package "webgpu" (Dawn) could not be loaded: ${message} (npm install webgpu)` };
  }
  return loaded;
}

export interface AdapterSummary {
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  /** "vulkan", "metal", "d3d12", … when the adapter says so (Dawn puts it in the description). */
  isFallback: boolean;
  features: string[];
  limits: Record<string, number>;
}

const REPORTED_LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension", "maxStorageBuffersPerShaderStage", "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment", "maxUniformBufferBindingSize",
] as const;

/** The limits this backend asks for: the adapter's own values, not WebGPU's defaults. */
const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxStorageBuffersPerShaderStage",
] as const;

/** The shader features used when present (both optional: every kernel has a path without them). */
export const WANTED_FEATURES = ["shader-f16", "subgroups"] as const;

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key of REPORTED_LIMITS) limits[key] = adapter.limits[key];
  const name = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") || "unknown adapter";
  return {
    name,
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    isFallback: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    features: [...adapter.features].sort(),
    limits,
  };
}

export type AdapterResult = { gpu: GPU; adapter: GPUAdapter; summary: AdapterSummary } | { reason: string };

/** Find an adapter (high-performance preferred). */
export async function requestAdapter(): Promise<AdapterResult> {
  const loaded = await loadWebGpuModule();
  if ("reason" in loaded) return loaded;
  let gpu: GPU;
  try {
    gpu = loaded.module.create([]);
  } catch (error) {
    return { reason: `Dawn failed to start: ${error instanceof Error ? error.message : String(error)}` };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    return {
      reason: "no WebGPU adapter found (no Vulkan/Metal/D3D12 driver Dawn accepts; on Linux without a GPU install " +
        "Mesa's lavapipe: mesa-vulkan-drivers ≥ 24 and libvulkan1, see README \"WebGPU\")",
    };
  }
  return { gpu, adapter, summary: summarizeAdapter(adapter) };
}

// ---- tensors' storage ----

export const ELEMENT_BYTES = { f32: 4, i32: 4, bf16: 2, f16: 2 } as const;

/** A GPU buffer owned by one root tensor (views share it). */
export class Storage {
  freed = false;
  /** Host copy of an i32 tensor's elements, kept when known (uploads) so ids can be checked on the host. */
  host: Int32Array | undefined;

  constructor(
    readonly buffer: GPUBuffer,
    readonly pooled: boolean,
  ) {}
}

/**
 * One tensor binding: elements [start, start + count) of a view that begins at element `offset` of `storage`.
 * The kernel sees that range from index 0 (its offset parameter points at element `start`).
 */
export interface BindingRange {
  storage: Storage;
  /** Element offset of the view in its buffer. */
  offset: number;
  elementBytes: number;
  start: number;
  count: number;
  /** For messages: the tensor's role and description. */
  label: string;
  /** Whether the kernel writes it (WebGPU forbids a writable binding overlapping any other binding). */
  write: boolean;
}

/** A u32 (plain number, negative i32 wrap) or an f32 (`{ f }`) uniform word. */
export type ParamWord = number | { f: number };

export function f32(value: number): ParamWord {
  return { f: value };
}

interface PendingError {
  scope: Promise<GPUError | null>;
  label: string;
}

/** Size classes of pooled buffers: multiples of 256 B, at most ~19% above the request (4 steps per octave). */
export function poolSizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const step = 2 ** Math.max(8, Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

const UNIFORM_BUFFER_BYTES = 65536;
/** Bytes of parameters one dispatch may use (the largest Params struct is well below). */
const PARAM_BYTES = 128;
/** Freed buffers kept for reuse, in bytes, before further frees destroy them. */
const POOL_LIMIT_BYTES = 2 ** 31;

/** How a context is opened; the two limits may only be made stricter than the adapter's (tests use them). */
export interface GpuContextOptions {
  /** Features to request when present (default: shader-f16 and subgroups). */
  features?: readonly string[];
  /** Bind at most this many bytes of a buffer at once (default: the adapter's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Align binding offsets to this many bytes (a multiple of the adapter's; default the adapter's). */
  offsetAlignment?: number;
}

export class GpuContext {
  readonly limits: GPUSupportedLimits;
  /** The largest binding this context makes (≤ maxStorageBufferBindingSize). */
  readonly bindingLimit: number;
  /** The offset alignment of bindings (a multiple of minStorageBufferOffsetAlignment). */
  readonly offsetAlignment: number;
  readonly features: ReadonlySet<string>;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;
  private readonly stagingPool: GPUBuffer[] = [];
  private readonly uniformBuffers: GPUBuffer[] = [];
  private readonly slotBytes: number;
  private readonly slotsPerBuffer: number;
  private params: ArrayBuffer;
  private paramWords: Uint32Array;
  private paramFloats: Float32Array;
  private slotsUsed = 0;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batchOps: string[] = [];
  /** Per buffer (not per tensor: pooled buffers change owners), the last batch whose commands bind it. */
  private readonly lastBatch = new WeakMap<GPUBuffer, number>();
  private batch = 0;
  private pendingErrors: PendingError[] = [];
  private readonly deferredDestroy: GPUBuffer[] = [];
  private readonly uncaptured: string[] = [];
  private lostReason: string | undefined;
  private destroyed = false;

  private constructor(
    private gpu: GPU | undefined,
    readonly device: GPUDevice,
    readonly summary: AdapterSummary,
    options: GpuContextOptions,
  ) {
    this.limits = device.limits;
    this.bindingLimit = Math.min(options.maxBindingBytes ?? Infinity, device.limits.maxStorageBufferBindingSize);
    const align = device.limits.minStorageBufferOffsetAlignment;
    this.offsetAlignment = Math.max(align, Math.ceil((options.offsetAlignment ?? align) / align) * align);
    this.features = new Set([...device.features]);
    this.slotBytes = Math.max(PARAM_BYTES, device.limits.minUniformBufferOffsetAlignment);
    this.slotsPerBuffer = Math.floor(UNIFORM_BUFFER_BYTES / this.slotBytes);
    this.params = new ArrayBuffer(this.slotBytes * this.slotsPerBuffer);
    this.paramWords = new Uint32Array(this.params);
    this.paramFloats = new Float32Array(this.params);
    device.addEventListener("uncapturederror", (event) => {
      this.uncaptured.push((event as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Open the device: the adapter's real limits, and shader-f16/subgroups when it has them. */
  static async open(options: GpuContextOptions = {}): Promise<GpuContext> {
    const found = await requestAdapter();
    if ("reason" in found) throw new Error(`webgpu: ${found.reason}`);
    const { gpu, adapter, summary } = found;
    const wanted = options.features ?? WANTED_FEATURES;
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const requiredLimits: Record<string, number> = {};
    for (const key of REQUESTED_LIMITS) requiredLimits[key] = adapter.limits[key];
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    return new GpuContext(gpu, device, summary, options);
  }

  get hasF16(): boolean {
    return this.features.has("shader-f16");
  }

  get hasSubgroups(): boolean {
    return this.features.has("subgroups");
  }

  // ---- buffers ----

  /** A storage buffer of at least `bytes` (pooled unless `exact`). */
  createStorage(bytes: number, label: string, exact = false): Storage {
    this.checkAlive();
    const size = exact ? Math.max(16, Math.ceil(bytes / 16) * 16) : poolSizeClass(bytes);
    if (size > this.limits.maxBufferSize) {
      throw new Error(`${label}: ${bytes} bytes exceed this adapter's maxBufferSize ${this.limits.maxBufferSize}`);
    }
    if (!exact) {
      const reuse = this.pool.get(size)?.pop();
      if (reuse) {
        this.pooledBytes -= size;
        return new Storage(reuse, true);
      }
    }
    this.device.pushErrorScope("out-of-memory");
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.pendingErrors.push({ scope: this.device.popErrorScope(), label: `${label}: allocating ${size} bytes` });
    return new Storage(buffer, !exact);
  }

  release(storage: Storage): void {
    if (storage.freed) return;
    storage.freed = true;
    storage.host = undefined;
    const size = storage.buffer.size;
    if (storage.pooled && this.pooledBytes + size <= POOL_LIMIT_BYTES) {
      let list = this.pool.get(size);
      if (!list) this.pool.set(size, (list = []));
      list.push(storage.buffer);
      this.pooledBytes += size;
    } else if (this.boundInOpenBatch(storage.buffer)) {
      this.deferredDestroy.push(storage.buffer); // still bound by commands not yet submitted
    } else {
      storage.buffer.destroy();
    }
  }

  private boundInOpenBatch(buffer: GPUBuffer): boolean {
    return this.encoder !== undefined && this.lastBatch.get(buffer) === this.batch;
  }

  /** Copy host bytes into the start of a buffer (padded to a multiple of 4). */
  write(storage: Storage, data: ArrayBufferView): void {
    this.checkAlive();
    // The buffer may have been another tensor's a moment ago (pooled): commands recorded for that tensor must
    // run before this write, which the queue would otherwise do first.
    if (this.boundInOpenBatch(storage.buffer)) this.flush();
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (bytes.byteLength > 0) this.device.queue.writeBuffer(storage.buffer, 0, bytes);
  }

  // ---- kernels ----

  private pipeline(shader: string, defines: Defines): GPUComputePipeline {
    const key = `${shader}|${Object.keys(defines).filter((k) => defines[k]).sort().join(",")}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = shaderCode(shader, defines);
      const module = this.device.createShaderModule({ code, label: key });
      pipeline = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: key });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * Record one dispatch of kernel `shader` (specialised by `defines`). Binding 0 is the uniform parameters:
   * the element offset of each tensor binding (in order; null bindings are skipped but keep their slot), then
   * `params`. `label` names the op and its shapes for errors.
   */
  dispatch(label: string, shader: string, defines: Defines, bindings: readonly (BindingRange | null)[],
    params: readonly ParamWord[], groups: readonly [number, number, number]): void {
    this.checkAlive();
    if (groups.some((g) => g === 0)) return;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups.some((g) => g > maxGroups)) {
      throw new Error(`${label}: needs [${groups.join(", ")}] workgroups, above this adapter's ${maxGroups} per dimension`);
    }
    const windows = bindings.map((b) => (b ? this.window(label, b) : null));
    this.checkOverlaps(label, bindings, windows);
    const words = [...windows.map((w) => (w ? w.elementOffset : 0)), ...params];
    if (words.length * 4 > PARAM_BYTES) throw new Error(`${label}: too many kernel parameters (${words.length})`);
    if (this.slotsUsed === this.slotsPerBuffer * 64) this.flush();
    const slot = this.slotsUsed++;
    const bufferIndex = Math.floor(slot / this.slotsPerBuffer);
    while (this.uniformBuffers.length <= bufferIndex) {
      this.uniformBuffers.push(this.device.createBuffer({ size: UNIFORM_BUFFER_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }));
    }
    if (this.paramWords.length < (slot + 1) * (this.slotBytes / 4)) this.growParams();
    const base = (slot * this.slotBytes) / 4;
    words.forEach((word, i) => {
      if (typeof word === "number") this.paramWords[base + i] = word >>> 0;
      else this.paramFloats[base + i] = word.f;
    });

    this.device.pushErrorScope("validation");
    const pipeline = this.pipeline(shader, defines);
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.uniformBuffers[bufferIndex], offset: (slot % this.slotsPerBuffer) * this.slotBytes, size: this.slotBytes },
    }];
    windows.forEach((w, i) => {
      if (w) entries.push({ binding: i + 1, resource: { buffer: w.buffer, offset: w.byteOffset, size: w.byteSize } });
    });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.pendingErrors.push({ scope: this.device.popErrorScope(), label });
    this.batchOps.push(label.split(":")[0]);
    for (const b of bindings) if (b) this.lastBatch.set(b.storage.buffer, this.batch);
  }

  /** A written binding may not overlap another binding of the same buffer (a WebGPU rule): say which ones. */
  private checkOverlaps(label: string, bindings: readonly (BindingRange | null)[],
    windows: readonly ({ byteOffset: number; byteSize: number } | null)[]): void {
    for (let i = 0; i < bindings.length; i++) {
      for (let j = i + 1; j < bindings.length; j++) {
        const a = bindings[i], b = bindings[j], wa = windows[i], wb = windows[j];
        if (!a || !b || !wa || !wb || a.storage !== b.storage || (!a.write && !b.write)) continue;
        if (wa.byteOffset < wb.byteOffset + wb.byteSize && wb.byteOffset < wa.byteOffset + wa.byteSize) {
          throw new Error(`${label}: ${a.label} and ${b.label} share memory (this op on webgpu needs them apart)`);
        }
      }
    }
  }

  /** Workgroups [x, y, 1] covering `count` groups of 1-D work (x ≤ the per-dimension limit). */
  grid(count: number): [number, number, number] {
    if (count === 0) return [0, 0, 0];
    const x = Math.min(count, this.limits.maxComputeWorkgroupsPerDimension);
    return [x, Math.ceil(count / x), 1];
  }

  private growParams(): void {
    const bigger = new ArrayBuffer(this.params.byteLength * 2);
    new Uint8Array(bigger).set(new Uint8Array(this.params));
    this.params = bigger;
    this.paramWords = new Uint32Array(bigger);
    this.paramFloats = new Float32Array(bigger);
  }

  /** The part of a buffer one binding sees: aligned to the adapter's offset alignment, within the binding limit. */
  private window(label: string, b: BindingRange): { buffer: GPUBuffer; byteOffset: number; byteSize: number; elementOffset: number } {
    if (b.storage.freed) throw new Error(`${label}: ${b.label} was used after free()`);
    const buffer = b.storage.buffer;
    const first = (b.offset + b.start) * b.elementBytes;
    const end = (b.offset + b.start + Math.max(b.count, 1)) * b.elementBytes;
    const align = this.offsetAlignment;
    const byteOffset = Math.floor(first / align) * align;
    const byteSize = Math.min(Math.ceil((end - byteOffset) / 16) * 16, buffer.size - byteOffset);
    if (byteSize > this.bindingLimit) {
      throw new Error(`${label}: ${b.label} needs a binding of ${byteSize} bytes, above this adapter's ` +
        `maxStorageBufferBindingSize ${this.bindingLimit}`);
    }
    // Where element `start` of the view lies in the window: kernels index the bound range from 0.
    const elementOffset = b.offset + b.start - byteOffset / b.elementBytes;
    return { buffer, byteOffset, byteSize, elementOffset };
  }

  /** Submit everything recorded so far (no wait). */
  flush(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    if (this.encoder) {
      const wordsPerBuffer = (this.slotsPerBuffer * this.slotBytes) / 4;
      const used = this.slotsUsed * (this.slotBytes / 4);
      for (let i = 0; i * wordsPerBuffer < used; i++) {
        const words = Math.min(wordsPerBuffer, used - i * wordsPerBuffer);
        this.device.queue.writeBuffer(this.uniformBuffers[i], 0, this.paramWords, i * wordsPerBuffer, words);
      }
      this.device.pushErrorScope("validation");
      const commands = this.encoder.finish();
      this.device.queue.submit([commands]);
      const ops = [...new Set(this.batchOps)];
      this.pendingErrors.push({ scope: this.device.popErrorScope(), label: `submitting ops ${ops.join(", ")}` });
      this.encoder = undefined;
      this.slotsUsed = 0;
      this.batchOps = [];
      this.batch++;
    }
    for (const buffer of this.deferredDestroy.splice(0)) buffer.destroy();
  }

  /** Raise the first error any recorded op produced, naming that op. */
  async checkErrors(): Promise<void> {
    const pending = this.pendingErrors.splice(0);
    const results = await Promise.all(pending.map((p) => p.scope));
    const index = results.findIndex((r) => r !== null);
    if (index >= 0) throw new Error(`${pending[index].label}: WebGPU error: ${results[index]!.message}`);
    if (this.uncaptured.length > 0) throw new Error(`webgpu: uncaptured error: ${this.uncaptured.splice(0).join("; ")}`);
    if (this.lostReason) throw new Error(`webgpu: device lost (${this.lostReason})`);
  }

  /** Bytes [byteOffset, byteOffset + byteLength) of a buffer, after all recorded work. */
  async read(storage: Storage, byteOffset: number, byteLength: number, label: string): Promise<ArrayBuffer> {
    this.checkAlive();
    if (storage.freed) throw new Error(`${label}: tensor was used after free()`);
    this.flush();
    const start = Math.floor(byteOffset / 4) * 4;
    const size = Math.max(4, Math.ceil((byteOffset + byteLength - start) / 4) * 4);
    const copySize = Math.min(size, storage.buffer.size - start);
    const staging = this.staging(size);
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(storage.buffer, start, staging, 0, copySize);
    this.device.pushErrorScope("validation");
    this.device.queue.submit([encoder.finish()]);
    this.pendingErrors.push({ scope: this.device.popErrorScope(), label: `${label}: readback` });
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
    } catch (error) {
      await this.checkErrors();
      throw new Error(`${label}: readback failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const bytes = staging.getMappedRange(0, size).slice(byteOffset - start, byteOffset - start + byteLength);
    staging.unmap();
    this.stagingPool.push(staging);
    await this.checkErrors();
    return bytes;
  }

  private staging(size: number): GPUBuffer {
    const index = this.stagingPool.findIndex((b) => b.size >= size && b.size <= 4 * size);
    if (index >= 0) return this.stagingPool.splice(index, 1)[0];
    return this.device.createBuffer({ size: poolSizeClass(size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Submit and wait for the GPU to finish; raise any error. */
  async sync(): Promise<void> {
    this.checkAlive();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Release the device and drop Dawn's instance so Node can exit. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
    this.pipelines.clear();
    this.pool.clear();
    this.stagingPool.length = 0;
    this.gpu = undefined;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error("webgpu: the backend was disposed");
    if (this.lostReason) throw new Error(`webgpu: device lost (${this.lostReason})`);
  }

  /** Whether this context still holds Dawn's instance (for tests of disposal). */
  get holdsInstance(): boolean {
    return this.gpu !== undefined;
  }
}
