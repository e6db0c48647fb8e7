"""``recsel report OUTPUT_DIR``: the summary of a finished selection and its report's path.

Works on the three layouts recsel writes (see ``recsel.outputs.write.find_selections``): the
CLI's ``--output-dir``, the ensemble job's (plus ``ensemble.json``) and a TFX run's
selector artifact, found below the pipeline's output directory.

Example:
    recsel report runs/tfx_demo
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

ENSEMBLE_FILE = "ensemble.json"  # recsel.beam._ensemble_io.ENSEMBLE_FILE, without Beam

_MAX_NAMES = 8  # names per printed line, so no line grows with the candidate count


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f", … ({len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else "")


def run_report(args: argparse.Namespace) -> int:
    """Prints the newest selection under ``args.output_dir``: summary, drops, report path.

    Args:
        args: Parsed ``recsel report`` arguments (``output_dir``).

    Returns:
        0.

    Raises:
        FileNotFoundError: No ``selection.json`` in or below the directory.
    """
    from recsel.atomic import read_text
    from recsel.outputs.write import REPORT_FILE, SELECTION_FILE, find_selections
    from recsel.selection.explain import dropped_reasons
    from recsel.spec.result import SelectionResult

    found = find_selections(args.output_dir)
    if not found:
        raise FileNotFoundError(
            f"{args.output_dir}: no {SELECTION_FILE} in it or below it; pass the --output-dir "
            "of recsel select, recsel demo or the ensemble job, or a TFX pipeline's output."
        )
    where = found[0]
    result = SelectionResult.from_json(os.path.join(where, SELECTION_FILE))
    print(f"Selection in {where}")
    print(result.summary())
    reasons = result.dropped_reasons or dropped_reasons(result)
    groups: dict[str, list[str]] = {}
    for name in result.dropped:
        why = reasons.get(name, {})
        label = why.get("reason", "low_attention").replace("_", " ")
        if why.get("reason") == "copy":
            name = f"{name} (of {why.get('of')})"
        groups.setdefault(label, []).append(name)
    for label, names in groups.items():
        print(f"Dropped, {label}: {_names(names)}")
    ensemble = os.path.join(where, ENSEMBLE_FILE)
    from recsel.beam import SHORT_RULE  # pure Python: no Beam is loaded

    if _exists(ensemble):
        record = json.loads(read_text(ensemble))
        print(
            f"Ensemble of {len(record['runs'])} runs (consensus: {SHORT_RULE}), "
            f"mean pairwise Jaccard {record['jaccard_mean']:.3f}"
        )
    report = os.path.join(where, REPORT_FILE)
    print(f"Report: {report}" if _exists(report) else f"No {REPORT_FILE} in {where}.")
    if len(found) > 1:
        print(f"({len(found) - 1} older selection(s) under {args.output_dir}, e.g. {found[1]})")
    return 0


def _exists(path: str) -> bool:
    import tensorflow as tf

    return bool(tf.io.gfile.exists(path))
