"""Measured serving cost: time real SavedModels and fit a per-feature latency model.

A latency budget ("score 512 examples in 3 ms") is only meaningful on the machine that
serves, so nothing here is a guessed constant. ``calibrate`` exports a dozen pruned
rankers over random feature subsets and widths, times their ``serving_default``
signature (tf.Example parsing included; each model's latency is the least p50 of three
interleaved timing passes) and fits, by non-negative least squares, a linear model of
that latency in the kept set's structure:

- ``base_ms``: intercept (signature call, tower after the first layer, sigmoid);
- ``per_feature_ms[<kind>]``: fixed parse + lookup cost of one feature of that kind;
- ``per_value_ms``: each parsed value beyond the first (``max_valency - 1``);
- ``per_lookup_column_ms``: embedding values gathered and pooled per example,
  ``width * max_valency``;
- ``per_dense_input_column_ms``: columns entering the first dense layer, ``width``. It
  covers the concat and the ``width * hidden_units[0]`` multiply-adds, so the model is
  specific to ``hidden_units`` (which is part of the cache key).

Fitted models are cached as JSON per machine, TensorFlow version, batch size, tower and
feature structure.

Example:
    >>> cost = calibrate(features, hidden_units=(64, 32), batch_size=512, sample_frame=train)
    >>> cost.predict_ms(features.subset(["country", "tags"], {"tags": 16}))
    >>> cost.feature_cost_ms(features["country"], width=8)
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from scipy.optimize import nnls

from recsel import contract
from recsel.atomic import atomic_write_text, read_text
from recsel.cost_key import VERSION, cache_key, cache_path, default_cache_dir, machine_info
from recsel.features import KINDS, FeatureSet, FeatureSpec
from recsel.latency import (
    LatencyStats,
    ServingTarget,
    export_for_timing,
    load_serving_target,
    measure_interleaved,
    measure_latency,
    measure_model_latency,
    sample_rows,
)
from recsel.layer import PrunedEmbedding
from recsel.model import Ranker
from recsel.progress import Progress
from recsel.serving import load_serving_fn, serialize_examples
from recsel.spec.widths import embedding_bytes
from recsel.tower import resolve_tower, tower_fingerprint

__all__ = [
    "COEFFICIENTS",
    "CostModel",
    "LatencyStats",
    "ServingTarget",
    "cache_key",
    "cache_path",
    "calibrate",
    "default_cache_dir",
    "load_serving_target",
    "machine_info",
    "measure_interleaved",
    "measure_latency",
    "measure_model_latency",
    "plan_models",
]

COEFFICIENTS = (
    "base_ms",
    *(f"per_feature_ms[{kind}]" for kind in KINDS),
    "per_value_ms",
    "per_lookup_column_ms",
    "per_dense_input_column_ms",
)
# Timing passes over all calibration models in shuffled order: a burst of background
# load then hits one pass of many models, not all timings of one model.
_PASSES = 3
_RIDGE = 1e-4


def _design(kept: FeatureSet) -> np.ndarray:
    """One row of the regression: the structure counts that ``COEFFICIENTS`` multiply."""
    counts = [sum(s.kind == kind for s in kept) for kind in KINDS]
    return np.asarray(
        [
            1.0,
            *counts,
            sum(s.max_valency - 1 for s in kept),
            sum(s.embedding_dim * s.max_valency for s in kept),
            sum(s.embedding_dim for s in kept),
        ],
        np.float64,
    )


@dataclasses.dataclass
class CostModel:
    """Fitted serving latency (p50, ms) of a pruned ranker as a function of its kept set.

    Args:
        coefficients: Non-negative coefficients named as in ``COEFFICIENTS``.
        batch_size: Batch size the latencies were measured at.
        hidden_units: The ranker tower the latencies were measured with.
        provenance: Machine, TensorFlow version, date, calibration size, fit R^2,
            residuals, wall time and cache status.
    """

    coefficients: dict[str, float]
    batch_size: int
    hidden_units: tuple[int, ...]
    provenance: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [n for n in COEFFICIENTS if n not in self.coefficients]
        if missing:
            raise ValueError(f"CostModel: coefficients {missing} are missing.")
        negative = {n: v for n, v in self.coefficients.items() if v < 0}
        if negative:
            raise ValueError(f"CostModel: coefficients must be non-negative, got {negative}.")
        self.hidden_units = tuple(int(u) for u in self.hidden_units)

    def _per_column_ms(self, spec: FeatureSpec) -> float:
        c = self.coefficients
        return c["per_lookup_column_ms"] * spec.max_valency + c["per_dense_input_column_ms"]

    def feature_cost_ms(self, spec: FeatureSpec, width: int) -> float:
        """Marginal latency (ms) of adding ``spec`` at ``width`` columns to a model.

        Its fixed parse + lookup cost (by kind and valency) plus ``width`` times its
        per-column cost (lookup columns and first-dense-layer input columns).

        Args:
            spec: The feature (its kind and ``max_valency`` matter, not its name).
            width: Kept embedding columns, at least 1.

        Example:
            >>> cost.feature_cost_ms(features["tags"], width=16)
        """
        if width < 1:
            raise ValueError(f"feature {spec.name!r}: width must be at least 1, got {width}.")
        c = self.coefficients
        fixed = c[f"per_feature_ms[{spec.kind}]"] + c["per_value_ms"] * (spec.max_valency - 1)
        return float(fixed + width * self._per_column_ms(spec))

    def chunk_cost_ms(self, spec: FeatureSpec, columns: int) -> float:
        """Marginal latency (ms) of widening an already kept ``spec`` by ``columns``.

        Args:
            spec: The kept feature.
            columns: Extra embedding columns, at least 0.

        Example:
            >>> cost.chunk_cost_ms(features["tags"], columns=8)
        """
        if columns < 0:
            raise ValueError(f"feature {spec.name!r}: columns must be >= 0, got {columns}.")
        return float(columns * self._per_column_ms(spec))

    def predict_ms(self, kept: FeatureSet) -> float:
        """Predicted p50 latency (ms) of a ranker over ``kept`` at their widths.

        Args:
            kept: The kept features, each with its kept ``embedding_dim``.

        Example:
            >>> cost.predict_ms(features.subset(["country"], {"country": 8}))
        """
        return float(
            self.coefficients["base_ms"]
            + sum(self.feature_cost_ms(s, s.embedding_dim) for s in kept)
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready coefficients, measurement settings and provenance.

        Example:
            >>> json.dumps(cost.describe())
        """
        return {
            "version": VERSION,
            "coefficients": {n: float(self.coefficients[n]) for n in COEFFICIENTS},
            "batch_size": int(self.batch_size),
            "hidden_units": list(self.hidden_units),
            "provenance": self.provenance,
        }

    def to_json(self, path: str) -> None:
        """Writes ``describe()`` to ``path`` atomically (local or ``gs://``).

        Example:
            >>> cost.to_json("cost.json")
        """
        atomic_write_text(path, json.dumps(self.describe(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "cost model") -> CostModel:
        """Builds a model from ``describe()`` output, validated against the JSON Schema."""
        contract.validate(data, "cost_model.schema.json", source)
        return cls(
            dict(data["coefficients"]),
            data["batch_size"],
            tuple(data["hidden_units"]),
            dict(data["provenance"]),
        )

    @classmethod
    def from_json(cls, path: str) -> CostModel:
        """Reads a model written by ``to_json``.

        Raises:
            ValueError: The file is not JSON or breaks ``cost_model.schema.json`` (the
                message names ``path`` and the field).

        Example:
            >>> cost = CostModel.from_json("cost.json")
        """
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}).") from err
        return cls.from_dict(data, source=path)


