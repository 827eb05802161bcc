#!/usr/bin/python3
"""Combine the per-seed reports of `labor-llm experiment` run at separate times (each its own DIR/report/) when
the runs' predictions are gone and `--seeds` cannot pool them by person: for each paired comparison on mean log
loss per person-year, the person-year-weighted mean of the seeds' differences (the pooled estimand of
`experiment --seeds`), with a normal-approximation 95% interval from each seed's bootstrap interval
(se_i = width_i / 3.92; the seeds are independent draws, so var = sum (n_i / N)^2 se_i^2).
Checked against a real pooled report: see `../dev-pooled-lr/README.md`.

Usage: /usr/bin/python3 combine-seeds.py SEED_REPORT_DIR [SEED_REPORT_DIR ...]   (each holds comparisons.csv and metrics.csv)"""
import csv
import math
import sys
from pathlib import Path

STATISTIC = "mean log loss (nats per person-year)"
dirs = [Path(d) for d in sys.argv[1:]]
if len(dirs) < 2:
    sys.exit(__doc__.split("\n\n")[-1])


def person_years(directory):
    with open(directory / "metrics.csv", newline="") as f:
        return {(row["survey"], row["model"]): int(row["person_years"]) for row in csv.DictReader(f)}


def comparisons(directory):
    with open(directory / "comparisons.csv", newline="") as f:
        return {(row["survey"], row["question"]): row for row in csv.DictReader(f) if row["statistic"] == STATISTIC}


runs = [(person_years(d), comparisons(d)) for d in dirs]
keys = [k for k in runs[0][1] if all(k in c for _, c in runs)]
print(f"| survey | comparison (A − B) | combined over {len(dirs)} seeds | " + " | ".join(d.parent.name if d.name == "report" else d.name for d in dirs) + " |")
print("|---|---|---|" + "---|" * len(dirs))
for key in keys:
    weights, estimates, errors = [], [], []
    for years, rows in runs:
        row = rows[key]
        weights.append(years[(row["survey"], row["a"])])
        estimates.append(float(row["difference"]))
        errors.append((float(row["upper"]) - float(row["lower"])) / 3.92)
    total = sum(weights)
    mean = sum(w * e for w, e in zip(weights, estimates)) / total
    se = math.sqrt(sum((w / total) ** 2 * s * s for w, s in zip(weights, errors)))
    print(f"| {key[0]} | {key[1]} | {mean:+.3f} [{mean - 1.96 * se:+.3f}, {mean + 1.96 * se:+.3f}] | " + " | ".join(f"{e:+.3f}" for e in estimates) + " |")
