"""Width and size arithmetic of candidate features: pure functions of specs and config.

The selection driver rounds chunk counts into widths with it, and the budget controller
and the cost model size tables with it. It lives below all three, so that none of them
imports another (``selection`` <-> ``budget`` / ``cost`` was a cycle).

Example:
    >>> from recsel.spec.config import SelectionConfig
    >>> target_width(12, 32, SelectionConfig())  # 12 columns round up to 16
    16
"""

from __future__ import annotations

import math

from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet


def check_widths(features: FeatureSet, config: SelectionConfig) -> None:
    """Every full width must be a whole number of chunks and of the rounding unit.

    Args:
        features: The candidates.
        config: Gives ``chunk_size`` and ``dim_multiple``.

    Raises:
        ValueError: Some widths are not multiples; the message names those features.
    """
    unit = max(config.chunk_size, config.dim_multiple)
    bad = [f"{s.name} ({s.embedding_dim})" for s in features if s.embedding_dim % unit]
    if bad:
        raise ValueError(
            f"Embedding widths must be multiples of {unit} (chunk_size {config.chunk_size}, "
            f"dim_multiple {config.dim_multiple}); these are not: {', '.join(bad)}. "
            "Set embedding_dim to a multiple, or change chunk_size / dim_multiple."
        )


def target_width(selected_columns: int, full_dim: int, config: SelectionConfig) -> int:
    """Rounds a chunk-selected width up to ``dim_multiple`` and clips it to [min, max].

    Args:
        selected_columns: Columns the selected chunks hold.
        full_dim: The feature's full width.
        config: Gives ``chunk_size``, ``dim_multiple``, ``min_dim`` and ``max_dim``.

    Returns:
        The kept width.
    """
    unit = max(config.chunk_size, config.dim_multiple)
    high = min(config.max_dim or full_dim, full_dim)
    low = min(config.min_dim, high)
    width = unit * math.ceil(max(selected_columns, low) / unit)
    while width > high and width - unit >= unit:
        width -= unit
    return width


def embedding_bytes(features: FeatureSet, dtype_bytes: int = 4) -> int:
    """Bytes of the embedding tables: rows (``vocabulary_size``) × width × dtype size."""
    return int(sum(s.vocabulary_size * s.embedding_dim * dtype_bytes for s in features))
