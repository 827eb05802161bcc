/** `labor-llm train`: LoRA or full fine-tuning (or training from scratch) of a Llama on documents JSONL. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readLlamaConfig } from "../../io/hf-config.js";
import { openCheckpoint } from "../../io/safetensors.js";
import { loadLlamaWeights } from "../../model/weights.js";
import { parseTargetModules, type LoraConfig } from "../../io/lora-config.js";
import { MATMUL_DTYPES, type TrainingMode } from "../../model/llama-train.js";
import { LOSS_MASK_MODES } from "../../text/documents.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { readTrainingSequences } from "../../train/data.js";
import { trainLlama } from "../../train/loop.js";
import { ADAMW_DEFAULTS } from "../../train/optimizer.js";
import { SCHEDULE_KINDS } from "../../train/schedule.js";
import { checkedNumber, frozenPartsFlag, oneOf, optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { ProgressBar } from "../progress.js";

export const TRAIN_HELP = `labor-llm train --model DIR --documents FILE.jsonl --out DIR [flags]

Fine-tunes a Llama (HF directory) on documents with the next-token objective: LoRA adapters on a frozen
base (default), or every weight (--full; also training from scratch a model made by \`model init\`).
Documents: JSONL from \`labor-llm data textify\` (token_ids used when present, else "text" is tokenized
with the model's tokenizer), or any {"text": "..."} lines.

  --model DIR          base model (config.json, safetensors, tokenizer.json)
  --documents FILE     training documents (.jsonl)
  --valid FILE         validation documents: loss every --eval-every steps and at the end; the best
                       weights are kept in OUT/best
  --out DIR            output: final/ (PEFT adapter or HF model), best/, checkpoint/, train_log.jsonl
  --loss all|targets   loss on every token (default) or only on the prediction targets (needs "targets")

LoRA (default)                          full training
  --lora-rank R        rank (default 16)         --full   train every weight (f32 master weights)
  --lora-alpha A       alpha; scale A/R (default 32)       --freeze LIST  with --full: keep these parts as
                                                 loaded, any of embeddings (and lm_head), attention, mlp
  --lora-dropout P     dropout on the LoRA input (default 0.05)
  --targets LIST       modules: any of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all
                       (default q_proj,v_proj)
  --rslora             scale alpha/√r instead of alpha/r

Optimisation
  --lr X               peak learning rate (default 2e-4)
  --epochs N           passes over the documents (default 1)
  --max-steps N        stop after N optimizer steps
  --batch-tokens N     tokens per packed micro-batch (default 2048); documents never attend to each other
  --grad-accum N       micro-batches per optimizer step (default 1)
  --warmup N           linear warmup steps (default 0)
  --schedule S         cosine | linear | constant after warmup (default cosine)
  --min-lr-ratio X     final lr as a fraction of the peak (default 0)
  --weight-decay X     AdamW decoupled decay on matrices; norm weights exempt (default 0.01)
  --max-grad-norm X    clip the global gradient norm (default 1; 0 = off)
  --recompute          recompute activations in backward (less memory, ~30% slower)
  --matmul-dtype D     f32 (default) | bf16: weight matmuls on bf16 copies with f32 accumulation and f32
                       master weights, like PyTorch's bf16 autocast (faster where the CPU has AVX512_BF16/AMX;
                       on CUDA attention runs on tensor cores too)
  --seed N             data order, LoRA init and dropout (default 0)

Run control
  --eval-every N       validate every N steps (default 0: only at the end)
  --patience N         stop after N validations without improvement (default 0: never)
  --checkpoint-every N save a resumable checkpoint every N steps (default 100; also at the end and on Ctrl-C)
  --resume             continue from OUT/checkpoint with the same flags: same losses and final weights as an
                       uninterrupted run, after Ctrl-C, a crash or kill -9 (even mid-checkpoint-write: the
                       link moves only to a complete checkpoint)
Ctrl-C finishes the current step, saves a checkpoint and exits (status 130); press it twice to abort at once.
A failed checkpoint write (a full disk) stops the run with one line naming the file; the previous checkpoint
stays in place.
${BACKEND_HELP}`;

export async function runTrain(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    documents: { type: "string" },
    valid: { type: "string" },
    out: { type: "string" },
    loss: { type: "string" },
    "lora-rank": { type: "string" },
    "lora-alpha": { type: "string" },
    "lora-dropout": { type: "string" },
    targets: { type: "string" },
    rslora: { type: "boolean" },
    full: { type: "boolean" },
    lr: { type: "string" },
    epochs: { type: "string" },
    "max-steps": { type: "string" },
    "batch-tokens": { type: "string" },
    "grad-accum": { type: "string" },
    warmup: { type: "string" },
    schedule: { type: "string" },
    "min-lr-ratio": { type: "string" },
    "weight-decay": { type: "string" },
    "max-grad-norm": { type: "string" },
    recompute: { type: "boolean" },
    freeze: { type: "string" },
    "matmul-dtype": { type: "string" },
    seed: { type: "string" },
    "eval-every": { type: "string" },
    patience: { type: "string" },
    "checkpoint-every": { type: "string" },
    resume: { type: "boolean" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const modelDir = requireString(values, "model");
  const documentsPath = requireString(values, "documents");
  const outDir = requireString(values, "out");
  if (!existsSync(join(modelDir, "config.json"))) throw new UsageError(`--model: ${modelDir} has no config.json`);
  const full = values.full === true;
  const loraFlags = ["lora-rank", "lora-alpha", "lora-dropout", "targets", "rslora"].filter((f) => values[f] !== undefined);
  if (full && loraFlags.length > 0) throw new UsageError(`--full trains every weight; --${loraFlags[0]} is for LoRA`);
  if (values.freeze !== undefined && !full) throw new UsageError("--freeze is for --full training (LoRA trains only its adapters)");
  let mode: TrainingMode = { kind: "full", frozen: frozenPartsFlag(values, "freeze") };
  if (!full) {
    let targetModules;
    try {
      targetModules = parseTargetModules(typeof values.targets === "string" ? values.targets : "q_proj,v_proj");
    } catch (error) {
      throw new UsageError(`--targets: ${(error as Error).message}`);
    }
    const lora: LoraConfig = {
      rank: optionalInteger(values, "lora-rank", 16, 1),
      alpha: checkedNumber(values, "lora-alpha", 32, (x) => x > 0, "positive"),
      dropout: checkedNumber(values, "lora-dropout", 0.05, (x) => x >= 0 && x < 1, "in [0, 1)"),
      targetModules,
      useRslora: values.rslora === true,
    };
    mode = { kind: "lora", lora };
  }
  const lossMode = oneOf(values, "loss", LOSS_MASK_MODES, "all");
  const maxSteps = values["max-steps"] === undefined ? undefined : optionalInteger(values, "max-steps", 0, 1);

  const backend = await backendFromFlags(values);
  const config = readLlamaConfig(modelDir);
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const train = readTrainingSequences(documentsPath, tokenizer, lossMode, config.vocabSize);
  const valid = typeof values.valid === "string" ? readTrainingSequences(values.valid, tokenizer, lossMode, config.vocabSize) : undefined;
  const weights = loadLlamaWeights(openCheckpoint(modelDir), config);

  // Ctrl-C: finish the step, save, exit 130. A second Ctrl-C aborts at once.
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort now)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  let bar: ProgressBar | undefined;
  const started = performance.now();
  let tokensThisRun = 0;
  try {
    const result = await trainLlama({
      backend, config, weights, baseModelDir: modelDir, baseModelName: modelDir, train, valid, outDir, mode,
      learningRate: checkedNumber(values, "lr", 2e-4, (x) => x > 0, "positive"),
      schedule: oneOf(values, "schedule", SCHEDULE_KINDS, "cosine"),
      warmupSteps: optionalInteger(values, "warmup", 0, 0),
      minLearningRateRatio: checkedNumber(values, "min-lr-ratio", 0, (x) => x >= 0 && x <= 1, "in [0, 1]"),
      epochs: optionalInteger(values, "epochs", 1, 1),
      maxSteps,
      batchTokens: optionalInteger(values, "batch-tokens", 2048, 2),
      gradientAccumulation: optionalInteger(values, "grad-accum", 1, 1),
      adamw: { ...ADAMW_DEFAULTS, weightDecay: checkedNumber(values, "weight-decay", ADAMW_DEFAULTS.weightDecay, (x) => x >= 0, "≥ 0") },
      maxGradNorm: checkedNumber(values, "max-grad-norm", 1, (x) => x >= 0, "≥ 0"),
      evalEvery: optionalInteger(values, "eval-every", 0, 0),
      patience: optionalInteger(values, "patience", 0, 0),
      checkpointEvery: optionalInteger(values, "checkpoint-every", 100, 0),
      seed: optionalInteger(values, "seed", 0, 0),
      recompute: values.recompute === true,
      matmulDtype: oneOf(values, "matmul-dtype", MATMUL_DTYPES, "f32"),
      resume: values.resume === true,
      signal: controller.signal,
      onStep: (record, progress) => {
        bar ??= new ProgressBar("train", progress.totalSteps - progress.startStep, " steps");
        tokensThisRun += record.tokens;
        const seconds = (performance.now() - started) / 1000;
        bar.update(record.step - progress.startStep,
          `loss ${record.loss.toFixed(4)} lr ${record.learningRate.toExponential(2)} ${(tokensThisRun / seconds).toFixed(0)} tok/s`);
      },
      onValidation: (step, loss, improved) => {
        process.stderr.write(`${bar ? "\n" : ""}step ${step}: validation loss ${loss.toFixed(4)}${improved ? " (best)" : ""}\n`);
      },
    });
    if (result.reason === "interrupted") {
      console.log(`interrupted at step ${result.steps}; checkpoint saved in ${join(outDir, "checkpoint")} (continue with --resume)`);
      return 130;
    }
    bar?.finish();
    const last = result.losses.at(-1);
    const best = result.bestValidLoss === null ? "" : `, best validation loss ${result.bestValidLoss.toFixed(4)} at step ${result.bestStep} (${join(outDir, "best")})`;
    console.log(`${result.reason === "early-stopping" ? "stopped early" : "done"}: ${result.steps} steps, last training loss ${last?.toFixed(4)}${best}; wrote ${result.finalDir} (${backend.describe()})`);
    return 0;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
