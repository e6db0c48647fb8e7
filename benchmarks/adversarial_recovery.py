"""Recovery on adversarial data (issue 14): ID-like noise, copies, rare positives.

For each variant of ``recsel.data.adversarial.make_adversarial`` (``balanced``: ~30%
positives; ``rare``: ~2.5%) and each seed, selects in count mode (k = number of
informative groups) and in a roomy budget mode (no count; 90% of the full model's
latency), and scores every selection against the ground truth: groups recovered,
copies, ID-like and noise columns kept.

    python -m benchmarks.adversarial_recovery [--seeds 5] [--rows 20000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from benchmarks._common import machine, write_json
from recsel.data.adversarial import VARIANTS, make_adversarial
from recsel.inputs.inference import DEFAULT_MIN_COUNT, infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig

MODES = ("count", "budget")
ROOMY_FRACTION = 0.9


def prepared(data, seed: int, **infer_kwargs):
    """Train/valid split (80/20), features inferred on the training split only."""
    train, valid = split_frame(data.frame, 0.2, seed=seed)
    features = infer_feature_set(train, data.label, embedding_dim=16, **infer_kwargs)
    return (
        validate_frame(train, features, data.label),
        validate_frame(valid, features, data.label),
        features,
    )


def mode_config(mode: str, num_groups: int, seed: int, **overrides) -> SelectionConfig:
    """Count mode keeps ``num_groups``; budget mode lets a roomy budget decide the count."""
    if mode == "count":
        return SelectionConfig(num_features=num_groups, seed=seed, **overrides)
    return SelectionConfig(latency_budget_fraction=ROOMY_FRACTION, seed=seed, **overrides)


def select_on(
    variant: str, seed: int, mode: str, rows: int, min_count: int | None = None, **overrides
):
    """Draws the data and selects on it: ``(data, train_rows, result, warnings)``.

    Example:
        >>> data, train, result, caught = select_on("rare", 0, "budget", 10_000)
    """
    data = make_adversarial(n_rows=rows, variant=variant, seed=seed)
    infer = {} if min_count is None else {"min_count": min_count}
    train, valid, features = prepared(data, seed, **infer)
    config = mode_config(mode, len(data.groups), seed, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = select(train, valid, features, config, progress=False)
    return data, train, result, caught


def run_one(
    variant: str, seed: int, mode: str, rows: int, min_count: int | None = None, **overrides
) -> dict:
    """One selection on one draw, scored against its ground truth."""
    started = time.time()
    data, train, result, caught = select_on(variant, seed, mode, rows, min_count, **overrides)
    score = data.score_selection(result.selected)
    return {
        "variant": variant,
        "seed": seed,
        "mode": mode,
        "rows": rows,
        "min_count": min_count if min_count is not None else DEFAULT_MIN_COUNT,
        "selected": result.selected,
        **score,
        "auc": round(result.metrics["auc"], 4),
        "rounds": len(result.rounds),
        "round_aucs": [round(r.auc, 4) for r in result.rounds],
        "round_selected": [r.selected for r in result.rounds],
        "final_round": result.final_round,
        "steps": result.provenance["steps"],
        "passes": round(result.provenance["train_rows_seen"] / len(train), 3),
        "batch_size": result.config["batch_size"],
        "warnings": [str(w.message)[:200] for w in caught if issubclass(w.category, UserWarning)],
        "seconds": round(time.time() - started, 1),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Clean-recovery rate per (rows, variant, mode, vocabulary min_count)."""
    out = []

    def key_of(r: dict) -> tuple:
        return r["rows"], r["variant"], r["mode"], r["min_count"]

    for key in sorted({key_of(r) for r in runs}, key=lambda k: (-k[0], *k[1:])):
        cell = [r for r in runs if key_of(r) == key]
        out.append(
            {
                "rows": key[0],
                "variant": key[1],
                "mode": key[2],
                "min_count": key[3],
                "seeds": len(cell),
                "clean": sum(r["clean"] for r in cell),
                "groups_recovered": sum(r["recovered"] for r in cell),
                "groups_total": sum(r["groups"] for r in cell),
                "copies": sum(len(r["copies"]) for r in cell),
                "id_like": sum(len(r["id_like"]) for r in cell),
                "noise": sum(len(r["noise"]) for r in cell),
                "mean_auc": round(sum(r["auc"] for r in cell) / len(cell), 4),
                "mean_passes": round(sum(r["passes"] for r in cell) / len(cell), 3),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[20_000],
        help="Row counts to run (the issue's range is 10k-50k); the sweep runs at the first.",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10k rows, no JSON.")
    parser.add_argument(
        "--min-count-sweep",
        type=int,
        nargs="*",
        default=[1, 10],
        help="Other vocabulary thresholds to run in count mode, as evidence for the default.",
    )
    args = parser.parse_args()
    seeds, row_counts = (2, [10_000]) if args.quick else (args.seeds, args.rows)
    started, load_before = time.time(), os.getloadavg()
    runs = []
    for rows in row_counts:
        for variant in args.variants:
            for mode in args.modes:
                for seed in range(seeds):
                    runs.append(run_one(variant, seed, mode, rows))
                    print(runs[-1], flush=True)
            sweep = args.min_count_sweep if rows == row_counts[0] else []
            for min_count in sweep:
                for seed in range(seeds):
                    runs.append(run_one(variant, seed, "count", rows, min_count=min_count))
                    print(runs[-1], flush=True)
    summary = summarise(runs)
    for row in summary:
        print(row, flush=True)
    if args.quick:
        return
    write_json(
        "adversarial_recovery",
        {
            "machine": machine(),
            "command": f"python -m benchmarks.adversarial_recovery --seeds {seeds} --rows "
            f"{' '.join(map(str, row_counts))} "
            f"--min-count-sweep {' '.join(map(str, args.min_count_sweep))}",
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_seconds": round(time.time() - started, 1),
            "summary": summary,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
