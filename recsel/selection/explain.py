"""What the report explains: the validation curve as features join, and why each was dropped.

Both are computed once, in ``select()``, on a capped validation sample, and stored in
``selection.json`` (``feature_curve``, ``dropped_reasons``), so the report only renders.

- ``feature_curve``: the final pruned model evaluated with only the first ``j`` selected
  features kept (the later ones' embedding columns hard-masked to zero, as their gates
  would be), for ``j = 1..k``. No retraining: it shows how much each feature adds to the
  model that was chosen, in selection order, at the cost of k tower passes.
- ``dropped_reasons``: per dropped candidate, the first reason that applies:
  ``over_budget`` (selected only in a round past the budget, or in a round over it that
  was discarded, or, under a memory budget, its table at its least width does not fit
  beside the kept ones), ``no_value`` (it joined a budget round but masking it off the
  trained model cost less than ``plateau_tolerance`` AUC, so it left the selection; or it
  joined only after the final round, in rounds that fit the budget but added too little),
  ``copy`` (a kept feature carries the same information on the sample) or
  ``low_attention`` (the algorithm preferred others); in an ensemble's consensus,
  ``consensus`` (too few runs kept it).
  The schema and the report also know ``frequency`` (no value passed a vocabulary
  frequency threshold, all values OOV), but nothing emits it yet: ``FeatureSpec`` has no
  frequency threshold and rejects an empty vocabulary.

Example:
    >>> curve = prefix_curve(pruned, kept, result.selected, valid, "clicked")
    >>> reasons = dropped_reasons(result, features, valid)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from recsel.selection._redundancy import REDUNDANCY_THRESHOLD, CopyFinder, redundancy
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet
from recsel.spec.result import latency_limit_ms
from recsel.spec.widths import embedding_bytes, target_width

SAMPLE_ROWS = 5000  # enough for AUC to 2-3 decimals; k tower passes over it stay cheap


def validation_sample(
    valid, seed: int = 0, rows: int = SAMPLE_ROWS, head: Callable[[int], pd.DataFrame] | None = None
) -> pd.DataFrame:
    """At most ``rows`` rows of ``valid``, drawn with ``seed`` (all of them if fewer).

    A stream (``recsel.inputs`` source) gives its first ``rows`` rows instead: drawing
    at random would mean reading all of it. ``head(rows)``, when given, reads them
    (``SelectionTrainer.valid_head``, which the serving sample shares).
    """
    if not isinstance(valid, pd.DataFrame):
        return head(rows) if head is not None else valid.sample_frame(rows)
    return valid if len(valid) <= rows else valid.sample(rows, random_state=seed)


def _head(model, x):
    """The ranker's tower on an embedding matrix (``recsel.model.ranker.Ranker`` layout)."""
    if model.custom_tower is not None:
        return model.custom_tower(x, training=False)
    for layer in model.tower:
        x = layer(x)
    return model.logit(x)


def prefix_curve(
    model, kept: FeatureSet, order: list[str], sample: pd.DataFrame, label: str
) -> list[dict[str, Any]]:
    """Validation AUC and log loss with the first j of ``order`` kept, j = 1..len(order).

    Args:
        model: The pruned ``Ranker`` whose embedding reads ``kept``.
        kept: The kept features at their chosen widths (the pruned layer's spec order).
        order: Kept feature names in selection order.
        sample: Validation rows (see ``validation_sample``).
        label: Label column.

    Returns:
        ``[{"feature", "auc", "log_loss"}, ...]`` in ``order``; empty if the sample has a
        single label class (AUC is undefined).
    """
    from recsel.inputs.frame_dataset import numpy_blocks

    labels = sample[label].to_numpy()
    if len(np.unique(labels)) < 2 or not order:
        return []
    # Numpy blocks, not a tf.data pipeline: building and running one cost 0.06-0.1 s of
    # the curve's ~0.2 s. Rows embed independently, so the block size changes no value.
    embedded = np.concatenate([model.embedding(b).numpy() for b in numpy_blocks(sample, kept)])
    columns, offset = {}, 0
    for spec in kept:  # PrunedEmbedding concatenates in spec order
        columns[spec.name] = np.arange(offset, offset + spec.embedding_dim)
        offset += spec.embedding_dim
    placed = getattr(model.embedding, "columns", None)
    if placed is not None:  # ExpandColumns (a custom tower): pruned column i sits at placed[i]
        placed = np.asarray(placed)
        columns = {name: placed[cols] for name, cols in columns.items()}
    mask = np.zeros(embedded.shape[1], np.float32)
    curve = []
    for name in order:
        mask[columns[name]] = 1.0
        logits = _head(model, embedded * mask).numpy()[:, 0]
        probability = np.clip(1.0 / (1.0 + np.exp(-logits)), 1e-7, 1 - 1e-7)
        curve.append(
            {
                "feature": name,
                "auc": round(float(roc_auc_score(labels, probability)), 6),
                "log_loss": round(float(log_loss(labels, probability)), 6),
            }
        )
    return curve


