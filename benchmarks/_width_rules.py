"""Width rules that recsel's widths are compared with in ``benchmarks.dims`` (issue 15).

Each rule gives a *relative* width per feature; ``benchmarks.dims.scaled_widths`` then
scales it to recsel's embedding parameter count, so every rule spends the same memory:

* ``uniform``: the same width everywhere;
* ``heuristic``: 6 * cardinality^0.25 (the DCN rule);
* ``mixed_dim``: Ginart et al. 2019 (mixed-dimension embeddings), width proportional to
  the popularity ``p^alpha`` of the feature's looked-up rows, where ``p`` is the mean
  frequency of the value a training row looks up (``sum_v (count_v / N)^2``): tables
  whose rows are each seen often get more width;
* ``pep``: PEP-style magnitude pruning (Liu et al., ICLR 2021) of a trained full-width
  model's tables: one global threshold on ``|weight|`` keeps as many elements as the
  parameter target allows, and a feature's width is its surviving elements per row.
  PEP learns its thresholds while training; a global magnitude threshold on the trained
  tables is the one-shot form of the same rule (said so in the results).

Example:
    >>> base = mixed_dim_base(train, features)
    >>> widths = scaled_widths(features, base, target)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsel.spec.features import FeatureSet

# Ginart et al. report alpha in [0.1, 0.5] working; 0.3 is their middle setting.
MIXED_DIM_ALPHA = 0.3


def row_popularity(values: pd.Series) -> float:
    """Mean frequency of the value a row looks up: ``sum_v (count_v / N)^2``.

    Args:
        values: One feature's training column (lists are counted per token).

    Example:
        >>> row_popularity(pd.Series(["a", "a", "b", "c"]))
        0.375
    """
    flat = values.explode() if values.map(lambda v: isinstance(v, list)).any() else values
    share = flat.value_counts(normalize=True, dropna=False).to_numpy(np.float64)
    return float(np.sum(share**2))


def mixed_dim_base(
    train: pd.DataFrame, features: FeatureSet, alpha: float = MIXED_DIM_ALPHA
) -> dict[str, float]:
    """Relative widths ``p^alpha`` per feature from its training value counts (Ginart et al.).

    Numeric features (one learned vector, or a few buckets) use their bucket counts when
    bucketized and popularity 1 otherwise (every row reads the one row).

    Args:
        train: Cleaned training rows.
        features: The candidates.
        alpha: Power-law exponent.

    Example:
        >>> mixed_dim_base(data.train, data.features)["user_id"]
    """
    out = {}
    for spec in features:
        if spec.kind == "numeric" and spec.numeric_transform == "normalize":
            popularity = 1.0
        elif spec.kind == "numeric":
            buckets = np.digitize(train[spec.name].to_numpy(np.float64), spec.boundaries)
            popularity = row_popularity(pd.Series(buckets))
        else:
            popularity = row_popularity(train[spec.name])
        out[spec.name] = max(popularity, 1e-12) ** alpha
    return out


def pep_base(tables: dict[str, np.ndarray], target: int) -> dict[str, float]:
    """Surviving elements per row under one global magnitude threshold (PEP-style).

    Args:
        tables: Each feature's trained full-width table.
        target: Parameters to keep (elements surviving the threshold).

    Returns:
        Relative width per feature (surviving elements / rows, at least a small floor so
        every feature keeps a column after scaling).

    Example:
        >>> pep_base({"a": np.ones((2, 4)), "b": np.zeros((3, 4))}, 8)["a"]
        4.0
    """
    magnitudes = np.concatenate([np.abs(t).ravel() for t in tables.values()])
    if target >= magnitudes.size:
        threshold = -np.inf
    else:
        threshold = np.partition(magnitudes, magnitudes.size - target)[magnitudes.size - target]
    return {
        name: max(float(np.sum(np.abs(t) >= threshold)) / t.shape[0], 1e-3)
        for name, t in tables.items()
    }
