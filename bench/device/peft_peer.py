#!/usr/bin/env python3
"""The PyTorch peer of bench/device/cuda-check.sh, measured in the same run on the same GPU.

    python3 bench/device/peft_peer.py <out.json> [--skip-7b]

Writes {"bf16PeakTflops": …, "lora": {"1b": {…}, "llama2-7b": {…}}}:
- bf16PeakTflops: torch.matmul on 8192×8192 bf16 (cuBLAS), the card's measured bf16 GEMM peak;
- lora[shape]: a transformers LlamaForCausalLM with random bf16 weights and a PEFT LoRA adapter set up like
  ours (r 16, alpha 32, dropout 0, q/k/v/o/gate/up/down, adapter weights f32 as PEFT keeps them), one sequence
  of 1024 tokens per step, loss on every next token, grad-norm clipping at 1, fused AdamW; the median of
  the timed steps after one warm-up. Shapes: `1b` = TinyLlama-1.1B (our preset), `llama2-7b` = Llama-2-7B.
Any failure is recorded in the JSON ("error") rather than raised, so the table still prints.
"""
import json
import os
import statistics
import sys
import time

SEQ_LEN = 1024
TIMED_STEPS = int(os.environ.get("LABOR_BENCH_STEPS", "5"))  # the same count as ours (bench/device/cuda-bench.ts)
SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4),
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32),
}


def bf16_peak(torch):
    n = 8192
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    reps = 20
    started = time.perf_counter()
    for _ in range(reps):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - started) / 1e12


def lora_steps(torch, shape):
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    config = LlamaConfig(vocab_size=32000, rms_norm_eps=1e-5, max_position_embeddings=4096, **SHAPES[shape])
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                             "up_proj", "down_proj"]))
    for p in model.parameters():  # adapter weights in f32 (PEFT's autocast_adapter_dtype does this too)
        if p.requires_grad:
            p.data = p.data.float()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    ids = torch.randint(1, config.vocab_size, (1, SEQ_LEN), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    times = []
    for _ in range(TIMED_STEPS):
        started = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    del model, optimizer
    torch.cuda.empty_cache()
    return {"stepSeconds": seconds, "tokensPerSecond": SEQ_LEN / seconds}


def main():
    out_path = sys.argv[1]
    shapes = ["1b"] if "--skip-7b" in sys.argv else ["1b", "llama2-7b"]
    result = {"lora": {}}
    try:
        import torch
        result["torch"] = torch.__version__
        result["device"] = torch.cuda.get_device_name(0)
        result["bf16PeakTflops"] = bf16_peak(torch)
        for shape in shapes:
            try:
                result["lora"][shape] = lora_steps(torch, shape)
            except Exception as error:  # noqa: BLE001 - reported in the table
                result["lora"][shape] = {"error": f"{type(error).__name__}: {error}"[:200]}
    except Exception as error:  # noqa: BLE001
        result["error"] = f"{type(error).__name__}: {error}"[:200]
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