def _load_cached(path: str, key: str) -> CostModel | None:
    if not tf.io.gfile.exists(path):
        return None
    try:
        model = CostModel.from_json(path)
        if model.provenance.get("cache_key") != key:
            raise ValueError("its cache_key does not match these arguments")
    except (ValueError, KeyError, TypeError) as err:
        warnings.warn(
            f"{path}: ignoring unusable cost-model cache ({err}); re-measuring and overwriting it.",
            stacklevel=3,
        )
        return None
    model.provenance.update(cached=True, cache_path=path)
    return model


def _widths(spec: FeatureSpec) -> list[int]:
    return list(range(8, spec.embedding_dim + 1, 8)) or [spec.embedding_dim]


def plan_models(features: FeatureSet, num_models: int, seed: int = 0) -> list[FeatureSet]:
    """Kept sets to calibrate on, deterministic given ``seed``.

    One feature at its narrowest, all at full width, all at their narrowest, then random
    subsets (sizes spread over 1..n) with random widths (multiples of 8 up to each
    feature's ``embedding_dim``).

    Args:
        features: Candidate features at full width.
        num_models: How many kept sets.
        seed: Seed of the subsets and widths.

    Example:
        >>> [len(kept) for kept in plan_models(features, 5)]  # [1, 30, 30, 11, 20] for 30 candidates
    """
    rng = np.random.default_rng(seed)
    specs = list(features)
    single = specs[int(rng.integers(len(specs)))]
    narrowest = {s.name: _widths(s)[0] for s in specs}
    plans = [
        features.subset([single.name], narrowest),
        features,
        # Same features as the full model, narrow: the cleanest width contrast.
        features.subset(features.names, narrowest),
    ]
    for size in np.linspace(1, len(specs), max(num_models - 1, 2))[1:-1]:
        chosen = rng.choice(len(specs), size=int(round(size)), replace=False)
        dims = {specs[i].name: int(rng.choice(_widths(specs[i]))) for i in sorted(chosen)}
        plans.append(features.subset(list(dims), dims))
    return plans[:num_models]


