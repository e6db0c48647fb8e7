"""Infers a ``FeatureSet`` (kinds, vocabularies, numeric statistics) from a training table.

Run it on the training split only: vocabularies and statistics are adapted on training
data, and at serving time values never seen in training map to the OOV bucket(s), so
validation data must not leak into the vocabularies.

Example:
    >>> train, valid = split_frame(read_table("events.parquet"), 0.2)
    >>> features = infer_feature_set(train, "clicked", embedding_dim=heuristic_dim, exclude=["ts"])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recsel.inputs.spec_rules import SOURCE as _SOURCE
from recsel.inputs.spec_rules import (
    categorical_spec,
    exclude_hint,
    is_id_name,
    is_written_index,
    numeric_spec,
    vocabulary_from_counts,
    warn_written_index,
)
from recsel.inputs.table_io import clean_list_values, holds_lists, list_array
from recsel.inputs.tabular import arrow_to_frame, normalise_categorical, numpy_backed
from recsel.spec.features import NUMERIC_TRANSFORMS, FeatureSet, FeatureSpec

_LIST_TYPES = (list, tuple, np.ndarray)
# Values seen fewer times than this in training map to OOV, like tft.vocabulary's
# frequency_threshold: a value with a handful of rows gets an embedding row that can only
# memorise them, which is how ID-like columns beat real signal (issue 14; the evidence
# for this value is in BENCHMARKS.md, adversarial recovery).
DEFAULT_MIN_COUNT = 5


def heuristic_dim(vocab_size: int, multiple: int = 8, max_dim: int = 64) -> int:
    """The ``6 * V**0.25`` embedding-width rule, rounded up to a multiple, capped at ``max_dim``.

    Args:
        vocab_size: Rows of the embedding table.
        multiple: Round the width up to a multiple of this (hardware-friendly widths).
        max_dim: Largest width returned.

    Returns:
        The width, at least ``min(multiple, max_dim)``.

    Example:
        >>> heuristic_dim(10_000)
        64
        >>> heuristic_dim(3)
        8
    """
    if vocab_size < 1 or multiple < 1 or max_dim < 1:
        raise ValueError(
            f"heuristic_dim needs positive arguments, got vocab_size={vocab_size}, "
            f"multiple={multiple}, max_dim={max_dim}."
        )
    width = math.ceil(6 * vocab_size**0.25 / multiple) * multiple
    return int(min(max(width, multiple), max_dim))


def _list_cells(series: pd.Series) -> bool:
    return holds_lists(series)


_RECENT: list = []  # the last (series, list array): _decide and _categorical_spec share it


def _list_array_once(series: pd.Series):
    """``list_array(series)``, converted once when the kind and the spec both ask for it."""
    if not (_RECENT and _RECENT[0][0] is series):
        _RECENT[:] = [(series, list_array(series))]
    return _RECENT[0][1]


def _list_item_type(series: pd.Series) -> str:
    """``infer_dtype`` of a list column's items, from Arrow's type when it converts."""
    array = _list_array_once(series)
    if array is not None:
        kind = array.type.value_type
        if pa.types.is_integer(kind):
            return "integer"
        if pa.types.is_floating(kind):
            return "floating"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "string"
    flat = list(itertools.chain.from_iterable(c for c in series if isinstance(c, _LIST_TYPES)))
    return pd.api.types.infer_dtype(flat, skipna=True)


def _flat_lists(series: pd.Series, probe: FeatureSpec) -> tuple[pd.Series, int]:
    """A list column's cleaned items, flat, and its largest list length (at least 1).

    On Arrow offsets and values when the column converts; otherwise through the shared
    per-cell cleaner. Only the flat items are needed here, so no row lists are built.
    """
    array = _list_array_once(series)
    _RECENT.clear()
    flat = None if array is None else clean_list_values(array.flatten(), probe.dtype)
    if flat is not None:
        lengths = np.diff(array.offsets.to_numpy())
        return pd.Series(flat, dtype=object), max(1, int(lengths.max(initial=0)))
    cleaned = normalise_categorical(series, probe, _SOURCE)
    max_valency = max(1, int(cleaned.map(len).max()))
    return pd.Series(list(itertools.chain.from_iterable(cleaned)), dtype=object), max_valency


def _integral(series: pd.Series) -> bool:
    values = series.to_numpy(np.float64)
    values = values[np.isfinite(values)]
    return values.size > 0 and bool(np.all(values == np.round(values)))


def _decide(
    name: str, series: pd.Series, categorical: set[str], numeric: set[str]
) -> tuple[str, str]:
    """Returns ``(kind, dtype)`` for one column."""
    where = f"{_SOURCE}: column {name!r}"
    if _list_cells(series):
        if name in numeric:
            raise ValueError(f"{where} holds lists and cannot be numeric; remove it from numeric=.")
        item_type = _list_item_type(series)
        if item_type == "integer":
            return "multi_categorical", "int64"
        if item_type in ("floating", "mixed-integer-float", "decimal"):
            raise ValueError(
                f"{where} holds lists of floats; only lists of strings or integers can be "
                f"multi-valent categorical features. Pass {exclude_hint(name)}."
            )
        return "multi_categorical", "string"
    dtype = series.dtype
    if name in numeric:
        return "numeric", "float32"
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical", "string"
    if pd.api.types.is_integer_dtype(dtype):
        return (
            ("categorical", "int64")
            if name in categorical or is_id_name(name)
            else ("numeric", "float32")
        )
    if pd.api.types.is_float_dtype(dtype):
        # pandas turns int columns with missing values into floats; an integral ID stays an ID.
        if name in categorical or is_id_name(name):
            if _integral(series):
                return "categorical", "int64"
            if name in categorical:
                return "categorical", "string"
        return "numeric", "float32"
    if (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        return "categorical", "string"
    raise ValueError(
        f"{where} has unsupported type {dtype}; convert it (e.g. a timestamp to a number) or "
        f"pass {exclude_hint(name)}."
    )


def _vocabulary(values: pd.Series, missing: Any, name: str, min_count: int) -> list[Any]:
    return vocabulary_from_counts(values[values != missing].value_counts(), name, min_count)


def _categorical_spec(
    name: str, series: pd.Series, kind: str, dtype: str, max_vocab_size: int, min_count: int
) -> FeatureSpec:
    # A placeholder vocabulary lets the shared cleaner run; the real one is counted below.
    probe = FeatureSpec(name, kind, dtype=dtype, vocabulary=("",) if dtype == "string" else (0,))
    max_valency = 1
    if kind == "multi_categorical":
        cleaned, max_valency = _flat_lists(series, probe)
    else:
        cleaned = normalise_categorical(series, probe, _SOURCE)
    vocab = _vocabulary(cleaned, "" if dtype == "string" else -1, name, min_count)
    return categorical_spec(name, kind, dtype, vocab, max_valency, max_vocab_size)


def _frame_spec(
    name: str,
    series: pd.Series,
    categorical: set[str],
    numeric: set[str],
    max_vocab_size: int,
    min_count: int,
    num_buckets: int,
    numeric_transform: str,
) -> FeatureSpec:
    kind, dtype = _decide(name, series, categorical, numeric)
    if kind == "numeric":
        return numeric_spec(name, series, numeric_transform, num_buckets)
    return _categorical_spec(name, series, kind, dtype, max_vocab_size, min_count)


def infer_feature_set(
    frame: pd.DataFrame | pa.Table,
    label: str,
    *,
    embedding_dim: int | Callable[[int], int] = 16,
    max_vocab_size: int = 10_000,
    min_count: int = DEFAULT_MIN_COUNT,
    num_buckets: int = 16,
    numeric_transform: str = "bucketize",
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> FeatureSet:
    """Infers one ``FeatureSpec`` per column (except the label) from the training split.

    Kinds: list columns are ``multi_categorical`` (int64 or string items, ``max_valency`` =
    longest list, mean combiner); string, category and bool columns are string
    ``categorical``; integer columns are ``numeric`` unless named in ``categorical`` or
    their name ends in "id" (e.g. ``user_id``), which makes them int64 ``categorical``;
    float columns are ``numeric`` (integral floats named like IDs are int64 categorical).

    Vocabularies hold values seen at least ``min_count`` times (default 5), most frequent
    first (ties by value), without missing values; rarer and missing values map to OOV,
    like ``tft.vocabulary``'s ``frequency_threshold``. A value with a handful of training
    rows can only be memorised, and memorised ID-like columns beat real signal in
    selection; ``min_count=1`` keeps every value. A column with no value that frequent
    keeps only its most frequent value (with a warning). A column with more than
    ``max_vocab_size`` such values hashes into ``max_vocab_size`` buckets instead: ID-like
    columns are open-ended, so a frozen vocabulary would mostly be OOV at serving time.
    Numeric statistics ignore non-finite values; ``bucketize`` uses the unique quantiles at
    ``k / num_buckets`` as boundaries and falls back to ``normalize`` for a constant column.

    Args:
        frame: The training split (DataFrame or Arrow table).
        label: Label column, never a candidate.
        embedding_dim: A width, or a function from a feature's table size
            (``FeatureSpec.vocabulary_size``) to a width, e.g. ``heuristic_dim``.
        max_vocab_size: Largest vocabulary before hashing.
        min_count: Least training count for a value to enter a vocabulary (the frequency
            threshold; 1 keeps every value).
        num_buckets: Buckets of a bucketized numeric feature (at least 2).
        numeric_transform: ``"bucketize"`` or ``"normalize"``.
        categorical: Columns to force categorical.
        numeric: Columns to force numeric.
        exclude: Columns to leave out.

    Returns:
        The feature set, in column order, with ``label`` set.

    Raises:
        ValueError: Unknown or conflicting overrides, a missing label, unsupported column
            types, or no candidate features.

    Example:
        >>> features = infer_feature_set(train, "clicked", numeric=["zip_id"], exclude=["ts"])
    """
    table = frame if isinstance(frame, pa.Table) else None
    columns = table.column_names if table is not None else list(frame.columns)
    categorical, numeric, exclude = set(categorical), set(numeric), set(exclude)
    if label not in columns:
        raise ValueError(f"{_SOURCE}: label column {label!r} not found; columns: {columns}.")
    for arg, names in (("categorical", categorical), ("numeric", numeric), ("exclude", exclude)):
        unknown = sorted(names - set(columns))
        if unknown:
            flag = "" if arg == "numeric" else f" (--{arg} on the command line)"
            raise ValueError(f"{arg}={flag} names unknown column(s) {unknown}; columns: {columns}.")
    if label in categorical | numeric:
        raise ValueError(
            f"The label {label!r} cannot be a candidate; remove it from categorical=/numeric=."
        )
    if categorical & numeric:
        raise ValueError(
            f"Columns {sorted(categorical & numeric)} are in both categorical= and numeric=."
        )
    if numeric_transform not in NUMERIC_TRANSFORMS:
        raise ValueError(
            f"numeric_transform must be one of {NUMERIC_TRANSFORMS}, got {numeric_transform!r}."
        )
    if max_vocab_size < 1 or min_count < 1 or num_buckets < 2:
        raise ValueError(
            "Need max_vocab_size >= 1, min_count >= 1 and num_buckets >= 2; got "
            f"{max_vocab_size}, {min_count}, {num_buckets}."
        )
    specs = []
    options = (categorical, numeric, max_vocab_size, min_count, num_buckets, numeric_transform)
    for index, name in enumerate(columns):
        if name == label or name in exclude:
            continue
        if is_written_index(name):
            warn_written_index(name, stacklevel=2)
            continue
        spec = None
        if table is not None:
            # On Arrow buffers when the column's type allows; else as a one-column frame.
            from recsel.inputs.arrow_infer import arrow_spec

            spec = arrow_spec(name, table.column(index), *options)
            series = None if spec else arrow_to_frame(pa.table({name: table.column(index)}))[name]
        else:
            series = numpy_backed(frame[name])  # pandas' nullable dtypes read as NumPy ones
        if spec is None:
            spec = _frame_spec(name, series, *options)
        width = embedding_dim(spec.vocabulary_size) if callable(embedding_dim) else embedding_dim
        if int(width) < 1:
            raise ValueError(
                f"embedding_dim gave width {width} for {name!r}; widths must be positive."
            )
        specs.append(spec.with_dim(int(width)))
    if not specs:
        raise ValueError(
            f"No candidate features left besides the label {label!r} after exclude={sorted(exclude)}."
        )
    return FeatureSet(tuple(specs), label)
