"""The report's sections, each built from a SelectionResult: curve, order, drops, trajectories, frontier, widths, cost model."""

from __future__ import annotations

import math

from recsel.inputs.inference import heuristic_dim
from recsel.outputs.report import figures as figs
from recsel.outputs.report.html import esc, flatten, fmt, img, note, para, section, table
from recsel.selection.explain import dropped_reasons
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult

__all__ = [
    "cost_model_section",
    "curve_section",
    "dropped_section",
    "frontier_section",
    "order_section",
    "trajectories_section",
    "widths_section",
]

_GATE_ONE = 1.0 - 1e-6  # a selected feature's gate is exactly 1; allow float noise


_REASONS = {
    "over_budget": "over the budget",
    "no_value": "added no validation AUC",
    "copy": "copy of a kept feature",
    "frequency": "below the frequency threshold",
    "low_attention": "low attention",
    "consensus": "not in the consensus",
}


def curve_section(result: SelectionResult) -> tuple[str, str]:
    """The curve figure and a sentence on how it was computed (or a note if impossible)."""
    curve = [p for p in (result.feature_curve or []) if p.get("feature") in result.selected]
    rounds = result.rounds
    kept_rounds = rounds[: result.final_round % len(rounds) + 1] if rounds else []
    if curve:
        points = [
            (len(r.selected), r.auc, f"end of round {r.index + 1}")
            for r in kept_rounds
            if len(kept_rounds) > 1
        ]
        uri = figs.curve_figure(
            [p["feature"] for p in curve],
            [p["auc"] for p in curve],
            [p.get("log_loss") for p in curve],
            points,
        )
        text = (
            "Each point is the final model evaluated on a validation sample with only the "
            "features up to that one kept (the later ones masked to zero, no retraining); "
            "numbers above the line are what each feature added."
        )
        if points:
            text += " Squares: the model retrained at the end of each round."
        return img(uri, "validation AUC as features join"), para(text)
    if kept_rounds:
        previous: list[str] = []
        labels = []
        for r in kept_rounds:
            added = [n for n in r.selected if n not in previous]
            previous = r.selected
            labels.append(
                f"r{r.index + 1}: " + ", ".join(added[:3]) + ("…" if len(added) > 3 else "")
            )
        uri = figs.curve_figure(
            labels,
            [r.auc for r in kept_rounds],
            [r.log_loss for r in kept_rounds],
            title="Validation quality after each round",
        )
        return img(uri, "validation AUC after each round"), note(
            "This result has no per-feature curve (feature_curve), so quality is shown per round."
        )
    return "", note("No round was recorded, so there is no validation curve to show.")


def order_section(result: SelectionResult) -> str:
    sel_w = [result.selection_weights.get(n, float("nan")) for n in result.selected]
    curve = {p["feature"]: p for p in result.feature_curve or []}
    rows, previous = [], None
    for i, (n, s) in enumerate(zip(result.selected, sel_w)):
        auc = curve.get(n, {}).get("auc")
        gain = auc - previous if auc is not None and previous is not None else None
        previous = auc if auc is not None else previous
        rows.append([i + 1, n, result.dims.get(n, "—"), fmt(s, ".4f"), fmt(auc), fmt(gain, "+.4f")])
    headers = ["rank", "feature", "width", "weight at selection", "AUC with 1..rank", "added AUC"]
    body = table(headers, rows, {0, 2, 3, 4, 5})
    if result.selected:
        figure, text = curve_section(result)
        body += figure + text
    else:
        body += note("No feature was selected.")
    body += dropped_section(result)
    return section("order", "Selection order and validation curve", body)


def dropped_section(result: SelectionResult) -> str:
    dropped = result.dropped
    if not dropped:
        return "<p>No candidate was dropped.</p>"
    # Stored reasons had the validation data (copy check); otherwise derive the rest.
    reasons = result.dropped_reasons or dropped_reasons(result)
    order = list(_REASONS)
    dropped = sorted(
        dropped,
        key=lambda n: (
            order.index(reasons.get(n, {}).get("reason", "low_attention")),
            -(result.final_weights.get(n) or 0.0),
        ),
    )
    rows = []
    for n in dropped:
        why = reasons.get(n, {})
        label = _REASONS.get(why.get("reason"), "—")
        if why.get("reason") == "copy" and why.get("of"):
            label = f"copy of {why['of']}"
        rows.append([n, fmt(result.final_weights.get(n)), label, why.get("detail", "")])
    body = f"<h3>Dropped features ({len(dropped)})</h3>"
    return body + table(["feature", "final weight", "why dropped", "detail"], rows, {1})


