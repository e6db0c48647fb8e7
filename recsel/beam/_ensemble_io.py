"""The ensemble job's records and output directory: single-run files, runs/ and ensemble.json."""

from __future__ import annotations

import json
import os
from typing import Any

from recsel.atomic import atomic_output_dir, atomic_write_text
from recsel.beam._consensus import RULE, Consensus, stability
from recsel.outputs.write import write_outputs
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult

ENSEMBLE_FILE = "ensemble.json"
RUNS_DIR = "runs"


def write_ensemble_outputs(
    output_dir: str,
    result: SelectionResult,
    features: FeatureSet,
    runs: list[SelectionResult],
    record: dict[str, Any],
    overwrite: bool = False,
) -> str:
    """Writes ``output_dir``; nothing appears there unless every file was written.

    Layout: the files of ``recsel.outputs.write.write_outputs`` for the consensus ``result`` (its
    report with an ensemble section), ``runs/run-<i>.json`` (each run's ``SelectionResult``)
    and ``ensemble.json`` (``record``: rule, per-run selections, Jaccard stability).

    Args:
        output_dir: The ensemble job's output directory.
        result: The consensus result.
        features: The candidate feature set.
        runs: The per-run results, in run order.
        record: The ensemble record.
        overwrite: Replace a non-empty ``output_dir``.

    Returns:
        The output directory.
    """
    with atomic_output_dir(output_dir, overwrite=overwrite) as staging:
        # write_outputs stages its own files and swaps them into our (empty) staging dir.
        write_outputs(result, features, staging, ensemble=record)
        for i, run in enumerate(runs):
            run.to_json(os.path.join(staging, RUNS_DIR, f"run-{i}.json"))
        atomic_write_text(
            os.path.join(staging, ENSEMBLE_FILE),
            json.dumps(record, indent=2, allow_nan=True) + "\n",
        )
    return output_dir


def ensemble_record(
    specs: list[dict[str, Any]], runs: list[SelectionResult], chosen: Consensus, refit: bool
) -> dict[str, Any]:
    """The ``ensemble.json`` content, also the ``ensemble`` section of ``report.html``."""
    mean, pairs = stability([r.selected for r in runs])
    return {
        "version": 1,
        "rule": RULE,
        "k": chosen.k,
        "refit": refit,
        "runs": [
            {
                **spec,
                "selected": list(run.selected),
                "dims": dict(run.dims),
                "metrics": dict(run.metrics),
                "train_rows": run.provenance.get("ensemble_run", {}).get("train_rows"),
                "wall_seconds": run.provenance.get("wall_seconds"),
            }
            for spec, run in zip(specs, runs, strict=True)
        ],
        "jaccard_mean": mean,
        "jaccard_pairs": pairs,
        "consensus": {"selected": list(chosen.selected), "dims": dict(chosen.dims)},
        "scores": {
            n: {"votes": chosen.votes[n], "mean_rank": chosen.mean_ranks[n]} for n in chosen.votes
        },
    }


def final_line(result: SelectionResult, record: dict[str, Any]) -> str:
    """The job's one-line final summary."""
    quality = (
        f"refit AUC {result.metrics['auc']:.4f}"
        if "auc" in result.metrics
        else f"mean run AUC {result.metrics.get('run_mean_auc', float('nan')):.4f}"
    )
    return (
        f"consensus of {len(record['runs'])} runs: {len(result.selected)}/"
        f"{len(result.candidates)} features [{', '.join(result.selected)}], {quality}, "
        f"mean pairwise Jaccard {record['jaccard_mean']:.3f}"
    )
