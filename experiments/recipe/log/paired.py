#!/usr/bin/python3
"""Paired difference of two runs' mean log loss on the same person-years: A − B, nats per person-year, with a
95% bootstrap interval by person (1,000 resamples, seed 0). Recipe runs score the same test people, so this
interval is much narrower than either run's interval against CAREER: it is what tells two recipes apart.

Usage: /usr/bin/python3 paired.py A/predictions.jsonl B/predictions.jsonl
Probabilities are normalised over each file's outcome codes, as the report's perplexity is."""
import random
import sys
from collections import defaultdict

from predictions import load


def losses(path):
    """(person, year, log loss of the true outcome) of every person-year of a predictions file."""
    return [(r["person_id"], r["year"], -r["logp"](r["truth"])) for r in load(path)]


def person_differences(path_a, path_b):
    """[sum of A's loss − B's loss, person-years] for every person, from two files scoring the same person-years."""
    a, b = losses(path_a), losses(path_b)
    if len(a) != len(b):
        sys.exit(f"{path_a} and {path_b} score different person-years ({len(a)} vs {len(b)})")
    by_person = defaultdict(lambda: [0.0, 0])
    for (person, year, x), (person_b, year_b, y) in zip(a, b):
        if (person, year) != (person_b, year_b):
            sys.exit(f"person-years differ: {person} {year} vs {person_b} {year_b}")
        by_person[person][0] += x - y
        by_person[person][1] += 1
    return list(by_person.values())


if __name__ == "__main__":
    people = person_differences(sys.argv[1], sys.argv[2])
    estimate = sum(p[0] for p in people) / sum(p[1] for p in people)
    rng = random.Random(0)
    draws = []
    for _ in range(1000):
        sample = [rng.choice(people) for _ in people]
        draws.append(sum(p[0] for p in sample) / sum(p[1] for p in sample))
    draws.sort()
    print(f"A − B {estimate:+.3f} [{draws[25]:+.3f}, {draws[974]:+.3f}] ({len(people)} people, {sum(p[1] for p in people)} person-years)")
