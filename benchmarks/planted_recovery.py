"""Planted-recovery rate of recsel over seeds on the synthetic data (issue 2 acceptance).

Selects 8 of 34 candidates (8 informative, 6 duplicates, 20 noise incl. 2 ID-like traps)
and counts, per seed, the informative groups recovered and redundant / noise picks.

    python -m benchmarks.planted_recovery [--seeds 5] [--rows 40000] [--logit-scales 1 10]
"""

from __future__ import annotations

import argparse
import time

import recsel  # noqa: F401
from benchmarks._common import machine, write_json
from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig


def run_seed(seed: int, rows: int, logit_scale: float) -> dict:
    data = make_synthetic(n_rows=rows, seed=seed)
    train, valid = split_frame(data.frame, 0.2, seed=seed)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    started = time.time()
    result = select(
        train,
        valid,
        features,
        SelectionConfig(num_features=8, seed=seed, logit_scale=logit_scale),
        progress=False,
    )
    group_of = {c: g for g, members in data.groups().items() for c in members}
    groups = [group_of.get(s) for s in result.selected]
    recovered = len({g for g in groups if g})
    return {
        "seed": seed,
        "logit_scale": logit_scale,
        "selected": result.selected,
        "recovered": recovered,
        "all_recovered": recovered == len(data.informative),
        "duplicates_selected": sum(1 for g in groups if g) - recovered,
        "noise_selected": groups.count(None),
        "traps_selected": len(set(result.selected) & set(data.traps)),
        "auc": result.metrics["auc"],
        "seconds": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--logit-scales", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    runs = [
        run_seed(seed, args.rows, scale)
        for scale in args.logit_scales
        for seed in range(args.seeds)
    ]
    for r in runs:
        print(r, flush=True)
    write_json(
        "planted_recovery",
        {
            "machine": machine(),
            "command": "python -m benchmarks.planted_recovery "
            f"--seeds {args.seeds} --rows {args.rows} --logit-scales "
            + " ".join(str(s) for s in args.logit_scales),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
