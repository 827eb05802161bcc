"""Where does one model's log loss differ from another's? Person-years split by the previous outcome (an
occupation or a non-work state), by whether the person stayed, and by the oracle's P(stay); each row gives the
oracle's, A's and B's mean log loss and (A − B) × rows / all rows, the row's share of the total difference
in mean log loss per person-year. The three files must score the same person-years in the same order.

    /usr/bin/python3 experiments/recipe/log/gap-by-kind.py ORACLE.jsonl A.jsonl B.jsonl
"""
import math
import sys
from collections import defaultdict

from predictions import load

NON_WORK_FIRST_CODE = 990  # in-education 991, unemployed 992, not in labour force 993


def main():
    oracle, a, b = (load(p) for p in sys.argv[1:4])
    groups = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    rows = 0
    for ro, ra, rb in zip(oracle, a, b):
        if (ro["person_id"], ro["year"]) != (ra["person_id"], ra["year"]) or (ro["person_id"], ro["year"]) != (rb["person_id"], rb["year"]):
            sys.exit("the files do not score the same person-years in the same order")
        if ro["previous"] is None:
            continue
        rows += 1
        stayed = ro["truth"] == ro["previous"]
        kind = "non-work" if ro["previous"] > NON_WORK_FIRST_CODE else "occupation"
        p_stay = math.exp(ro["logp"](ro["previous"]))
        band = "P<.5" if p_stay < 0.5 else "P<.7" if p_stay < 0.7 else "P<.85" if p_stay < 0.85 else "P>=.85"
        outcome = "stay" if stayed else "move"
        for key in (f"all, {outcome}", f"{kind}, {outcome}", f"{kind}, oracle {band}, {outcome}"):
            g = groups[key]
            g[0] += 1
            g[1] -= ro["logp"](ro["truth"])
            g[2] -= ra["logp"](ro["truth"])
            g[3] -= rb["logp"](ro["truth"])
    print(f"{'previous outcome, group':40s} {'n':>5s} {'oracle':>7s} {'A':>7s} {'B':>7s} {'(A-B)·n/N':>10s}")
    for key in sorted(groups):
        n, lo, la, lb = groups[key]
        print(f"{key:40s} {n:5d} {lo / n:7.3f} {la / n:7.3f} {lb / n:7.3f} {(la - lb) / rows:+10.4f}")


main()
