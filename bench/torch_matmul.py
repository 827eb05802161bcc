"""PyTorch's torch.matmul on the benchmark shapes (peer for bench/kernels.ts).

Usage: python3 torch_matmul.py THREADS RUNS M,N,K [M,N,K ...]
Prints one JSON object: {"version": ..., "results": [{"shape": [M,N,K], "f32": GFLOP/s, "bf16": GFLOP/s}]}
(median of RUNS timed calls after one warm-up; out = a[M,K] @ b[K,N], both operands in the dtype).
"""
import json
import statistics
import sys
import time

import torch


def gflops(m, n, k, dtype, runs):
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2.0 * m * n * k / statistics.median(times) / 1e9


def main():
    threads, runs = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    results = []
    for text in sys.argv[3:]:
        m, n, k = (int(x) for x in text.split(","))
        results.append({"shape": [m, n, k], "f32": gflops(m, n, k, torch.float32, runs),
                        "bf16": gflops(m, n, k, torch.bfloat16, runs)})
    print(json.dumps({"version": torch.__version__, "results": results}))


main()
