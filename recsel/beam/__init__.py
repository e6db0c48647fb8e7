"""Beam batch jobs (Dataflow-ready): ensembled selection and dataset pruning.

``recsel.beam.ensemble`` runs several ``recsel.select`` runs in parallel and writes one
consensus; ``recsel.beam.prune_dataset`` rewrites a TFRecord / Parquet dataset keeping only
the selected features. Entry points: ``python -m pipelines.ensemble_job`` and
``python -m pipelines.prune_dataset_job`` (see ``docs/dataflow.md``).

The consensus rule is pure Python and importable without Apache Beam; the job classes load
Beam on first use.

Example:
    >>> from recsel.beam import EnsembleJob, run_ensemble
    >>> run_ensemble(EnsembleJob("events.parquet", "clicked", "out/", num_runs=3))
"""

from __future__ import annotations

import importlib
from typing import Any

from recsel.beam._consensus import RULE, SHORT_RULE, Consensus, consensus, jaccard, stability

_LAZY = {
    "EnsembleJob": "recsel.beam.ensemble",
    "build_ensemble_pipeline": "recsel.beam.ensemble",
    "run_ensemble": "recsel.beam.ensemble",
    "PruneJob": "recsel.beam.prune_dataset",
    "build_prune_pipeline": "recsel.beam.prune_dataset",
    "run_prune": "recsel.beam.prune_dataset",
}

__all__ = ["RULE", "SHORT_RULE", "Consensus", "consensus", "jaccard", "stability", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # Beam is an optional extra: import it only when a job is used
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recsel.beam' has no attribute {name!r}")
