import { loadNative } from "../../engine/native.js";
import { probeBackends } from "../../engine/select.js";
import { parseFlags } from "../args.js";

export const INFO_HELP = `labor-llm info

Prints the backends this machine can run, why any is unavailable, the WebGPU adapter (name, features, limits)
and the CPU kernel paths found and chosen.`;

export async function runInfo(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {});
  if (values.help) {
    console.log(INFO_HELP);
    return 0;
  }
  const cpu = loadNative().cpu;
  const isa = cpu.isaInfo();
  const probes = await probeBackends();
  console.log("backends (auto picks the first available, passing over a software WebGPU adapter):");
  for (const probe of probes) {
    console.log(`  ${probe.name.padEnd(7)} ${probe.available ? "available  " : "unavailable"}  ${probe.reason}`);
  }
  const adapter = probes.find((p) => p.name === "webgpu")?.adapter;
  if (adapter) {
    console.log("webgpu:");
    console.log(`  adapter: ${adapter.name} (vendor ${adapter.vendor || "?"}, architecture ${adapter.architecture || "?"})`);
    console.log(`  features: ${adapter.features.join(" ")}`);
    console.log(`  requested when present: shader-f16 ${adapter.features.includes("shader-f16") ? "yes" : "no"}, ` +
      `subgroups ${adapter.features.includes("subgroups") ? "yes" : "no"} (the kernels do not need them: ` +
      "16-bit floats are decoded with integer ops, reductions use workgroup memory)");
    console.log(`  limits: ${Object.entries(adapter.limits).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  console.log("cpu:");
  console.log(`  kernel paths available: ${isa.available.join(", ")}`);
  console.log(`  chosen: ${isa.selected} (the best available; --isa forces another)`);
  if (isa.amxUnavailableReason) console.log(`  amx: ${isa.amxUnavailableReason}`);
  const flags = Object.entries(isa.features)
    .map(([name, on]) => `${name}${on ? "+" : "-"}`)
    .join(" ");
  console.log(`  features: ${flags}`);
  console.log(`  threads: ${cpu.getThreads()}`);
  return 0;
}
