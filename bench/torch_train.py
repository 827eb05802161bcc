"""PyTorch peer for the training benchmark (bench/training.ts): a plain-PyTorch Llama trained like ours.

The model is written out here (no transformers/peft): RMSNorm, RoPE (HF rotate-half), attention with
grouped-query heads and a causal mask (explicit softmax: torch 1.13 has no scaled_dot_product_attention),
SwiGLU MLP, untied lm_head. One step = zero grads, forward, next-token cross-entropy (mean over targets),
backward, clip the global grad norm to 1, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01) —
the same step as src/train/step.ts.

Modes: "full" (every weight trains) and "lora" (rank 16, alpha 32, dropout 0, on q,k,v,o,gate,up,down;
the base frozen; A kaiming-uniform(a=√5) as PEFT, B zero; the rank-r product first). Precisions: "f32" and
"bf16" (f32 weights, forward under torch.autocast("cpu", dtype=torch.bfloat16), which runs the matmuls in
bf16 through oneDNN). The caller sets OMP_WAIT_POLICY=PASSIVE in the environment (bench/training.ts also
sets glibc malloc to keep freed memory; see its header).

Usage:
  python3 torch_train.py THREADS RUNS STEPS [MODE-PRECISION ...]
      warm-up step, then RUNS runs of STEPS timed steps per configuration (default: full-f32 full-bf16
      lora-f32 lora-bf16); prints one JSON line
      {"version", "threads", "config", "results": {"full-f32": {"tokensPerSecond", "stepSeconds", "runs"}, ...}}
      with tokens/s from the median run.
  python3 torch_train.py THREADS --serve
      reads lines "MODE-PRECISION STEPS" on stdin and answers each with one JSON line
      {"config", "seconds", "tokens", "loss"} for STEPS timed steps (one untimed warm-up step the first time a
      configuration is seen); a mode's model is kept while lines ask for it. bench/training.ts uses this to
      alternate its runs with ours. "quit" or end of input ends it.

Model size: environment BENCH_TRAIN_{DIM,LAYERS,HEADS,KV_HEADS,FFN,VOCAB,SEQ,BATCH} (defaults d=256, 4
layers, 4 heads, 4 kv heads, ffn 688, vocab 32000, seq 256, batch 8).
"""
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def env_int(name, default):
    return int(os.environ.get(name, default))


CONFIG = {
    "dim": env_int("BENCH_TRAIN_DIM", 256),
    "layers": env_int("BENCH_TRAIN_LAYERS", 4),
    "heads": env_int("BENCH_TRAIN_HEADS", 4),
    "kvHeads": env_int("BENCH_TRAIN_KV_HEADS", 4),
    "ffn": env_int("BENCH_TRAIN_FFN", 688),
    "vocab": env_int("BENCH_TRAIN_VOCAB", 32000),
    "seq": env_int("BENCH_TRAIN_SEQ", 256),
    "batch": env_int("BENCH_TRAIN_BATCH", 8),
}
LORA_RANK, LORA_ALPHA = 16, 32
EPS, THETA = 1e-5, 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)
        return self.weight * x.to(dtype)


class LoraLinear(nn.Module):
    """y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with W frozen (PEFT semantics, dropout 0)."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.q_proj = nn.Linear(dim, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, dim, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, ffn):
        super().__init__()
        self.gate_proj = nn.Linear(dim, ffn, bias=False)
        self.up_proj = nn.Linear(dim, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["dim"])
        self.self_attn = Attention(c["dim"], c["heads"], c["kvHeads"])
        self.post_attention_layernorm = RMSNorm(c["dim"])
        self.mlp = Mlp(c["dim"], c["ffn"])

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["dim"])
        self.lm_head = nn.Linear(c["dim"], c["vocab"], bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        head_dim = c["dim"] // c["heads"]
        inv_freq = 1.0 / (THETA ** (torch.arange(0, head_dim, 2).float() / head_dim))
        angles = torch.outer(torch.arange(c["seq"]).float(), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.register_buffer("mask", torch.full((c["seq"], c["seq"]), float("-inf")).triu(1), persistent=False)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin, mask = self.cos[:t], self.sin[:t], self.mask[:t, :t]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def add_lora(model):
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                              (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
            for name in names:
                setattr(parent, name, LoraLinear(getattr(parent, name), LORA_RANK, LORA_ALPHA))


class Trainer:
    """One mode's model and optimizer; step(bf16) runs one optimizer step."""

    def __init__(self, mode, seed=0):
        torch.manual_seed(seed)
        self.model = Llama(CONFIG)
        if mode == "lora":
            add_lora(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        generator = torch.Generator().manual_seed(seed + 1)
        self.batches = [torch.randint(0, CONFIG["vocab"], (CONFIG["batch"], CONFIG["seq"]), generator=generator)
                        for _ in range(4)]
        self.targets = [torch.cat((ids[:, 1:], torch.full((ids.shape[0], 1), -100)), dim=1) for ids in self.batches]
        self.serial = 0
        self.warm = set()

    def step(self, bf16):
        ids_index = self.serial % len(self.batches)
        ids = self.batches[ids_index]
        self.serial += 1
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = self.model(ids)
        # Next-token targets, the last position ignored (no slice of the [B, T, V] logits, which would copy them).
        loss = F.cross_entropy(logits.float().view(-1, CONFIG["vocab"]), self.targets[ids_index].view(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        return loss.item()

    def timed(self, bf16, steps):
        if bf16 not in self.warm:
            self.step(bf16)
            self.warm.add(bf16)
        start = time.perf_counter()
        loss = float("nan")
        for _ in range(steps):
            loss = self.step(bf16)
        return time.perf_counter() - start, loss


def parse(name):
    mode, precision = name.split("-")
    if mode not in ("full", "lora") or precision not in ("f32", "bf16"):
        raise ValueError(f"unknown configuration {name!r} (expected full|lora-f32|bf16)")
    return mode, precision == "bf16"


def tokens_per_step():
    return CONFIG["batch"] * CONFIG["seq"]


def serve():
    trainer, trainer_mode = None, None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        mode, bf16 = parse(words[0])
        steps = int(words[1])
        if trainer_mode != mode:
            trainer = None  # free the previous mode's model first
            trainer, trainer_mode = Trainer(mode), mode
        seconds, loss = trainer.timed(bf16, steps)
        print(json.dumps({"config": words[0], "seconds": seconds, "tokens": steps * tokens_per_step(), "loss": loss}),
              flush=True)


def batch_run(runs, steps, names):
    results = {}
    trainers = {}
    for name in names:
        mode, bf16 = parse(name)
        if mode not in trainers:
            trainers.clear()
            trainers[mode] = Trainer(mode)
        times = [trainers[mode].timed(bf16, steps)[0] for _ in range(runs)]
        step_seconds = statistics.median(times) / steps
        results[name] = {"tokensPerSecond": tokens_per_step() / step_seconds, "stepSeconds": step_seconds, "runs": runs}
    return results


def main():
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    if sys.argv[2] == "--serve":
        print(json.dumps({"version": torch.__version__, "threads": threads, "config": CONFIG}), flush=True)
        serve()
        return
    runs, steps = int(sys.argv[2]), int(sys.argv[3])
    names = sys.argv[4:] or ["full-f32", "full-bf16", "lora-f32", "lora-bf16"]
    print(json.dumps({"version": torch.__version__, "threads": threads, "config": CONFIG,
                      "results": batch_run(runs, steps, names)}))


main()
