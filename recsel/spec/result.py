"""``SelectionResult``: the plain, serialisable outcome of one selection run."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from recsel.atomic import atomic_write_text, read_text


def latency_limit_ms(
    budget_ms: float | None, fraction: float | None, full_model_ms: float | None
) -> float | None:
    """The latency limit a round is judged by: ``fraction`` of the full model's p50 timed
    beside it under a relative budget, else the budget in ms.

    Example:
        >>> latency_limit_ms(4.0, 0.5, 7.0)
        3.5
    """
    if fraction is not None and full_model_ms:
        return fraction * full_model_ms
    return budget_ms


@dataclasses.dataclass
class RoundRecord:
    """What one selection round chose and what the pruned model measured afterwards.

    Args:
        index: Round number, from 0.
        selected: Features selected so far (cumulative, in order).
        dims: Embedding width per selected feature after this round.
        auc: Validation AUC of the pruned model after this round.
        log_loss: Validation log loss of the pruned model after this round.
        latency_ms_p50: Measured p50 serving latency of the pruned model, if measured.
        latency_ms_p99: Measured p99 serving latency, if measured.
        predicted_latency_ms: The cost model's prediction for this selection, if any.
        full_model_latency_ms: The full model's p50, timed in the same passes as this
            round's (whenever a latency budget is set). Under a relative budget the
            round fits when ``latency_ms_p50 <= latency_fraction * full_model_latency_ms``.
        embedding_bytes: Embedding table bytes of the pruned model.
        steps: Global training step at the end of the round.
    """

    index: int
    selected: list[str]
    dims: dict[str, int]
    auc: float
    log_loss: float
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    predicted_latency_ms: float | None = None
    full_model_latency_ms: float | None = None
    embedding_bytes: int = 0
    steps: int = 0


@dataclasses.dataclass
class SelectionResult:
    """The ordered selection, widths, weights, rounds (the frontier) and provenance.

    Args:
        label: Label column.
        candidates: All candidate feature names, in spec order.
        selected: Selected features, in selection order.
        dims: Chosen embedding width per selected feature.
        full_dims: Full (pre-selection) width per candidate.
        selection_weights: Each selected feature's attention weight just before it was
            selected (its share among the pending candidates).
        final_weights: Feature gate values at the end of training.
        rounds: One record per round: the quality / latency frontier.
        final_round: Index of the round the selection is taken from (the last one that
            fits the budget; later rounds went over it and stay for the frontier).
        metrics: Validation metrics of the final pruned model.
        trajectory: ``{"steps": [...], "weights": {feature: [...]}}`` feature gates over time.
        cost_model: Cost-model coefficients and calibration provenance, if a budget was used.
        budget: The budget that was asked for, if any.
        config: The ``SelectionConfig`` used, as a dict.
        provenance: Seeds, versions, machine, timings.
        feature_curve: Validation AUC and log loss of the final model with only the first
            j selected features kept (the rest hard-masked), j = 1..k:
            ``[{"feature", "auc", "log_loss"}, ...]`` in selection order.
        dropped_reasons: Per dropped candidate, why: ``{"reason": ..., "detail": str}``
            with reason ``over_budget``, ``no_value``, ``copy`` (plus ``of``), ``frequency``,
            ``low_attention`` or ``consensus`` (see ``recsel.selection.explain``).
    """

    label: str
    candidates: list[str]
    selected: list[str]
    dims: dict[str, int]
    full_dims: dict[str, int]
    selection_weights: dict[str, float]
    final_weights: dict[str, float]
    rounds: list[RoundRecord]
    metrics: dict[str, float]
    trajectory: dict[str, Any]
    final_round: int = -1
    cost_model: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    feature_curve: list[dict[str, Any]] | None = None
    dropped_reasons: dict[str, dict[str, Any]] | None = None

    @property
    def dropped(self) -> list[str]:
        return [c for c in self.candidates if c not in self.selected]

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionResult:
        data = {k: v for k, v in data.items() if k != "version"}
        data["rounds"] = [RoundRecord(**r) for r in data.get("rounds", [])]
        return cls(**data)

    def to_json(self, path: str) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def from_json(cls, path: str) -> SelectionResult:
        return cls.from_dict(json.loads(read_text(path)))

    def latency_limit_ms(self, index: int | None = None) -> float | None:
        """The latency budget round ``index`` (default: the final round) was judged by.

        A relative budget applies to the full model timed beside that round, so the
        limit in ms can differ a little from round to round; an absolute one is fixed.
        """
        budget = self.budget or {}
        record = self.rounds[self.final_round if index is None else index] if self.rounds else None
        full_ms = record.full_model_latency_ms if record is not None else None
        return latency_limit_ms(budget.get("latency_ms"), budget.get("latency_fraction"), full_ms)

    def summary(self) -> str:
        """A few human-readable lines: kept features, widths and quality."""
        lines = [f"Selected {len(self.selected)} of {len(self.candidates)} features (in order):"]
        for i, name in enumerate(self.selected, 1):
            lines.append(
                f"  {i:2d}. {name:<24s} dim {self.dims.get(name, 0):>3d}/{self.full_dims.get(name, 0):<3d} "
                f"weight at selection {self.selection_weights.get(name, float('nan')):.3f}"
            )
        m = self.metrics
        if m:
            lines.append(
                f"Validation AUC {m.get('auc', float('nan')):.4f}, log loss {m.get('log_loss', float('nan')):.4f}"
            )
        if self.rounds and self.rounds[self.final_round].latency_ms_p50 is not None:
            r = self.rounds[self.final_round]
            line = f"Measured serving latency p50 {r.latency_ms_p50:.3f} ms, p99 {r.latency_ms_p99:.3f} ms"
            limit = self.latency_limit_ms()
            if limit is not None:
                line += f" (budget {limit:.3f} ms)"
            lines.append(line)
        memory = (self.budget or {}).get("memory_bytes")
        if memory is not None and self.rounds:
            used = self.rounds[self.final_round].embedding_bytes
            lines.append(
                f"Embedding tables {used:,} bytes of the {int(memory):,}-byte budget "
                "(rows x width x 4 bytes)"
            )
        return "\n".join(lines)
