/** `labor-llm <command>`: parses the command word and hands the rest to the command. */
import { UsageError } from "./args.js";
import { DATA_HELP, runData } from "./commands/data.js";
import { DEMO_HELP, runDemo } from "./commands/demo.js";
import { INFO_HELP, runInfo } from "./commands/info.js";
import { LOGPROBS_HELP, runLogprobs } from "./commands/logprobs.js";
import { MODEL_HELP, runModel } from "./commands/model.js";
import { BASELINE_HELP, runBaseline } from "./commands/baseline.js";
import { ENSEMBLE_HELP, runEnsemble } from "./commands/ensemble.js";
import { EVAL_HELP, runEval } from "./commands/eval.js";
import { EXPERIMENT_HELP, runExperimentCommand } from "./commands/experiment.js";
import { SCORE_HELP, runScore } from "./commands/score.js";
import { TRAIN_HELP, runTrain } from "./commands/train.js";

export const MAIN_HELP = `labor-llm — predict a worker's next occupation with a fine-tuned Llama (LABOR-LLM)

usage: labor-llm <command> [flags]      (labor-llm <command> --help for its flags)

commands:
  demo         the whole method on built-in synthetic data (the main job)
  experiment   the paper's comparisons on three synthetic surveys, with bootstrap intervals by person
  data         synthetic panels with a known truth; check, textify and describe panels
  model        init a random Llama in HF layout; export a checkpoint to GGUF; merge a LoRA adapter
  train        fine-tune (LoRA or full) or train a Llama on documents; resumable
  score        every person-year's probability of each next occupation under a model (+ adapter)
  baseline     comparison models (markov, logit, oracle) in the same predictions format
  eval         metrics of predictions files in one table (markdown, JSON, CSV, HTML report)
  ensemble     the equal-weight ensemble of models' predictions of the same person-years
  logprobs     per-token log-probabilities of texts under a model
  info         backends and CPU kernel paths available on this machine`;

const COMMANDS: Record<string, { run: (argv: string[]) => number | Promise<number>; help: string }> = {
  demo: { run: runDemo, help: DEMO_HELP },
  experiment: { run: runExperimentCommand, help: EXPERIMENT_HELP },
  data: { run: runData, help: DATA_HELP },
  model: { run: runModel, help: MODEL_HELP },
  train: { run: runTrain, help: TRAIN_HELP },
  score: { run: runScore, help: SCORE_HELP },
  baseline: { run: runBaseline, help: BASELINE_HELP },
  eval: { run: runEval, help: EVAL_HELP },
  ensemble: { run: runEnsemble, help: ENSEMBLE_HELP },
  logprobs: { run: runLogprobs, help: LOGPROBS_HELP },
  info: { run: runInfo, help: INFO_HELP },
};

/** The command words, in help order. */
export function commandNames(): string[] {
  return Object.keys(COMMANDS);
}

/**
 * The README's CLI reference: the main help and every command's --help, verbatim (README.md holds this text
 * between the cli-reference markers; `npm run docs:cli` rewrites it and a test checks it is current).
 */
export function cliReferenceMarkdown(): string {
  const blocks = [MAIN_HELP, ...commandNames().map((name) => COMMANDS[name].help)];
  return blocks.map((text) => "```\n" + text + "\n```").join("\n\n");
}

export function helpText(command?: string): string {
  return command && COMMANDS[command] ? COMMANDS[command].help : MAIN_HELP;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(MAIN_HELP);
    return command === undefined ? 2 : 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    console.error(`labor-llm: unknown command "${command}"\n\n${MAIN_HELP}`);
    return 2;
  }
  try {
    return await entry.run(rest);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`labor-llm ${command}: ${message}`);
    if (error instanceof UsageError) console.error(`(labor-llm ${command} --help for usage)`);
    if (process.env.LABOR_LLM_DEBUG && error instanceof Error) console.error(error.stack);
    return error instanceof UsageError ? 2 : 1;
  }
}
