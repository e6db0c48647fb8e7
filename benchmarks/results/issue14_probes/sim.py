"""Offline comparison of budget stop rules on rounds recorded with plateau_patience=99.

The rule only decides where the rounds stop and which is the result, so replaying it on
recorded rounds gives exactly what a run with that rule would have chosen.

    python benchmarks/results/issue14_probes/sim.py
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
TOL = 0.0005


def adds(gain, se, rule):
    """``old``: gain >= tolerance; ``new``: also passes an inconclusive noisy check."""
    if gain is None or gain >= TOL:
        return True
    return rule == "new" and se >= 4 * TOL and gain + 2 * se >= TOL


def final(rounds, rule, patience=2):
    fin, streak = 0, 0
    for x in rounds[1:]:
        if x["p50"] is not None and x["p50"] > x["limit"]:
            break
        if adds(x["gain"], x["se"] or 0, rule):
            fin, streak = x["i"], 0
        else:
            streak += 1
            if streak >= patience:
                break
    return fin


if __name__ == "__main__":
    for r in json.loads((HERE / "adv_rounds.json").read_text()):
        got = {rule: final(r["rounds"], rule) for rule in ("old", "new")}
        clean = {rule: r["rounds"][i]["score"]["clean"] for rule, i in got.items()}
        print(r["variant"], r["seed"], "final", got, "clean", clean)
    for r in json.loads((HERE / "real_rounds.json").read_text()):
        got = {rule: final(r["rounds"], rule) for rule in ("old", "new")}
        auc = {rule: round(r["rounds"][i]["test_auc"], 4) for rule, i in got.items()}
        print(r["name"], r["seed"], "final", got, "test AUC", auc)