def _selection_steps(
    steps: list[int], weights: dict[str, list[float]], selected: list[str]
) -> dict[str, int]:
    """First recorded step after a feature's gate last dipped below 1 (its selection).

    During warm-up every gate is 1, so "first step at 1" would be wrong; a feature whose
    gate was never recorded below 1 has no derivable selection step and gets no marker.
    """
    out = {}
    for name in selected:
        values = weights.get(name) or []
        below = [i for i, v in enumerate(values) if v < _GATE_ONE]
        if below and below[-1] + 1 < len(steps):
            out[name] = steps[below[-1] + 1]
    return out


def trajectories_section(result: SelectionResult) -> str:
    trajectory = result.trajectory or {}
    steps = list(trajectory.get("steps") or [])
    weights = {
        n: list(v)
        for n, v in (trajectory.get("weights") or {}).items()
        if n in result.candidates and v
    }
    if not steps or not weights:
        body = note(
            "No attention trajectory was recorded for this result, so there is nothing to plot."
        )
        return section("trajectories", "Attention trajectories", body)
    marks = _selection_steps(steps, weights, result.selected)
    round_steps = [r.steps for r in result.rounds if r.steps]
    body = img(
        figs.trajectory_figure(steps, weights, result.selected, marks, round_steps),
        "attention weights over training steps",
    )
    body += (
        f"<p>{len(steps)} recorded steps ({esc(steps[0])} to {esc(steps[-1])}). Selected features "
        "are coloured; dropped candidates are thin grey lines; dotted lines mark round ends.</p>"
    )
    if marks:
        body += table(
            ["feature", "first step recorded as selected"], [[n, s] for n, s in marks.items()], {1}
        )
    return section("trajectories", "Attention trajectories", body)


def _frontier_axis(
    result: SelectionResult,
) -> tuple[list, list[float], str, float | None, str, list[str]]:
    """Picks the x axis: measured p50 latency, else embedding bytes, else feature count."""
    rounds, budget = result.rounds, result.budget or {}
    measured = [
        r for r in rounds if r.latency_ms_p50 is not None and math.isfinite(r.latency_ms_p50)
    ]
    notes: list[str] = []
    if measured:
        xlabel = "measured p50 serving latency (ms)"
        if budget.get("serving_batch_size"):
            xlabel += f", batch {budget['serving_batch_size']}"
        if len(measured) < len(rounds):
            notes.append(
                f"{len(rounds) - len(measured)} round(s) without a latency measurement are not plotted."
            )
        limit = result.latency_limit_ms()
        label = f"latency budget {limit:g} ms" if limit is not None else ""
        if limit is not None and budget.get("latency_fraction") is not None:
            label += " (final round's)"
        return measured, [r.latency_ms_p50 for r in measured], xlabel, limit, label, notes
    if budget.get("latency_ms") is not None:
        notes.append("A latency budget was set but no round has a latency measurement.")
    if any(r.embedding_bytes for r in rounds):
        notes.append(
            "Serving latency was not measured, so the x axis shows embedding-table bytes instead."
        )
        limit = budget.get("memory_bytes")
        xs = [float(r.embedding_bytes) for r in rounds]
        return rounds, xs, "embedding-table bytes", limit, "memory budget", notes
    notes.append(
        "Serving latency was not measured and no embedding sizes were recorded, so the x axis shows the number of features instead."
    )
    return (
        rounds,
        [float(len(r.selected)) for r in rounds],
        "number of selected features",
        None,
        "",
        notes,
    )


