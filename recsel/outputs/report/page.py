"""A self-contained HTML report of one ``SelectionResult``.

The page has no external assets: CSS is inline and every figure is a base64 PNG
``data:`` URI, so it can be mailed, attached to a TFX run or opened offline. Every
user-supplied string (feature names above all) is HTML-escaped.

Sections (each ``<section id=...>``): ``summary``, ``order`` (the order, the validation
curve as features join, and why each dropped feature was dropped), ``trajectories``,
``frontier``, ``widths``, ``cost_model`` and, when an ensemble is given, ``ensemble``.

Degenerate results degrade gracefully instead of failing: with zero rounds the
frontier section says so, and a missing or empty trajectory gives a note instead of
a figure. Inconsistent input (a selected feature that is not a candidate, trajectory
series whose length differs from its steps, a ``features`` set missing a kept
feature, a malformed ensemble) raises ``ValueError`` naming the culprit.

Example:
    >>> result = select(train, valid, features, SelectionConfig(num_features=8))
    >>> write_report(result, "out/report.html", features=features)
"""

from __future__ import annotations

from recsel.atomic import atomic_write_text
from recsel.outputs.report.ensemble import check_ensemble, ensemble_section
from recsel.outputs.report.html import fmt, page, section, table
from recsel.outputs.report.sections import (
    cost_model_section,
    frontier_section,
    order_section,
    trajectories_section,
    widths_section,
)
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult

__all__ = ["render_report", "write_report"]


# ----------------------------------------------------------------------------- checks
def _check(result: SelectionResult, features: FeatureSet | None) -> None:
    if not isinstance(result, SelectionResult):
        raise TypeError(f"render_report needs a SelectionResult, got {type(result).__name__}.")
    unknown = [n for n in result.selected if n not in result.candidates]
    if unknown:
        raise ValueError(
            f"Selected features {unknown} are not among the candidates {result.candidates}; "
            "the SelectionResult is inconsistent (was it edited by hand?)."
        )
    trajectory = result.trajectory or {}
    steps = trajectory.get("steps") or []
    for name, values in (trajectory.get("weights") or {}).items():
        if values and len(values) != len(steps):
            raise ValueError(
                f"Trajectory of feature {name!r} has {len(values)} values but there are "
                f"{len(steps)} steps; every series must have one value per recorded step."
            )
    if features is not None:
        missing = [n for n in result.selected if n not in features.names]
        if missing:
            raise ValueError(
                f"The feature set has no spec for kept features {missing}; pass the FeatureSet "
                "the selection ran on (or features=None to omit the cardinality heuristic)."
            )


# --------------------------------------------------------------------------- sections
def _summary(result: SelectionResult) -> str:
    prov, budget, m = result.provenance or {}, result.budget or {}, result.metrics or {}
    rows = [
        ["label", result.label],
        ["kept features", f"{len(result.selected)} of {len(result.candidates)}"],
        ["validation AUC", fmt(m.get("auc"))],
        ["validation log loss", fmt(m.get("log_loss"))],
    ]
    if budget.get("latency_ms") is not None:
        limit = f"{fmt(budget['latency_ms'], '.3f')} ms"
        if budget.get("latency_fraction") is not None:
            limit = (
                f"{budget['latency_fraction']:.0%} of the full model's p50, timed beside each "
                f"round ({limit} of {fmt(budget['full_model_latency_ms'], '.3f')} ms at the start)"
            )
        rows.append(["latency budget (p50)", limit])
    if budget.get("memory_bytes") is not None:
        rows.append(["memory budget", f"{fmt(budget['memory_bytes'], ',.0f')} bytes"])
    if budget and budget.get("serving_batch_size") is not None:
        rows.append(["serving batch size", budget["serving_batch_size"]])
    if not budget:
        rows.append(["budget", "none"])
    last = result.rounds[result.final_round] if result.rounds else None
    if last is not None and last.latency_ms_p50 is not None:
        measured = (
            f"p50 {fmt(last.latency_ms_p50, '.3f')} ms, p99 {fmt(last.latency_ms_p99, '.3f')} ms"
        )
        if last.full_model_latency_ms is not None and budget.get("latency_fraction") is not None:
            measured += (
                f"; limit {fmt(result.latency_limit_ms(), '.3f')} ms (full model "
                f"{fmt(last.full_model_latency_ms, '.3f')} ms in the same passes)"
            )
        rows.append(["final measured latency", measured])
    else:
        rows.append(["final measured latency", "not measured"])
    rows.append(["seed", prov.get("seed", (result.config or {}).get("seed", "—"))])
    for key in sorted(k for k in prov if k.endswith("_version")):
        rows.append([key.replace("_", " "), prov[key]])
    rows.append(["wall time", f"{fmt(prov.get('wall_seconds'), '.1f')} s"])
    if prov.get("machine"):
        rows.append(["machine", prov["machine"]])
    body = table(["", "value"], rows)
    if result.config:
        config_rows = [[k, v] for k, v in result.config.items()]
        body += f"<details><summary>Configuration</summary>{table(['setting', 'value'], config_rows)}</details>"
    return section("summary", "Summary", body)


# ------------------------------------------------------------------------------ API
def render_report(
    result: SelectionResult,
    features: FeatureSet | None = None,
    ensemble: dict | None = None,
    title: str = "recsel selection report",
) -> str:
    """Renders a self-contained HTML report of a selection.

    Args:
        result: The selection to report.
        features: The candidate ``FeatureSet``; gives cardinalities for the width heuristic.
        ensemble: Multi-seed runs, ``{"runs": [{"seed", "selected", "dims"}, ...],
            "jaccard_mean", "jaccard_pairs": [[i, j, value], ...], "rule"}`` where ``i``
            and ``j`` index ``runs``; adds the ``ensemble`` section.
        title: Page title (escaped).

    Returns:
        The HTML text.

    Raises:
        ValueError: The result, feature set or ensemble is inconsistent (message says how).

    Example:
        >>> html_text = render_report(result, features=features)
    """
    _check(result, features)
    runs = check_ensemble(ensemble) if ensemble is not None else None
    sections = [
        _summary(result),
        order_section(result),
        trajectories_section(result),
        frontier_section(result),
        widths_section(result, features),
        cost_model_section(result),
    ]
    if runs is not None:
        sections.append(ensemble_section(result.candidates, runs, ensemble))
    return page(title, sections)


def write_report(
    result: SelectionResult,
    path: str,
    features: FeatureSet | None = None,
    ensemble: dict | None = None,
    title: str = "recsel selection report",
) -> None:
    """Renders the report and writes it atomically to ``path`` (local or ``gs://``).

    Args:
        result: The selection to report.
        path: Output HTML file.
        features: The candidate ``FeatureSet`` (see ``render_report``).
        ensemble: Multi-seed runs (see ``render_report``).
        title: Page title.

    Example:
        >>> write_report(result, "out/report.html", features=features)
    """
    atomic_write_text(path, render_report(result, features, ensemble, title))
