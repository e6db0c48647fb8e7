"""The optional ``ensemble`` section of ``recsel.outputs.report.page``: stability across seeds.

``ensemble`` is ``{"runs": [{"seed": 0, "selected": [...], "dims": {...}}, ...],
"jaccard_mean": 0.8, "jaccard_pairs": [[0, 1, 0.8], ...], "rule": "..."}`` where the
pair indices refer to positions in ``runs``. Missing pairs / mean are computed from the
runs' selected sets.
"""

from __future__ import annotations

import itertools

from recsel.outputs.report import figures as figs
from recsel.outputs.report.html import esc, fmt, img, note, section, table


def check_ensemble(ensemble: dict) -> list[dict]:
    """Checks the ensemble's shape up front (before any figure is drawn); returns its runs."""
    runs = ensemble.get("runs") if isinstance(ensemble, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ValueError(
            'ensemble must be a dict with a non-empty "runs" list, e.g. '
            '{"runs": [{"seed": 0, "selected": [...], "dims": {...}}, ...]}.'
        )
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("selected"), list):
            raise ValueError(f'ensemble run {i} needs a "selected" list of feature names.')
    for pair in ensemble.get("jaccard_pairs") or []:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 3
        if not ok or not all(isinstance(k, int) and 0 <= k < len(runs) for k in pair[:2]):
            raise ValueError(
                f"ensemble jaccard_pairs entry {pair} must be [i, j, value] with i and j "
                f"indexing runs (0..{len(runs) - 1})."
            )
    return runs


def _jaccard(a: list[str], b: list[str]) -> float:
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


def ensemble_section(candidates: list[str], runs: list[dict], ensemble: dict) -> str:
    """The ``ensemble`` section: run × feature matrix, Jaccard stability, frequencies."""
    labels = [f"seed {r['seed']}" if "seed" in r else f"run {i}" for i, r in enumerate(runs)]
    chosen = {n for r in runs for n in r["selected"]}
    columns = [n for n in candidates if n in chosen] + sorted(chosen - set(candidates))
    ranks = [
        [r["selected"].index(n) + 1 if n in r["selected"] else None for n in columns] for r in runs
    ]
    body = f"<p>{len(runs)} runs.</p>"
    if ensemble.get("rule"):
        body += f"<p>Consensus rule: {esc(ensemble['rule'])}</p>"
    body += img(figs.ensemble_matrix_figure(labels, columns, ranks), "selections per run")
    size = len(runs)
    matrix = [[1.0] * size for _ in range(size)]
    pairs = ensemble.get("jaccard_pairs")
    if pairs is None:
        pairs = [
            [i, j, _jaccard(runs[i]["selected"], runs[j]["selected"])]
            for i, j in itertools.combinations(range(size), 2)
        ]
    for pair in pairs:
        i, j, value = int(pair[0]), int(pair[1]), float(pair[2])
        matrix[i][j] = matrix[j][i] = value
    mean = ensemble.get("jaccard_mean")
    if mean is None:
        mean = sum(p[2] for p in pairs) / len(pairs) if pairs else 1.0
    if size >= 2:
        body += img(figs.jaccard_figure(labels, matrix, float(mean)), "selection stability")
    else:
        body += note("A single run: stability needs at least two runs.")
    body += f"<p>Mean pairwise Jaccard similarity: {fmt(float(mean), '.3f')}</p>"
    counts = {n: sum(1 for r in runs if n in r["selected"]) for n in columns}
    rows = [[n, c, f"{c / size:.0%}"] for n, c in counts.items()]
    body += table(["feature", "runs selecting it", "share"], rows, {1, 2})
    run_rows = [
        [lab, ", ".join(f"{n} ({r.get('dims', {}).get(n, '—')})" for n in r["selected"])]
        for lab, r in zip(labels, runs)
    ]
    body += table(["run", "selected (width)"], run_rows)
    return section("ensemble", "Ensemble stability", body)
