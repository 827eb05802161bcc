#!/usr/bin/python3
"""Pooled paired difference A − B over several independent runs (e.g. the dev experiment at two seeds: other
survey draws, other foundations, other fine-tunings, other test people). Mean log loss per person-year over
all runs' person-years, with a 95% bootstrap interval that resamples people within each run (1,000 resamples,
seed 0). Unlike one run's interval, the spread between runs includes the training's own randomness.

Usage: /usr/bin/python3 pooled.py A1.jsonl B1.jsonl [A2.jsonl B2.jsonl ...]   (A and B of the same run paired)"""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from paired import person_differences  # noqa: E402

files = sys.argv[1:]
if len(files) < 2 or len(files) % 2:
    sys.exit("usage: pooled.py A1.jsonl B1.jsonl [A2.jsonl B2.jsonl ...]")
runs = [person_differences(files[i], files[i + 1]) for i in range(0, len(files), 2)]


def mean(samples):
    return sum(p[0] for run in samples for p in run) / sum(p[1] for run in samples for p in run)


for i, run in enumerate(runs):
    print(f"run {i + 1}: A − B {mean([run]):+.3f} ({len(run)} people)")
rng = random.Random(0)
draws = sorted(mean([[rng.choice(run) for _ in run] for run in runs]) for _ in range(1000))
print(f"pooled: A − B {mean(runs):+.3f} [{draws[25]:+.3f}, {draws[974]:+.3f}] ({sum(len(r) for r in runs)} people)")
