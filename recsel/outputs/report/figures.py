"""Matplotlib figures of ``recsel.outputs.report.page``, each returned as a ``data:image/png`` URI.

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas, so no
pyplot global state (backend, current figure, open-figure registry) is touched and the
report can render inside notebooks, servers and tests alike.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_SELECTED_CMAP = "tab10"
_DROPPED_GREY = "#b0b0b0"
_DPI = 100


def mpl_text(text: str) -> str:
    """Escapes ``$`` so a feature name is never parsed as mathtext (which can raise)."""
    return str(text).replace("$", r"\$")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Figure) -> str:
    """Renders ``fig`` to PNG and returns it as a base64 ``data:`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(index: int, total: int) -> tuple:
    cmap = colormaps[_SELECTED_CMAP if total <= 10 else "tab20"]
    return cmap(index % cmap.N)


def curve_figure(
    names: Sequence[str],
    aucs: Sequence[float],
    log_losses: Sequence[float | None],
    round_points: Sequence[tuple[int, float, str]] = (),
    title: str = "Validation quality as features join",
) -> str:
    """AUC (and log loss, right axis) after each feature joins, x = the features in order.

    Args:
        names: Features in selection order (x axis).
        aucs: Validation AUC with the first j features, j = 1..len(names).
        log_losses: Validation log loss with the first j features (None entries skipped).
        round_points: ``(num_features, auc, label)`` of retrained round ends, drawn as
            squares with a dotted line, so masked and retrained quality can be compared.
        title: Figure title.
    """
    width = max(7.0, min(14.0, 0.55 * len(names) + 4.0))
    fig = _new_figure(width, 4.6)
    ax = fig.add_subplot()
    positions = list(range(1, len(names) + 1))
    ax.plot(positions, aucs, "o-", color="#1f77b4", linewidth=2, label="validation AUC")
    for x, previous, y in zip(positions[1:], aucs[:-1], aucs[1:]):
        if _finite(previous) and _finite(y):
            ax.annotate(
                f"{y - previous:+.3f}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize="x-small",
                color="#1f77b4",
            )
    for count, auc, label in round_points:
        ax.plot([count], [auc], "s", color="#2ca02c", ms=7, label=None)
        if count >= len(names):
            continue  # the last round ends at the plot's edge: no separator needed
        ax.axvline(count + 0.5, color="black", linestyle=":", linewidth=0.9, alpha=0.6)
        ax.annotate(
            label,
            (count + 0.5, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="right",
            fontsize="x-small",
        )
    if round_points:
        ax.plot([], [], "s", color="#2ca02c", label="round end, retrained")
    ax.set_xticks(positions)
    ax.set_xticklabels(
        [f"{i}. {mpl_text(n)}" for i, n in enumerate(names, 1)], rotation=35, ha="right"
    )
    ax.set_xlim(0.5, len(names) + 0.5)
    ax.set_ylabel("validation AUC")
    ax.margins(y=0.15)
    ax.grid(alpha=0.3)
    losses = [(x, v) for x, v in zip(positions, log_losses) if _finite(v)]
    handles, labels = ax.get_legend_handles_labels()
    if losses:
        right = ax.twinx()
        right.plot(
            [x for x, _ in losses],
            [v for _, v in losses],
            "^--",
            color="#ff7f0e",
            linewidth=1.2,
            label="validation log loss",
        )
        right.set_ylabel("validation log loss")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # Outside the axes: the rising AUC and falling log loss cross every inside corner.
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.12, 1.0), fontsize="small")
    ax.set_title(title)
    return to_data_uri(fig)


def trajectory_figure(
    steps: Sequence[int],
    weights: dict[str, Sequence[float]],
    selected: Sequence[str],
    selection_steps: dict[str, int],
    round_steps: Sequence[int],
) -> str:
    """One line per candidate over training steps; selected ones coloured and labelled."""
    fig = _new_figure(9, 4.8)
    ax = fig.add_subplot()
    dropped_labelled = False
    for name, values in weights.items():
        if name in selected:
            continue
        ax.plot(
            steps,
            values,
            color=_DROPPED_GREY,
            linewidth=0.7,
            label=None if dropped_labelled else "dropped candidates",
        )
        dropped_labelled = True
    for index, name in enumerate(selected):
        if name not in weights:
            continue
        colour = _colour(index, len(selected))
        ax.plot(steps, weights[name], color=colour, linewidth=1.8, label=mpl_text(name))
        if name in selection_steps:
            step = selection_steps[name]
            ax.plot([step], [weights[name][list(steps).index(step)]], "o", color=colour, ms=6)
    for number, step in enumerate(round_steps):
        ax.axvline(step, color="black", linestyle=":", linewidth=0.9, alpha=0.6)
        ax.annotate(
            f"end of round {number + 1}",
            (step, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="right",
            fontsize="x-small",
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("feature gate (attention weight)")
    ax.set_title("Attention weights over training (dots: first step recorded as selected)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return to_data_uri(fig)


def frontier_figure(
    xs: Sequence[float],
    aucs: Sequence[float],
    point_labels: Sequence[str],
    xlabel: str,
    budget_x: float | None,
    budget_label: str,
    predicted_xs: Sequence[float | None] | None = None,
) -> str:
    """Validation AUC against cost across rounds, with an optional budget line."""
    fig = _new_figure(8, 4.5)
    ax = fig.add_subplot()
    ax.plot(xs, aucs, "o-", color="#1f77b4", label="measured")
    for x, y, text in zip(xs, aucs, point_labels):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize="small")
    if predicted_xs is not None:
        pairs = [(p, a) for p, a in zip(predicted_xs, aucs) if _finite(p)]
        if pairs:
            ax.plot(
                [p for p, _ in pairs],
                [a for _, a in pairs],
                "o",
                mfc="none",
                color="#2ca02c",
                label="cost-model prediction",
            )
    if budget_x is not None:
        ax.axvline(budget_x, color="#d62728", linestyle="--", label=budget_label)
    ax.margins(x=0.12, y=0.1)  # room for the point labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation AUC")
    ax.set_title("Quality versus cost across rounds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return to_data_uri(fig)


def widths_figure(
    names: Sequence[str],
    chosen: Sequence[int],
    full: Sequence[int],
    heuristic: Sequence[float] | None,
) -> str:
    """Chosen versus full width per kept feature, with the 6·V^0.25 rule as markers."""
    height = max(2.5, 0.45 * len(names) + 1.2)
    fig = _new_figure(8, height)
    ax = fig.add_subplot()
    positions = list(range(len(names)))
    ax.barh(positions, full, 0.7, color="#dddddd", edgecolor="#999999", label="full width")
    ax.barh(positions, chosen, 0.4, color="#1f77b4", label="chosen width")
    if heuristic is not None:
        ax.plot(heuristic, positions, "D", color="#d62728", label="6·cardinality^0.25")
    ax.set_yticks(positions)
    ax.set_yticklabels([mpl_text(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("embedding width (columns)")
    ax.set_title("Embedding widths of kept features")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return to_data_uri(fig)


def ensemble_matrix_figure(
    run_labels: Sequence[str], features: Sequence[str], ranks: Sequence[Sequence[int | None]]
) -> str:
    """Run × feature matrix: filled where a run kept the feature, annotated with its rank."""
    width = max(5.0, 0.5 * len(features) + 2.5)
    height = max(2.5, 0.4 * len(run_labels) + 1.8)
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    grid = [[0.0 if r is None else 1.0 for r in row] for row in ranks]
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1.6, aspect="auto")
    for i, row in enumerate(ranks):
        for j, rank in enumerate(row):
            if rank is not None:
                ax.text(j, i, str(rank), ha="center", va="center", fontsize="small")
    ax.set_xticks([j - 0.5 for j in range(1, len(features))], minor=True)
    ax.set_yticks([i - 0.5 for i in range(1, len(run_labels))], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(len(features)))
    ax.set_xticklabels([mpl_text(f) for f in features], rotation=60, ha="right")
    ax.set_yticks(range(len(run_labels)))
    ax.set_yticklabels([mpl_text(r) for r in run_labels])
    ax.set_title("Selections per run (number: selection rank)")
    return to_data_uri(fig)


def jaccard_figure(
    run_labels: Sequence[str], matrix: Sequence[Sequence[float]], mean: float
) -> str:
    """Pairwise Jaccard similarity of the runs' selected sets, mean in the title."""
    size = max(3.5, 0.5 * len(run_labels) + 2.5)
    fig = _new_figure(size + 1, size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            colour = "black" if value > 0.6 else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small", color=colour)
    ax.set_xticks(range(len(run_labels)))
    ax.set_xticklabels([mpl_text(r) for r in run_labels], rotation=45, ha="right")
    ax.set_yticks(range(len(run_labels)))
    ax.set_yticklabels([mpl_text(r) for r in run_labels])
    ax.set_title(f"Selection stability: mean pairwise Jaccard {mean:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return to_data_uri(fig)
