"""MovieLens budget rounds, compare_methods protocol, per round: added feature, predicted
vs measured latency, limit, masked gain +- se, and why the run stopped; final test AUC.

Budget fractions are fixed to those of the 1fb8b67 idle-box run (budget_ms / full_ms per
seed) so that A/B runs judge the same budget.

    PYTHONPATH=. python benchmarks/results/issue14_probes/ml_budget_probe.py OUT.json 0 1 2
    PROBE_DATASET=adult PYTHONPATH=. python benchmarks/results/issue14_probes/ml_budget_probe.py OUT.json 0
"""

import json
import os
import sys
import time
import warnings

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from benchmarks import baselines as bl
from benchmarks.datasets import load_dataset
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig

warnings.filterwarnings("ignore")
FRACTIONS = {
    "movielens": {0: 1.6114815 / 2.5041090, 1: 1.6113340 / 2.3991260, 2: 1.3722998 / 1.9990500},
    "adult": {0: 1.4356170 / 2.0808650, 1: 1.4740517 / 2.2745705, 2: 1.3756143 / 1.9347240},
}
DATASET = os.environ.get("PROBE_DATASET", "movielens")


def main(out, seeds):
    import subprocess

    data = load_dataset(DATASET, None, 16, 20)
    f, proto, res = data.features, bl.TrainProtocol(), []
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for seed in seeds:
        cfg = SelectionConfig(
            latency_budget_fraction=FRACTIONS[DATASET][seed], seed=seed, serving_batch_size=512
        )
        t, cpu = time.time(), time.process_time()
        r = select(data.train, data.valid, f, cfg, progress=False)
        secs, cpus = time.time() - t, time.process_time() - cpu
        cm = r.cost_model or {}
        g, se = cm.get("round_marginal_auc", {}), cm.get("round_marginal_se", {})
        rows, prev = [], []
        for rec in r.rounds:
            rows.append({
                "i": rec.index, "added": [n for n in rec.selected if n not in prev],
                "selected": list(rec.selected), "val_auc": rec.auc,
                "gain": g.get(str(rec.index)), "se": se.get(str(rec.index)),
                "pred_ms": rec.predicted_latency_ms, "p50": rec.latency_ms_p50,
                "full": rec.full_model_latency_ms, "limit": r.latency_limit_ms(rec.index),
            })  # fmt: skip
            prev = list(rec.selected)
        kept = f.subset(r.selected, r.dims)
        m, _ = bl.train_ranker(data.train, kept, proto, seed)
        auc = bl.evaluate(m, data.test, kept)["auc"]
        res.append({
            "seed": seed, "final": r.final_round, "selected": r.selected, "test_auc": auc,
            "rejected": cm.get("rejected"), "discarded": cm.get("discarded_rounds"),
            "skipped_copies": cm.get("skipped_copies"), "rounds": rows,
            "secs": round(secs, 1), "cpu_s": round(cpus, 1), "load": os.getloadavg(),
            "commit": head.strip(),
        })  # fmt: skip
        print(f"seed {seed} test_auc {auc:.4f} selected {r.selected} final {r.final_round} "
              f"rejected {cm.get('rejected')} discarded {cm.get('discarded_rounds')} "
              f"{secs:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        for row in rows:
            print("   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                          if k != "selected"}, flush=True)  # fmt: skip
        with open(out + ".tmp", "w") as fh:
            json.dump(res, fh, indent=1)
        os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv[1], [int(x) for x in sys.argv[2:]])
