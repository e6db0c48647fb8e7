"""``infer_feature_set`` on Arrow columns: kinds from Arrow types, counts from ``pc.value_counts``.

Private: ``recsel.inputs.inference.infer_feature_set`` calls ``arrow_spec`` for each column of an
Arrow table. It covers the common column types (strings, integers without missing
values, floats, lists of strings or integers) and returns None for anything else, which
the caller infers from a one-column frame, so both paths give the same specs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsel.inputs.spec_rules import (
    categorical_spec,
    is_id_name,
    numeric_spec,
    vocabulary_from_counts,
)
from recsel.inputs.table_io import normalise_list_array
from recsel.spec.features import FeatureSpec


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_int(kind: pa.DataType) -> bool:
    # uint64 can overflow int64, which the frame path reports: leave it to that path.
    return pa.types.is_integer(kind) and kind != pa.uint64()


def value_counts(values: pa.Array, missing) -> pd.Series:
    """Counts per value except ``missing``, ordered as ``Series.value_counts()`` orders them.

    Arrow's hash kernel lists values in order of first appearance, as pandas' does, and
    the same stable-for-ties descending sort follows, so ties come out alike.

    Example:
        >>> value_counts(pa.array(["a", "", "a"]), "").to_dict()
        {'a': 2}
    """
    counted = pc.value_counts(values)
    keys, counts = counted.field("values"), counted.field("counts")
    keep = pc.not_equal(keys, pa.scalar(missing, keys.type))
    index = pd.Index(keys.filter(keep).to_pylist(), dtype=object if missing == "" else np.int64)
    return pd.Series(counts.filter(keep).to_numpy(), index=index).sort_values(ascending=False)


def _clean_items(values: pa.Array, dtype: str) -> pa.Array:
    if dtype == "string":
        return pc.fill_null(pc.cast(values, pa.string()), "")
    return pc.fill_null(pc.cast(values, pa.int64()), -1)


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def arrow_spec(
    name: str,
    column: pa.ChunkedArray | pa.Array,
    categorical: set[str],
    numeric: set[str],
    max_vocab_size: int,
    min_count: int,
    num_buckets: int,
    numeric_transform: str,
) -> FeatureSpec | None:
    """The spec ``infer_feature_set`` would infer for this column, or None (use a frame).

    Args:
        name: The column.
        column: Its values.
        categorical: Columns forced categorical.
        numeric: Columns forced numeric.
        max_vocab_size: Largest vocabulary before hashing.
        min_count: Least count for a value to enter a vocabulary.
        num_buckets: Buckets of a bucketized numeric feature.
        numeric_transform: ``"bucketize"`` or ``"normalize"``.

    Returns:
        The spec (before its width is set), or None for a type this path leaves alone.

    Example:
        >>> arrow_spec("tags", pa.chunked_array([[["a"], ["a", "b"]]]), set(), set(),
        ...            10_000, 1, 16, "bucketize").kind
        'multi_categorical'
    """
    array, kind = _array(column), column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lists = normalise_list_array(array)
        items = lists.flatten()
        if name in numeric or array.null_count == len(array) or items.null_count == len(items):
            return None  # errors, or lists with no typed item: the frame path's rules
        if _is_int(items.type):
            dtype = "int64"
        elif _is_string(items.type):
            dtype = "string"
        else:
            return None
        counts = value_counts(_clean_items(items, dtype), "" if dtype == "string" else -1)
        vocab = vocabulary_from_counts(counts, name, min_count, stacklevel=5)
        valency = max(1, int(np.diff(lists.offsets.to_numpy()).max(initial=0)))
        return categorical_spec(name, "multi_categorical", dtype, vocab, valency, max_vocab_size)
    forced_categorical = name in categorical or is_id_name(name)
    if _is_string(kind) and name not in numeric:
        counts = value_counts(pc.fill_null(array, ""), "")
        vocab = vocabulary_from_counts(counts, name, min_count, stacklevel=5)
        return categorical_spec(name, "categorical", "string", vocab, 1, max_vocab_size)
    numeric_kind = pa.types.is_floating(kind) or (_is_int(kind) and array.null_count == 0)
    if numeric_kind and (name in numeric or not forced_categorical):
        values = pd.Series(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False))
        return numeric_spec(name, values, numeric_transform, num_buckets)
    if _is_int(kind) and array.null_count == 0:
        counts = value_counts(pc.cast(array, pa.int64()), -1)
        vocab = vocabulary_from_counts(counts, name, min_count, stacklevel=5)
        return categorical_spec(name, "categorical", "int64", vocab, 1, max_vocab_size)
    return None
