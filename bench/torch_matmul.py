"""PyTorch's torch.matmul on the benchmark shapes (peer for bench/kernels.ts).

Usage: python3 torch_matmul.py THREADS RUNS M,N,K [M,N,K ...]
Prints one JSON object: {"version": ..., "results": [{"shape": [M,N,K], "f32": RATE, "bf16": RATE}]} with
RATE = {"wall": GFLOP/s, "cpu": GFLOP/s}: median of RUNS timed calls after one warm-up, from wall-clock
time and from process CPU time spread over the threads (as bench/run.ts measures ours); out = a[M,K] @ b[K,N],
both operands in the dtype.
"""
import json
import statistics
import sys
import time

import torch


def gflops(m, n, k, dtype, runs, threads):
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    torch.matmul(a, b)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        torch.matmul(a, b)
        wall.append(time.perf_counter() - start)
        cpu.append((time.process_time() - start_cpu) / threads)
    flop = 2.0 * m * n * k
    return {"wall": flop / statistics.median(wall) / 1e9, "cpu": flop / statistics.median(cpu) / 1e9}


def main():
    threads, runs = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    results = []
    for text in sys.argv[3:]:
        m, n, k = (int(x) for x in text.split(","))
        results.append({"shape": [m, n, k], "f32": gflops(m, n, k, torch.float32, runs, threads),
                        "bf16": gflops(m, n, k, torch.bfloat16, runs, threads)})
    print(json.dumps({"version": torch.__version__, "results": results}))


main()
