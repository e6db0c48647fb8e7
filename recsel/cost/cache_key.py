"""Cache keys of calibrated cost models: the machine, TensorFlow, tower and features.

A cost model is valid only where it was measured, so the key hashes the host, its
processor and core count, visible GPUs, the TensorFlow version, the batch size, the
tower and the cost-relevant structure of every candidate feature.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from recsel.spec.features import FeatureSet, FeatureSpec

VERSION = 1  # of the cost-model file format and the key material


def machine_info() -> dict[str, Any]:
    """What the cache key and provenance record about this machine.

    Example:
        >>> machine_info()["cpu_count"]
    """
    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


def default_cache_dir() -> str:
    """``$RECSEL_CACHE/cost`` if set, else ``~/.cache/recsel/cost``.

    Example:
        >>> default_cache_dir()  # '/home/me/.cache/recsel/cost'
    """
    root = os.environ.get("RECSEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "recsel"
    )
    return os.path.join(root, "cost")


def _structure(spec: FeatureSpec) -> list[Any]:
    """What about a feature drives its serving cost (its name does not)."""
    lookup = spec.numeric_transform if spec.kind == "numeric" else spec.combiner
    hashed = spec.hash_buckets is not None
    return [spec.kind, spec.dtype, lookup, hashed, spec.max_valency, spec.vocabulary_size,
            spec.embedding_dim]  # fmt: skip


def cache_key(
    features: FeatureSet,
    hidden_units: Sequence[int],
    batch_size: int,
    seed: int = 0,
    num_models: int = 12,
    repeats: int = 20,
    tower: str | None = None,
) -> str:
    """Hash of everything a calibration's result depends on, except the sample rows.

    Feature names are left out: two feature sets with the same structure cost the same.

    Args:
        features: Candidate features at full width.
        hidden_units: The serving ranker's tower.
        batch_size: Serving batch size.
        seed: Calibration seed.
        num_models: Calibration models.
        repeats: Timed calls per model.
        tower: ``recsel.model.tower.tower_fingerprint`` of a custom tower (None: the ReLU
            tower of ``hidden_units``).

    Returns:
        A hex SHA-256 digest.

    Example:
        >>> cache_key(features, (64, 32), 512) == cache_key(features, (64, 32), 512)
        True
    """
    material = {
        "version": VERSION,
        "machine": {k: v for k, v in machine_info().items() if k != "platform"},
        "tensorflow": tf.__version__,
        "batch_size": int(batch_size),
        "hidden_units": [int(u) for u in hidden_units],
        "features": [_structure(s) for s in features],
        "calibration": [int(seed), int(num_models), int(repeats)],
    }
    if tower is not None:  # absent for the default tower, so existing caches stay valid
        material["tower"] = tower
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cache_path(features: FeatureSet, hidden_units: Sequence[int], batch_size: int,
               cache_dir: str | None = None, **calibration) -> str:  # fmt: skip
    """Where ``calibrate`` caches the model for these arguments.

    Args:
        features: As for ``cache_key``.
        hidden_units: As for ``cache_key``.
        batch_size: As for ``cache_key``.
        cache_dir: Cache folder (default ``default_cache_dir()``).
        **calibration: ``seed``, ``num_models``, ``repeats``, ``tower`` as for ``cache_key``.

    Example:
        >>> cache_path(features, (64, 32), 512, "/tmp/cost", num_models=12)
    """
    key = cache_key(features, hidden_units, batch_size, **calibration)
    return os.path.join(cache_dir or default_cache_dir(), f"cost-{key[:20]}.json")
