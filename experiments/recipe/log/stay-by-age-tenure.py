"""Where, by age and tenure, does one model lose to another on the person-years that follow an occupation?
The synthetic process makes leaving an occupation depend on tenure (−0.45 ln τ) and age (−0.25 (a − 30)/10)
among other things (src/data/SYNTHETIC.md); CAREER gets age as a covariate, a language model must work it out
from "born in {b}" and each line's year, and tenure from counting repeated lines. Each row: person-years,
the share that stayed, each model's mean P(stay) and mean log loss, and (A − B) × rows / all rows (the row's
share of the difference in mean log loss over every person-year after an occupation).

    /usr/bin/python3 experiments/recipe/log/stay-by-age-tenure.py PANEL.csv ORACLE.jsonl A.jsonl B.jsonl
PANEL.csv is the survey as the demo/experiment wrote it (person_id, year, occupation, birth_year, …).
"""
import csv
import math
import sys
from collections import defaultdict

from predictions import load

NON_WORK_FIRST_CODE = 990


def tenure_by_person_year(panel_path):
    """(person_id, year) → (age, tenure in waves of the unbroken run of the previous occupation)."""
    rows = defaultdict(list)
    for r in csv.DictReader(open(panel_path)):
        rows[r["person_id"]].append((int(r["year"]), int(r["occupation"]), int(r["birth_year"])))
    out = {}
    for pid, waves in rows.items():
        waves.sort()
        run = 0
        for i, (year, occ, birth) in enumerate(waves):
            if i > 0:
                out[(pid, year)] = (year - birth, run)
            run = run + 1 if i > 0 and occ == waves[i - 1][1] else 1
    return out


def band_age(a):
    return "age <25" if a < 25 else "age 25-34" if a < 35 else "age 35-44" if a < 45 else "age 45+"


def band_tenure(t):
    return "tenure 1" if t == 1 else "tenure 2-3" if t <= 3 else "tenure 4-7" if t <= 7 else "tenure 8+"


def main():
    context = tenure_by_person_year(sys.argv[1])
    oracle, a, b = (load(p) for p in sys.argv[2:5])
    groups = defaultdict(lambda: [0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    total = 0
    for ro, ra, rb in zip(oracle, a, b):
        key = (str(ro["person_id"]), ro["year"])
        if key != (str(ra["person_id"]), ra["year"]) or key != (str(rb["person_id"]), rb["year"]):
            sys.exit("the files do not score the same person-years in the same order")
        prev = ro["previous"]
        if prev is None or prev > NON_WORK_FIRST_CODE:
            continue
        age, tenure = context[key]
        total += 1
        stayed = ro["truth"] == prev
        for name in ("all", band_age(age), band_tenure(tenure), f"{band_age(age)}, {band_tenure(tenure)}"):
            g = groups[name]
            g[0] += 1
            g[1] += stayed
            for i, r in enumerate((ro, ra, rb)):
                g[2 + i] += math.exp(r["logp"](prev))
                g[5 + i] -= r["logp"](ro["truth"])
    print(f"{'group':32s} {'n':>5s} {'stayed':>6s} {'P(stay): oracle':>15s} {'A':>5s} {'B':>5s}   "
          f"{'loss: oracle':>12s} {'A':>6s} {'B':>6s} {'(A-B)·n/N':>10s}")
    for name in sorted(groups, key=lambda k: (k != "all", k.count(","), k)):
        n, s, po, pa, pb, lo, la, lb = groups[name]
        print(f"{name:32s} {n:5d} {s / n:6.2f} {po / n:15.2f} {pa / n:5.2f} {pb / n:5.2f}   "
              f"{lo / n:12.3f} {la / n:6.3f} {lb / n:6.3f} {(la - lb) / total:+10.4f}")


if __name__ == "__main__":
    main()
