import { loadNative } from "../../engine/native.js";
import { probeBackends } from "../../engine/select.js";
import { parseFlags } from "../args.js";

export const INFO_HELP = `labor-llm info

Prints the backends this machine can run, why any is unavailable, and the CPU kernel paths found and chosen.`;

export function runInfo(argv: string[]): number {
  const { values } = parseFlags(argv, {});
  if (values.help) {
    console.log(INFO_HELP);
    return 0;
  }
  const cpu = loadNative().cpu;
  const isa = cpu.isaInfo();
  console.log("backends (auto picks the first available):");
  for (const probe of probeBackends()) {
    console.log(`  ${probe.name.padEnd(7)} ${probe.available ? "available  " : "unavailable"}  ${probe.reason}`);
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
