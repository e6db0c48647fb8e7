"""Compare recsel's chunk rules (each vs joint) per dataset and seed against every width rule.

Run from the repository root: ``python benchmarks/results/issue15_probes/compare_rules.py``.
'each' runs: benchmarks/results/dims.json (seeds 0-2) and heldout_default.json (planted and
MovieLens seeds 3-5); 'joint' / 'tail' runs: {rule}_planted.json (seeds 0-5), {rule}_ml_adult.json (seeds 0-2).
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def runs(path):
    data = json.load(open(path))
    out = {}
    for section in data["datasets"]:
        for r in section["runs"]:
            out[(section["name"], r["seed"], r["variant"])] = r
    return out


each = {**runs(os.path.join(HERE, "..", "dims.json")), **runs(os.path.join(HERE, "heldout_default.json"))}
def rule_runs(rule):
    out = {}
    for name in (f"{rule}_planted.json", f"{rule}_ml_adult.json"):
        if os.path.exists(os.path.join(HERE, name)):
            out.update(runs(os.path.join(HERE, name)))
    return out


joint, tail = rule_runs("joint"), rule_runs("tail")
rules = ["uniform", "heuristic_scaled", "mixed_dim", "pep"]
summary = {}
for ds in ("planted", "movielens", "adult"):
    for label, res in (("each", each), ("joint", joint), ("tail", tail)):
        seeds = sorted({s for (d, s, v) in res if d == ds and v == "recsel"})
        if ds != "planted":
            seeds = [s for s in seeds if s < 3]  # the joint rule ran seeds 0-2 there
        if not seeds:
            continue
        rec = np.array([res[(ds, s, "recsel")]["test_auc"] for s in seeds])
        full = np.array([res[(ds, s, "full_width")]["test_auc"] for s in seeds])
        frac = np.array([res[(ds, s, "recsel")]["params"] / res[(ds, s, "full_width")]["params"] for s in seeds])
        best = np.array([max(res[(ds, s, r)]["test_auc"] for r in rules) for s in seeds])
        pep = np.array([res[(ds, s, "pep")]["test_auc"] for s in seeds])
        # The benchmark's target: recsel's mean against each rule's mean.
        margin = min(rec.mean() - np.mean([res[(ds, s, r)]["test_auc"] for s in seeds]) for r in rules)
        rho = [res[(ds, s, "recsel")].get("spearman") for s in seeds]
        row = {
            "seeds": seeds, "recsel": rec.mean(), "full": full.mean(), "param_frac": frac.mean(),
            "recsel_minus_full": (rec - full).mean(), "recsel_minus_best_rule": (rec - best).mean(),
            "recsel_minus_pep": (rec - pep).mean(),
            "recsel_mean_minus_best_rule_mean": margin,
            "spearman": float(np.mean(rho)) if ds == "planted" else None,
            "per_seed_recsel": rec.round(4).tolist(), "per_seed_best_rule": best.round(4).tolist(),
            "widths_seed0": res[(ds, seeds[0], "recsel")]["widths"],
        }
        summary[f"{ds}/{label}/{seeds[0]}-{seeds[-1]}"] = row
        print(f"{ds:9s} {label:5s} seeds {seeds}: recsel {rec.mean():.4f} full {full.mean():.4f} "
              f"({frac.mean():.1%} params) rec-full {(rec - full).mean():+.4f} "
              f"rec-bestrule {(rec - best).mean():+.4f} mean-margin {margin:+.4f} rec-pep {(rec - pep).mean():+.4f}"
              + (f" spearman {np.mean(rho):.3f}" if ds == "planted" else ""))
        if ds == "planted" and len(seeds) == 6:
            for part in (seeds[:3], seeds[3:]):
                i = [seeds.index(s) for s in part]
                print(f"    seeds {part}: rec-full {(rec - full)[i].mean():+.4f} rec-pep {(rec - pep)[i].mean():+.4f} "
                      f"spearman {np.mean([rho[k] for k in i]):.3f} params {frac[i].mean():.1%}")
json.dump(summary, open(os.path.join(HERE, "compare_rules.json"), "w"), indent=1, default=float)