def copy_score(a: pd.Series, b: pd.Series) -> float | None:
    """How much ``a`` and ``b`` carry the same information, in [0, 1]; None if unjudgeable.

    The budget's copy guard's definition (``recsel.selection._redundancy.redundancy``:
    |correlation| for numeric pairs, else the smaller Goodman-Kruskal lambda), so the
    report calls a dropped feature a copy exactly when the guard would have skipped it.
    ID-like columns get None: any two unique-per-row columns would "predict" each other.

    Example:
        >>> copy_score(pd.Series(["a", "b"] * 50), pd.Series(["x", "y"] * 50))
        1.0
    """
    return redundancy(a, b)


def _budget_verdict(result, record) -> str | None:
    """How round ``record`` measured against the budget, when it went over it, e.g.
    "model measured p50 0.521 ms, over the limit of 0.497 ms (50% of the full model's
    0.993 ms, timed alongside)"; "" when it fit; None when the result holds no budget."""
    budget = getattr(result, "budget", None) or {}
    fraction, memory = budget.get("latency_fraction"), budget.get("memory_bytes")
    limit = latency_limit_ms(budget.get("latency_ms"), fraction, record.full_model_latency_ms)
    if limit is None and memory is None:
        return None
    over = []
    p50 = record.latency_ms_p50
    if limit is not None and p50 is not None and p50 > limit:
        alongside = (
            f" ({fraction:.0%} of the full model's {record.full_model_latency_ms:.3f} ms, "
            "timed alongside)"
            if fraction is not None and record.full_model_latency_ms
            else ""
        )
        over.append(f"model measured p50 {p50:.3f} ms, over the limit of {limit:.3f} ms{alongside}")
    if memory is not None and record.embedding_bytes > memory:
        over.append(
            f"tables take {record.embedding_bytes:,} bytes, over the {int(memory):,}-byte budget"
        )
    return "; ".join(over)


def _went_over(verdict: str | None) -> str:
    """``_budget_verdict``'s words after "selected in round N," for a round over budget."""
    return f"whose {verdict}" if verdict else "which went over the budget"


def _past_final(result, record) -> dict[str, Any]:
    """The reason for a feature first selected in round ``record``, after the final one."""
    number = record.index + 1
    verdict = _budget_verdict(result, record)
    if verdict is None or verdict:
        went = _went_over(verdict)
        return {
            "reason": "over_budget",
            "round": number,
            "detail": f"selected in round {number}, {went}",
        }
    final = result.final_round % len(result.rounds) + 1
    tolerance = (getattr(result, "config", None) or {}).get("plateau_tolerance")
    least = f"at least {tolerance:g} " if tolerance is not None else "enough "
    detail = (
        f"selected in round {number}, which fit the budget; round {final} was the last whose "
        f"new features added {least}validation AUC, so the result is its set"
    )
    return {"reason": "no_value", "round": number, "detail": detail}


def _too_big(result, features: FeatureSet | None) -> dict[str, str]:
    """Dropped features whose table, even at its least width, is larger than what the kept
    tables leave of a memory budget -> why (they could never join the result)."""
    memory = (getattr(result, "budget", None) or {}).get("memory_bytes")
    if memory is None or features is None or not result.rounds:
        return {}
    config = SelectionConfig.from_dict(getattr(result, "config", None) or {})
    left = int(memory) - result.rounds[result.final_round].embedding_bytes
    out = {}
    for name in result.dropped:
        if name not in features.names:
            continue
        spec = features[name]
        width = target_width(0, spec.embedding_dim, config)
        size = embedding_bytes(features.subset([name], {name: width}))
        if size > left:
            out[name] = (
                f"its table takes at least {size:,} bytes ({spec.vocabulary_size:,} rows x "
                f"width {width} x 4 bytes), more than the {max(left, 0):,} bytes the kept "
                "tables leave of the memory budget"
            )
    return out


