"""Run budget selections with plateau_patience=99 so every planned round runs; record
per-round masked gains, errors, budget fit, and (real data) each prefix's test AUC.

    PYTHONPATH=. python benchmarks/results/issue14_probes/rounds_probe.py adv OUT.json
    PYTHONPATH=. python benchmarks/results/issue14_probes/rounds_probe.py real OUT.json adult movielens
"""

import json
import os
import sys
import tempfile
import time
import warnings

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig

warnings.filterwarnings("ignore")


def rounds_of(result):
    cm = result.cost_model or {}
    g, se = cm.get("round_marginal_auc", {}), cm.get("round_marginal_se", {})
    out = []
    for r in result.rounds:
        out.append(
            {
                "i": r.index,
                "selected": list(r.selected),
                "dims": dict(r.dims),
                "auc": r.auc,
                "gain": g.get(str(r.index)),
                "se": se.get(str(r.index)),
                "p50": r.latency_ms_p50,
                "full": r.full_model_latency_ms,
                "limit": result.latency_limit_ms(r.index),
            }
        )
    return out


def adversarial(out):
    from benchmarks.adversarial_recovery import mode_config, prepared
    from recsel.data.adversarial import make_adversarial

    res = []
    for variant in ("balanced", "rare"):
        for seed in range(5):
            data = make_adversarial(n_rows=20000, variant=variant, seed=seed)
            train, valid, features = prepared(data, seed)
            cfg = mode_config("budget", len(data.groups), seed, plateau_patience=99)
            t = time.time()
            r = select(train, valid, features, cfg, progress=False)
            rows = rounds_of(r)
            for row in rows:
                row["score"] = data.score_selection(row["selected"])
            res.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "final": r.final_round,
                    "rounds": rows,
                    "secs": round(time.time() - t, 1),
                    "load": os.getloadavg(),
                }
            )
            print(variant, seed, res[-1]["final"], len(rows), res[-1]["secs"], flush=True)
            json.dump(res, open(out, "w"))


def real(out, names):
    from benchmarks import baselines as bl
    from benchmarks.datasets import load_dataset
    from recsel.cost import load_serving_target, measure_interleaved
    from recsel.model.layer import PrunedEmbedding
    from recsel.model.ranker import Ranker

    res = []
    proto = bl.TrainProtocol()
    for name in names:
        data = load_dataset(name, None, 16, 20)
        f = data.features
        wd = tempfile.mkdtemp()
        cheapest = min(f, key=lambda s: s.vocabulary_size * s.embedding_dim * s.max_valency)
        one = f.subset([cheapest.name])
        tg = [
            load_serving_target(
                Ranker(PrunedEmbedding(k), proto.hidden_units), k, data.valid, 512, wd
            )
            for k in (f, one)
        ]
        full, low = [s.p50_ms for s in measure_interleaved(tg, 512, passes=5)]
        budget = low + 0.5 * (full - low)
        for seed in range(3):
            t = time.time()
            r = select(
                data.train,
                data.valid,
                f,
                SelectionConfig(
                    latency_budget_ms=budget, seed=seed, serving_batch_size=512, plateau_patience=99
                ),
                progress=False,
            )
            rows = rounds_of(r)
            secs = time.time() - t
            for row in rows:
                kept = f.subset(row["selected"], row["dims"])
                m, _ = bl.train_ranker(data.train, kept, proto, seed)
                row["test_auc"] = bl.evaluate(m, data.test, kept)["auc"]
            res.append(
                {
                    "name": name,
                    "seed": seed,
                    "budget": budget,
                    "full": full,
                    "low": low,
                    "final": r.final_round,
                    "rounds": rows,
                    "secs": round(secs, 1),
                    "load": os.getloadavg(),
                }
            )
            print(
                name,
                seed,
                r.final_round,
                [(x["i"], round(x["test_auc"], 4), x["gain"], x["se"]) for x in rows],
                flush=True,
            )
            json.dump(res, open(out, "w"))


if __name__ == "__main__":
    if sys.argv[1] == "adv":
        adversarial(sys.argv[2])
    else:
        real(sys.argv[2], sys.argv[3:])
