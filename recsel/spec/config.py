"""``SelectionConfig``: every knob of a selection run, validated up front."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

COST_RULES = ("ratio", "weight")


@dataclasses.dataclass(frozen=True)
class SelectionConfig:
    """Settings of ``recsel.select``.

    Args:
        num_features: Features to keep. Mutually exclusive with ``feature_fraction``.
        feature_fraction: Share of the candidates to keep (rounded, at least 1).
        dim_fraction: Without a budget, the share of a kept feature's chunks that
            chunk-level attention selects (before rounding and clipping); 1 keeps every
            chunk, with none judged by its held-out value or energy.
        chunk_size: Embedding columns per chunk candidate.
        dim_multiple: Widths are rounded up to a multiple of this (8 for TPU tiling).
        min_dim: Smallest width of a kept feature.
        max_dim: Largest width of a kept feature (None: its full width).
        batch_size: Largest training batch. When the rows are too few for every selection
            event to get its steps in one pass at this size, the schedule lowers it (see
            ``recsel.selection.schedule``) and warns, rather than repeat examples.
        epochs: Passes over the training rows across the whole run. Keep it about 1:
            when examples repeat, ID-like features win by memorisation. Above 1 (or with
            ``train_steps``) the schedule takes it as given and adapts nothing.
        train_steps: Training steps of the whole run; overrides ``epochs`` when given.
        learning_rate: Adam learning rate.
        warmup_fraction: Leading share of the first round with all gates at 1.
        chunk_phase_fraction: Trailing share of each round spent choosing widths.
        chunk_significance: A selected chunk beyond a feature's most valuable one is kept
            only if replacing its columns by their mean raises the validation log loss
            by more than this many standard errors (``recsel.selection.width_value``):
            widths must earn their keep on held-out rows (0: keep those that help at all).
            Widths-only runs only, whose chunks are rotated to principal axes; feature
            selection keeps chunks holding 0.3% of the first-layer energy
            (``recsel.selection.widths.ENERGY_TOLERANCE``).
        l2: Penalty on looked-up embedding rows; keeps attention identifiable.
        logit_scale: Attention logit multiplier. With Adam a logit moves about one learning
            rate per step, so over ~10-step selection phases the paper's scale (1) leaves
            weights near uniform and copies can win by noise; 10 separates them (see
            BENCHMARKS.md, planted recovery).
        hidden_units: The selection tower's hidden widths (ignored with ``tower``).
        tower: A custom selection tower instead of the ReLU one: a factory returning a
            ``tf_keras`` layer from ``[batch, width]`` to ``[batch, 1]`` logits, or a spec
            string ``"file.py:function"`` / ``"package.module:function"`` naming one (see
            ``recsel.model.tower``). Use the head of the ranker you will serve.
        features_per_round: Features selected per round when rounds are used (a budget).
            Default: one a round (up to 16 rounds), so each round's new feature gets its
            own masked validation check before the next round starts.
        latency_budget_ms: Serving latency budget (p50, at ``serving_batch_size``).
        latency_budget_fraction: Latency budget as a share of the full model's p50,
            measured on this machine before selection (e.g. 0.5: at most half the
            latency of serving every candidate at full width). A portable alternative to
            ``latency_budget_ms``; give one or the other.
        memory_budget_bytes: Embedding-table memory budget.
        serving_batch_size: Batch size at which serving latency is measured.
        cost_rule: ``weight`` (default: attention weight among the candidates that fit the
            remaining budget, so the order does not depend on machine speed) or ``ratio``
            (weight per unit of measured marginal cost; on the demo data it kept a copy
            and lost an informative group, see issue 14).
        plateau_tolerance: Under a budget, a round's new features must add at least this
            validation AUC when masked off the trained model. Late useful features add
            little (Adult: 0.0005-0.001), noise and ID-like columns add about nothing
            (-0.0001 to 0.0004 on adversarial data).
        plateau_patience: Under a budget, stop after this many rounds in a row fail
            ``plateau_tolerance``; the result is the last in-budget round that passed (a
            feature that has just joined may not be used yet, so one failure is no proof).
        finetune_steps: Steps at the end of each round that train the model with hard
            gates (unselected features and chunks off) before the round is evaluated (0:
            evaluate as pruned). Pruning removes the pending candidates' softmax share,
            which the tower had learnt to expect, so an un-tuned pruned model is
            miscalibrated. The steps reuse the compiled training step, and the pruned
            copy then predicts exactly as the tuned model.
        seed: Seed of initialisation, shuffling and TensorFlow ops.
        log_every: Record the attention trajectory every this many steps.
    """

    num_features: int | None = None
    feature_fraction: float | None = None
    dim_fraction: float = 0.5
    chunk_size: int = 8
    dim_multiple: int = 8
    min_dim: int = 8
    max_dim: int | None = None
    batch_size: int = 256
    epochs: float = 1.0
    train_steps: int | None = None
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.1
    chunk_phase_fraction: float = 0.3
    chunk_significance: float = 2.0
    l2: float = 1e-4
    logit_scale: float = 10.0
    hidden_units: tuple[int, ...] = (64, 32)
    tower: str | Callable | None = None
    features_per_round: int | None = None
    latency_budget_ms: float | None = None
    latency_budget_fraction: float | None = None
    memory_budget_bytes: float | None = None
    serving_batch_size: int = 512
    cost_rule: str = "weight"
    plateau_tolerance: float = 0.0005
    plateau_patience: int = 2
    finetune_steps: int = 50
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.num_features is not None and self.feature_fraction is not None:
            raise ValueError("Give num_features or feature_fraction, not both.")
        if self.num_features is not None and self.num_features < 1:
            raise ValueError(f"num_features must be at least 1, got {self.num_features}.")
        if self.feature_fraction is not None and not 0 < self.feature_fraction <= 1:
            raise ValueError(f"feature_fraction must be in (0, 1], got {self.feature_fraction}.")
        for name in ("latency_budget_ms", "memory_budget_bytes"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name} must be a positive number, got {value}.")
        if self.latency_budget_fraction is not None:
            if self.latency_budget_ms is not None:
                raise ValueError("Give latency_budget_ms or latency_budget_fraction, not both.")
            if not 0 < self.latency_budget_fraction <= 1:
                raise ValueError(
                    "latency_budget_fraction is a share of the full model's latency and must be "
                    f"in (0, 1], got {self.latency_budget_fraction}."
                )
        _check_positive(self, ("chunk_size", "dim_multiple", "min_dim"))
        if self.dim_multiple % self.chunk_size and self.chunk_size % self.dim_multiple:
            raise ValueError(
                f"chunk_size ({self.chunk_size}) and dim_multiple ({self.dim_multiple}) must divide "
                "one another, so every rounded width is a whole number of chunks."
            )
        if self.max_dim is not None and self.max_dim < self.min_dim:
            raise ValueError(f"max_dim ({self.max_dim}) is below min_dim ({self.min_dim}).")
        if not self.chunk_significance >= 0:
            raise ValueError(f"chunk_significance must be >= 0, got {self.chunk_significance}.")
        if not 0 < self.dim_fraction <= 1:
            raise ValueError(f"dim_fraction must be in (0, 1], got {self.dim_fraction}.")
        _check_positive(self, ("epochs", "batch_size", "learning_rate"))
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"train_steps must be at least 1, got {self.train_steps}.")
        if self.plateau_patience < 1:
            raise ValueError(f"plateau_patience must be at least 1, got {self.plateau_patience}.")
        if self.cost_rule not in COST_RULES:
            raise ValueError(f"cost_rule must be one of {COST_RULES}, got {self.cost_rule!r}.")
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))
        if self.tower is not None and not (callable(self.tower) or isinstance(self.tower, str)):
            raise ValueError(
                f"tower must be a factory function or a 'file.py:function' spec, got {self.tower!r}."
            )

    def planned_steps(self, num_rows: int) -> int:
        """Training steps of the run on ``num_rows`` training rows."""
        if self.train_steps is not None:
            return self.train_steps
        return max(1, math.ceil(num_rows * self.epochs / self.batch_size))

    @property
    def has_budget(self) -> bool:
        return self.has_latency_budget or self.memory_budget_bytes is not None

    @property
    def has_latency_budget(self) -> bool:
        return self.latency_budget_ms is not None or self.latency_budget_fraction is not None

    def resolve_num_features(self, num_candidates: int) -> int | None:
        """Features to keep, checked against the number of candidates (None: budget decides)."""
        if self.num_features is not None:
            k = self.num_features
        elif self.feature_fraction is not None:
            k = max(1, round(self.feature_fraction * num_candidates))
        elif self.has_budget:
            return None
        else:
            k = max(1, round(0.25 * num_candidates))
        if k > num_candidates:
            raise ValueError(
                f"Cannot keep {k} features: there are only {num_candidates} candidates. "
                f"Ask for at most {num_candidates}."
            )
        return k

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hidden_units"] = list(self.hidden_units)
        out["tower"] = tower_name(self.tower)  # a callable is recorded by its import name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionConfig:
        return cls(**data)


def tower_name(tower: str | Callable | None) -> str | None:
    """A readable, JSON-able name: the spec string, or ``module:qualname`` of a callable."""
    if tower is None or isinstance(tower, str):
        return tower
    module = getattr(tower, "__module__", None) or "?"
    return f"{module}:{getattr(tower, '__qualname__', repr(tower))}"


def _check_positive(config: SelectionConfig, names: tuple[str, ...]) -> None:
    """Names the first of ``names`` that is not positive, with its value."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}.")
