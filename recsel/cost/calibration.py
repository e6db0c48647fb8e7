"""Calibration: export pruned rankers over random subsets, time them, fit a ``CostModel``.

``calibrate`` exports a dozen pruned rankers over random feature subsets and widths, times
their ``serving_default`` signature (tf.Example parsing included; each model's latency is
the least p50 of three interleaved timing passes) and fits the ``CostModel``'s coefficients
by non-negative least squares. Fitted models are cached as JSON per machine, TensorFlow
version, batch size, tower and feature structure.

Example:
    >>> cost = calibrate(features, hidden_units=(64, 32), batch_size=512, sample_frame=train)
    >>> cost.predict_ms(features.subset(["country", "tags"], {"tags": 16}))
"""

from __future__ import annotations

import datetime
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

from recsel.cost.cache_key import cache_key, cache_path, machine_info
from recsel.cost.latency import (
    ServingTarget,
    export_for_timing,
    measure_interleaved,
    sample_rows,
)
from recsel.cost.model import COEFFICIENTS, CostModel, design_row
from recsel.model.layer import PrunedEmbedding
from recsel.model.ranker import Ranker
from recsel.model.serving import load_serving_fn, serialize_examples
from recsel.model.tower import resolve_tower, tower_fingerprint
from recsel.progress import Progress
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.widths import embedding_bytes

__all__ = ["calibrate", "plan_models"]

# Timing passes over all calibration models in shuffled order: a burst of background
# load then hits one pass of many models, not all timings of one model.
_PASSES = 3
_RIDGE = 1e-4


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
        tower: A custom serving tower (``recsel.model.tower``) instead of ``hidden_units``.

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
    design = np.stack([design_row(kept) for kept in plans])
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