def _past_final_rounds(result) -> dict[str, Any]:
    """Dropped features selected in a round after the final one -> that round's record."""
    out: dict[str, Any] = {}
    kept = set(result.selected)
    if not result.rounds:
        return out
    final = result.final_round % len(result.rounds)  # -1 means the last round
    for record in result.rounds[final + 1 :]:
        for name in record.selected:
            if name not in kept:
                out.setdefault(name, record)
    return out


def _left_selection(result) -> dict[str, dict[str, Any]]:
    """Dropped features that a budget round took out of the selection (``rejected`` in
    ``result.cost_model``) -> their reason: the round they joined went over the budget
    (``discarded_rounds``), or they failed its masked value check."""
    budget = getattr(result, "cost_model", None) or {}
    rejected, discarded = set(budget.get("rejected", [])), set(budget.get("discarded_rounds", []))
    gains = budget.get("round_marginal_auc", {})
    out: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for record in result.rounds:
        for name in record.selected:
            if name in seen or name not in rejected:
                continue
            seen.add(name)
            number = record.index + 1
            if record.index in discarded:
                went = _went_over(_budget_verdict(result, record))
                detail = f"selected in round {number}, {went}; it left"
                out[name] = {"reason": "over_budget", "round": number, "detail": detail}
            else:
                gain = gains.get(str(record.index))
                added = "" if gain is None else f" ({gain:+.4f} AUC)"
                detail = (
                    f"joined in round {number} but added too little validation AUC when "
                    f"masked off{added}; it left the selection"
                )
                out[name] = {"reason": "no_value", "round": number, "detail": detail}
        seen.update(record.selected)
    for name, (gain, se) in budget.get("merged_round_gains", {}).items():
        if name in rejected and name not in out:  # left before its round's record was made
            detail = (
                f"selected in round 1 (one merged round) but added too little validation AUC "
                f"when masked off ({gain:+.4f} +- {se:.4f} AUC; judged together, a gain must "
                "clear the tolerance by one error), or did not fit; it left before fine-tuning"
            )
            out[name] = {"reason": "no_value", "round": 1, "detail": detail}
    return out


def dropped_reasons(
    result,
    features: FeatureSet | None = None,
    sample: pd.DataFrame | None = None,
    copies: CopyFinder | None = None,
) -> dict[str, dict[str, Any]]:
    """Why each dropped candidate of ``result`` was dropped (see the module docstring).

    Args:
        result: The ``SelectionResult`` (its ``rounds`` and ``final_round`` are read).
        features: The candidate specs: under a memory budget, a feature whose table
            cannot fit beside the kept ones is ``over_budget`` (None skips that check).
        sample: Validation rows for the copy check; None skips it.
        copies: The run's ``CopyFinder`` on ``sample`` (the copy guard's), whose prepared
            columns and pair scores are reused; default: a new one.

    Returns:
        ``{feature: {"reason": ..., "detail": str, ...}}`` for every dropped candidate.
    """
    past_final = _past_final_rounds(result)
    left = _left_selection(result)
    too_big = _too_big(result, features)
    out: dict[str, dict[str, Any]] = {}
    if copies is None and sample is not None:
        copies = CopyFinder(sample)
    ensemble = (result.provenance or {}).get("ensemble")
    for name in result.dropped:
        if ensemble:  # a consensus: the runs' votes decided, not one run's attention
            out[name] = {
                "reason": "consensus",
                "detail": f"not kept by the consensus of {ensemble.get('num_runs', 'the')} runs",
            }
            continue
        if name in left:
            out[name] = left[name]
            continue
        if name in past_final:
            out[name] = _past_final(result, past_final[name])
            continue
        if name in too_big:
            out[name] = {"reason": "over_budget", "detail": too_big[name]}
            continue
        copy = _best_copy(name, result.selected, copies)
        if copy is not None:
            of, score = copy
            out[name] = {
                "reason": "copy",
                "of": of,
                "score": round(score, 4),
                "detail": f"carries the same information as kept {of} (score {score:.2f})",
            }
            continue
        out[name] = {
            "reason": "low_attention",
            "detail": "never the highest-weighted candidate at a selection step",
        }
    return out


def _best_copy(name: str, kept: list[str], copies: CopyFinder | None) -> tuple[str, float] | None:
    if copies is None or name not in copies.sample.columns:
        return None
    best = None
    for other in kept:
        if other not in copies.sample.columns:
            continue
        score = copies.score(name, other)
        if (
            score is not None
            and score >= REDUNDANCY_THRESHOLD
            and (best is None or score > best[1])
        ):
            best = (other, score)
    return best