def frontier_section(result: SelectionResult) -> str:
    heading = "Quality / cost frontier"
    if not result.rounds:
        return section(
            "frontier", heading, note("No rounds were recorded, so there is no frontier to show.")
        )
    points, xs, xlabel, budget_x, budget_label, notes = _frontier_axis(result)
    labels = [f"r{r.index + 1}: {len(r.selected)} feat." for r in points]
    predicted = [r.predicted_latency_ms for r in points] if xlabel.startswith("measured") else None
    aucs = [r.auc for r in points]
    uri = figs.frontier_figure(xs, aucs, labels, xlabel, budget_x, budget_label, predicted)
    body = "".join(note(n) for n in notes) + img(uri, "quality versus cost")
    rows, previous = [], []
    # The full model timed beside each round: the yardstick of a relative budget.
    side_by_side = any(r.full_model_latency_ms is not None for r in result.rounds)
    for r in result.rounds:
        added = ", ".join(n for n in r.selected if n not in previous) or "—"
        previous = r.selected
        measured = [r.latency_ms_p50, r.latency_ms_p99, r.predicted_latency_ms]
        if side_by_side:
            measured.append(r.full_model_latency_ms)
        latencies = [fmt(v, ".3f") for v in measured]
        rows.append(
            [
                r.index + 1,
                len(r.selected),
                added,
                sum(r.dims.values()),
                fmt(r.auc),
                fmt(r.log_loss),
                *latencies,
                f"{r.embedding_bytes:,}",
                r.steps,
            ]
        )
    headers = "round|features|added|emb. columns|AUC|log loss|p50 ms|p99 ms|predicted ms".split("|")
    if side_by_side:
        headers.append("full model ms")
    headers += ["emb. bytes", "step"]
    body += table(headers, rows, set(range(len(headers))) - {2})
    return section("frontier", heading, body)


def widths_section(result: SelectionResult, features: FeatureSet | None) -> str:
    names = list(result.selected)
    if not names:
        return section("widths", "Embedding widths", note("No feature was kept."))
    chosen = [int(result.dims.get(n, 0)) for n in names]
    full = [int(result.full_dims.get(n, 0)) for n in names]
    headers = ["feature", "chosen width", "full width"]
    rows = [[n, c, f] for n, c, f in zip(names, chosen, full)]
    heuristic, body = None, ""
    if features is None:
        body = note(
            "No FeatureSet was given, so cardinalities are unknown and the 6·cardinality^0.25 "
            "heuristic is omitted; pass features= to show it."
        )
    else:
        cards = [features[n].vocabulary_size for n in names]
        heuristic = [6.0 * v**0.25 for v in cards]
        headers += ["cardinality", "6·cardinality^0.25", "rounded (heuristic_dim)"]
        for row, v, h in zip(rows, cards, heuristic):
            row += [v, f"{h:.1f}", heuristic_dim(v)]
    body += img(figs.widths_figure(names, chosen, full, heuristic), "embedding widths")
    body += table(headers, rows, range(1, len(headers)))
    return section("widths", "Embedding widths", body)


def cost_model_section(result: SelectionResult) -> str:
    model = result.cost_model
    if not model:
        text = (
            "A budget was set but no cost model was recorded."
            if result.budget
            else "No budget was set, so no cost model was calibrated."
        )
        return section("cost_model", "Cost model", para(text))
    body = "<h3>Coefficients</h3>" + table(
        ["coefficient", "value"], flatten(model.get("coefficients") or {})
    )
    provenance = dict(model.get("provenance") or {})
    points = provenance.pop("points", None)
    body += "<h3>Provenance</h3>" + table(["key", "value"], flatten(provenance))
    if isinstance(points, list) and points and all(isinstance(p, dict) for p in points):
        keys = list(points[0])
        rows = [
            [fmt(p.get(k), ",d" if isinstance(p.get(k), int) else ".4g") for k in keys]
            for p in points
        ]
        body += "<h3>Calibration models (measured and predicted)</h3>"
        body += table([k.replace("_", " ") for k in keys], rows, range(len(keys)))
    extra = {k: v for k, v in model.items() if k not in ("coefficients", "provenance")}
    if extra:
        body += "<h3>Measurement settings</h3>" + table(["key", "value"], flatten(extra))
    return section("cost_model", "Cost model", body)