def _fit(design: np.ndarray, p50: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Non-negative least squares on unit-norm columns, with a whisper of ridge.

    Candidates can make columns collinear (e.g. every list feature with the same
    ``max_valency``), which breaks scipy's active-set solve; the ridge (shrinking by
    ~1e-4 relative) makes such columns share their effect instead.
    """
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    k = design.shape[1]
    augmented = np.vstack([design / scale, np.sqrt(_RIDGE) * np.eye(k)])
    coef = nnls(augmented, np.concatenate([p50, np.zeros(k)]))[0] / scale
    residual = p50 - design @ coef
    total = float(((p50 - p50.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else None
    return coef, {
        "r2": r2,
        "design_rank": int(np.linalg.matrix_rank(design)),
        "residual_ms_p50": float(np.percentile(np.abs(residual), 50)),
        "residual_ms_p95": float(np.percentile(np.abs(residual), 95)),
    }


def calibrate(
    features: FeatureSet,
    hidden_units: tuple[int, ...],
    batch_size: int,
    sample_frame: pd.DataFrame,
    cache_dir: str | None = None,
    seed: int = 0,
    num_models: int = 12,
    repeats: int = 20,
    progress: bool = False,
    tower: str | Callable | None = None,
) -> CostModel:
    """Measures pruned rankers on this machine and fits a ``CostModel`` (or loads it).

    Args:
        features: Candidate features at full width.
        hidden_units: The serving ranker's tower.
        batch_size: Serving batch size the budget refers to.
        sample_frame: Rows with every candidate column (the first ``batch_size`` are used).
        cache_dir: Cache folder (default ``default_cache_dir()``).
        seed: Seed of the calibration subsets and ranker weights.
        num_models: Calibration models, at least 3 (7 coefficients are fitted).
        repeats: Timed calls per model, split over three interleaved passes (at least
            five calls each); the fit uses the least of the passes' p50s.
        progress: Show a progress bar.
        tower: A custom serving tower (``recsel.tower``) instead of ``hidden_units``.

    Returns:
        The fitted model; ``provenance["cached"]`` says whether it came from the cache.

    Example:
        >>> cost = calibrate(features, (64, 32), 512, train.sample(512, random_state=0))
        >>> cost.describe()["provenance"]["r2"]
    """
    if batch_size < 1 or num_models < 3 or repeats < 1:
        raise ValueError(
            f"Need batch_size >= 1, num_models >= 3 and repeats >= 1; got {batch_size}, "
            f"{num_models}, {repeats}."
        )
    if any(int(u) < 1 for u in hidden_units):
        raise ValueError(f"hidden_units must be positive, got {tuple(hidden_units)}.")
    rows = sample_rows(sample_frame, features, batch_size)
    calibration = {"seed": seed, "num_models": num_models, "repeats": repeats}
    tower = resolve_tower(tower)
    if tower is not None:
        calibration["tower"] = tower_fingerprint(tower, sum(f.embedding_dim for f in features))
    key = cache_key(features, hidden_units, batch_size, **calibration)
    path = cache_path(features, hidden_units, batch_size, cache_dir, **calibration)
    cached = _load_cached(path, key)
    if cached is not None:
        return cached

    started = time.perf_counter()
    plans = plan_models(features, num_models, seed)
    served = []
    with tempfile.TemporaryDirectory(prefix="recsel-cost-") as tmp:
        bar = Progress(len(plans), "cost calibration: export", unit="model", enabled=progress)
        for i, kept in enumerate(plans):
            ranker = Ranker(PrunedEmbedding(kept, seed=seed), hidden_units, seed=seed, tower=tower)
            serve = load_serving_fn(
                export_for_timing(ranker, kept, os.path.join(tmp, f"model_{i}"))
            )
            served.append(ServingTarget(serve, serialize_examples(rows, kept)))
            bar.update()
        bar.close()
        # Passes in shuffled order spread drifting background load over all models, and
        # each model's estimate is its least per-pass median.
        stats = measure_interleaved(
            served,
            batch_size,
            passes=_PASSES,
            calls_per_pass=max(5, -(-repeats // _PASSES)),
            seed=seed,
        )
    measured = np.array([s.p50_ms for s in stats])
    design = np.stack([_design(kept) for kept in plans])
    coef, fit = _fit(design, measured)
    provenance = {
        "machine": machine_info(),
        "tensorflow_version": tf.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "num_models": len(plans),
        "repeats": repeats,
        "passes": _PASSES,
        "seed": seed,
        **fit,
        "points": [
            {
                "features": len(kept),
                "columns": sum(s.embedding_dim for s in kept),
                "embedding_bytes": embedding_bytes(kept),
                "measured_p50_ms": round(float(m), 4),
                "predicted_ms": round(float(d @ coef), 4),
            }
            for kept, m, d in zip(plans, measured, design)
        ],
        "wall_time_s": round(time.perf_counter() - started, 2),
        "cache_key": key,
        "cache_path": path,
        "cached": False,
    }
    model = CostModel(
        {n: float(v) for n, v in zip(COEFFICIENTS, coef)}, batch_size, hidden_units, provenance
    )
    try:
        model.to_json(path)
    except (OSError, tf.errors.OpError) as err:  # a read-only cache must not stop a run
        warnings.warn(f"{path}: could not cache the cost model ({err}).", stacklevel=2)
    return model
