"""Rules that turn one column's values into a ``FeatureSpec``, whatever holds them.

``recsel.inputs.inference`` (pandas frames) and ``recsel.inputs.arrow_infer`` (Arrow tables) count
values their own way and share these rules, so both give the same spec for a column.

Example:
    >>> categorical_spec("c", "categorical", "string", ["a"], 1, 10_000).vocabulary
    ('a',)
"""

from __future__ import annotations

import math
import re
import shlex
import warnings
from typing import Any

import numpy as np
import pandas as pd

from recsel.spec.features import FeatureSpec

SOURCE = "training data"

# The names of a row index that pandas wrote into a file: "__index_level_0__" (and up) in
# Parquet, and "Unnamed: 0", pandas' name for the empty first header that to_csv writes
# for it. Row positions, never data, and an ID-like trap if they were candidates.
_WRITTEN_INDEX = re.compile(r"__index_level_\d+__|Unnamed: 0")


def is_written_index(name: str) -> bool:
    """Whether ``name`` is the column of a row index that pandas wrote into a file."""
    return _WRITTEN_INDEX.fullmatch(name) is not None


def warn_written_index(name: str, stacklevel: int = 3) -> None:
    """Says that the written row index ``name`` is not a candidate, and how to avoid it."""
    warnings.warn(
        f"recsel: column {name!r} is the row index pandas wrote into the file "
        "(to_parquet or to_csv without index=False), so it is not a candidate. Write the "
        "file with index=False, or rename the column to keep it as a feature.",
        stacklevel=stacklevel,
    )


def exclude_hint(name: str) -> str:
    """How to leave column ``name`` out, in the Python API's words and the CLI's."""
    return f"exclude=[{name!r}] (--exclude {shlex.quote(name)} on the command line)"


def is_id_name(name: str) -> bool:
    return name.lower().endswith("id")  # covers "_id"; override with numeric=[...] if wrong


def vocabulary_from_counts(
    counts: pd.Series, name: str, min_count: int, stacklevel: int = 6
) -> list[Any]:
    """The vocabulary from value counts (missing values left out), most frequent first.

    Args:
        counts: Count per value, as ``Series.value_counts()`` orders them.
        name: The column, for messages.
        min_count: Least count for a value to enter the vocabulary.
        stacklevel: Where the rare-values warning points (the caller of infer_feature_set).

    Example:
        >>> vocabulary_from_counts(pd.Series(["a", "b", "a"]).value_counts(), "c", 1)
        ['a', 'b']
    """
    if counts.empty:
        raise ValueError(f"{SOURCE}: column {name!r} has no values; pass {exclude_hint(name)}.")
    kept = [(v, int(c)) for v, c in counts.items() if c >= min_count]
    if not kept:
        # Every value is rare: the column is ID-like noise at this row count. Keep its most
        # frequent value so the table is valid; everything else is OOV, as asked.
        warnings.warn(
            f"{SOURCE}: no value of column {name!r} occurs min_count={min_count} times (the "
            f"most frequent occurs {int(counts.max())} times), so all but that one map to OOV. "
            f"Lower min_count to keep its values, or pass {exclude_hint(name)}.",
            stacklevel=stacklevel,
        )
        kept = [(counts.index[0], int(counts.iloc[0]))]
    kept.sort(key=lambda vc: (-vc[1], vc[0]))  # most frequent first, ties by value
    return [v if isinstance(v, str) else int(v) for v, _ in kept]


def categorical_spec(
    name: str, kind: str, dtype: str, vocab: list, max_valency: int, max_vocab_size: int
) -> FeatureSpec:
    """A categorical spec from its counted vocabulary: hashed when it has too many values.

    Example:
        >>> categorical_spec("c", "categorical", "string", ["a"], 1, 10_000).vocabulary
        ('a',)
    """
    # ID-like columns (user/item IDs) have huge, open-ended vocabularies: hash them.
    lookup = (
        {"hash_buckets": max_vocab_size}
        if len(vocab) > max_vocab_size
        else {"vocabulary": tuple(vocab)}
    )
    return FeatureSpec(name, kind, dtype=dtype, combiner="mean", max_valency=max_valency, **lookup)


def numeric_spec(name: str, series: pd.Series, transform: str, num_buckets: int) -> FeatureSpec:
    values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
    if np.isnan(values[~series.isna().to_numpy()]).any():
        raise ValueError(
            f"{SOURCE}: column {name!r} is numeric by override but has non-numeric values."
        )
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(
            f"{SOURCE}: numeric column {name!r} has no finite values; pass {exclude_hint(name)}."
        )
    mean, std = float(finite.mean()), float(finite.std())
    std = std if std > 0 and math.isfinite(std) else 1.0
    if transform == "bucketize" and finite.min() < finite.max():
        quantiles = np.quantile(finite, np.arange(1, num_buckets) / num_buckets)
        boundaries = tuple(float(b) for b in np.unique(quantiles))
        # Only normalize keeps (and serialises) mean/std, so JSON round trips are exact.
        return FeatureSpec(
            name, "numeric", dtype="float32", numeric_transform="bucketize", boundaries=boundaries
        )
    # A constant column has no boundary that separates training values: normalize it.
    return FeatureSpec(
        name, "numeric", dtype="float32", numeric_transform="normalize", mean=mean, std=std,
    )  # fmt: skip
