"""The consensus of several selection runs, and their stability. Pure Python, no Beam.

The rule (``RULE``): a feature's score is the fraction of runs that selected it (its votes);
ties are broken by its mean rank across runs (its 1-based position in a run's selection
order, or ``k_run + 1`` in a run that did not select it, where ``k_run`` is how many
features that run kept), then by candidate order. The top ``k`` by score are kept, where
``k`` is the median number of features the runs kept (a half rounds up). A kept feature's
width is the median of the widths chosen by the runs that selected it, rounded up to a
multiple of ``dim_multiple`` (of ``chunk_size`` if that is larger). Stability is the mean
pairwise Jaccard similarity of the runs' selected sets.

Example:
    >>> chosen = consensus(runs, dim_multiple=8, chunk_size=8)
    >>> chosen.selected, chosen.dims
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

from recsel.spec.result import RoundRecord, SelectionResult

RULE = (
    "score = fraction of runs selecting the feature (votes); ties broken by mean rank across "
    "runs (a run that did not select it counts rank k_run + 1), then by candidate order; keep "
    "the top k, k = median number of features the runs kept (halves round up); width = median "
    "of the widths chosen by the runs that selected it, rounded up to a multiple of "
    "dim_multiple (or chunk_size, if larger)"
)
# The rule in a summary line (``RULE`` itself is in ensemble.json and the report).
SHORT_RULE = "top k by votes, ties by mean rank, median widths"


@dataclasses.dataclass(frozen=True)
class Consensus:
    """The consensus selection.

    Args:
        selected: Kept features, best score first.
        dims: Width per kept feature.
        votes: Fraction of runs selecting each feature (every candidate).
        mean_ranks: Mean rank of each candidate across runs (unselected: ``k_run + 1``).
        k: Number of features kept.
    """

    selected: list[str]
    dims: dict[str, int]
    votes: dict[str, float]
    mean_ranks: dict[str, float]
    k: int


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """``|a ∩ b| / |a ∪ b|`` of two selections (1.0 when both are empty).

    Example:
        >>> jaccard(["a", "b"], ["b", "c"])
        0.3333333333333333
    """
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


def stability(selections: Sequence[Sequence[str]]) -> tuple[float | None, list[list[Any]]]:
    """Mean pairwise Jaccard similarity and the ``[i, j, value]`` pairs (``i < j``).

    Args:
        selections: One selected list per run.

    Returns:
        ``(mean, pairs)``; the mean is None for fewer than two runs.

    Example:
        >>> stability([["a", "b"], ["a", "b"], ["a", "c"]])[0]
        0.5555555555555555
    """
    pairs = [
        [i, j, jaccard(selections[i], selections[j])]
        for i, j in itertools.combinations(range(len(selections)), 2)
    ]
    mean = sum(p[2] for p in pairs) / len(pairs) if pairs else None
    return mean, pairs


def _check_runs(runs: Sequence[SelectionResult]) -> None:
    if not runs:
        raise ValueError("A consensus needs at least one selection run; got none.")
    first = runs[0]
    for i, run in enumerate(runs[1:], 1):
        if run.label != first.label or list(run.candidates) != list(first.candidates):
            raise ValueError(
                f"Run {i} selected from other candidates or for another label than run 0 "
                f"(label {run.label!r} vs {first.label!r}); every run must share one feature set."
            )
        unknown = set(run.selected) - set(first.candidates)
        if unknown:
            raise ValueError(f"Run {i} selected unknown features {sorted(unknown)}.")


def consensus(runs: Sequence[SelectionResult], dim_multiple: int, chunk_size: int) -> Consensus:
    """Applies ``RULE`` to the runs' selections.

    Args:
        runs: Selection results over one shared feature set.
        dim_multiple: Widths are rounded up to a multiple of this ...
        chunk_size: ... or of this, if larger (widths stay whole chunks).

    Returns:
        The ``Consensus``.

    Raises:
        ValueError: No runs, or runs over different candidates or labels.

    Example:
        >>> consensus([run_a, run_b, run_c], dim_multiple=8, chunk_size=8).selected
    """
    _check_runs(runs)
    candidates = list(runs[0].candidates)
    n = len(runs)
    k = math.floor(statistics.median(len(r.selected) for r in runs) + 0.5)
    votes, mean_ranks = {}, {}
    for name in candidates:
        votes[name] = sum(name in r.selected for r in runs) / n
        ranks = [
            r.selected.index(name) + 1 if name in r.selected else len(r.selected) + 1 for r in runs
        ]
        mean_ranks[name] = sum(ranks) / n
    position = {name: i for i, name in enumerate(candidates)}
    ordered = sorted(candidates, key=lambda c: (-votes[c], mean_ranks[c], position[c]))
    selected = ordered[:k]
    unit = max(dim_multiple, chunk_size)
    dims = {}
    for name in selected:
        widths = [r.dims[name] for r in runs if name in r.selected]
        dims[name] = int(unit * math.ceil(statistics.median(widths) / unit))
    return Consensus(selected, dims, votes, mean_ranks, k)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def run_metric_means(runs: Sequence[SelectionResult]) -> dict[str, float]:
    """Per-run metrics averaged over runs, as ``run_mean_<metric>`` (plus ``run_std_auc``)."""
    keys = sorted({k for r in runs for k in r.metrics})
    out = {f"run_mean_{k}": _mean([r.metrics.get(k) for r in runs]) for k in keys}
    aucs = [r.metrics["auc"] for r in runs if "auc" in r.metrics]
    if len(aucs) >= 2:
        out["run_std_auc"] = statistics.stdev(aucs)
    return out


def consensus_result(
    runs: Sequence[SelectionResult],
    chosen: Consensus,
    refit: SelectionResult | None,
    provenance: dict[str, Any],
) -> SelectionResult:
    """The consensus as a ``SelectionResult`` (the single-run output format).

    ``metrics["auc"]`` / ``["log_loss"]`` and the one round come from ``refit``: a ranker
    trained on exactly the consensus features at the consensus widths and evaluated on the
    validation split. Without a refit there is no round-level quality to report, so the
    round's AUC / log loss are the per-run means, and ``provenance["metrics_source"]`` says
    so. ``run_mean_*`` metrics are always the per-run means. ``selection_weights`` is each
    kept feature's mean weight at selection over the runs that selected it, and
    ``final_weights`` each candidate's mean final gate over all runs.

    Args:
        runs: The runs, in run order.
        chosen: Their consensus.
        refit: The refit of the consensus selection, or None.
        provenance: Extra provenance (seeds, timings, the ensemble summary).

    Returns:
        The consensus ``SelectionResult``.
    """
    first = runs[0]
    means = run_metric_means(runs)
    if refit is not None:
        metrics = {"auc": refit.metrics["auc"], "log_loss": refit.metrics["log_loss"], **means}
        last = refit.rounds[-1]
        record = dataclasses.replace(
            last, index=0, selected=list(chosen.selected), dims=dict(chosen.dims)
        )
        source = "refit of the consensus features at the consensus widths (validation split)"
    else:
        metrics = dict(means)
        record = RoundRecord(
            index=0,
            selected=list(chosen.selected),
            dims=dict(chosen.dims),
            auc=means.get("run_mean_auc", float("nan")),
            log_loss=means.get("run_mean_log_loss", float("nan")),
        )
        source = "no refit: the round's auc / log_loss are per-run means, not the consensus's"
    selection_weights = {
        n: _mean([r.selection_weights.get(n) for r in runs if n in r.selected])
        for n in chosen.selected
    }
    final_weights = {
        n: round(_mean([r.final_weights.get(n) for r in runs]), 6) for n in first.candidates
    }
    return SelectionResult(
        label=first.label,
        candidates=list(first.candidates),
        selected=list(chosen.selected),
        dims=dict(chosen.dims),
        full_dims=dict(first.full_dims),
        selection_weights=selection_weights,
        final_weights=final_weights,
        rounds=[record],
        metrics=metrics,
        trajectory={"steps": [], "weights": {}},  # per-run trajectories are in runs/run-<i>.json
        config=dict(first.config),
        provenance={
            "metrics_source": source,
            "weights_source": "selection_weights and final_weights are means over the runs",
            **provenance,
        },
    )
