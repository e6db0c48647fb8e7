"""Parquet and CSV record batches as serialised tf.Examples, whole columns at a time.

Private to ``recsel.inputs``. ``FileStream`` reads a Parquet or CSV shard a record batch
at a time, casts each column to its feature spec's type with ``pyarrow.compute`` (list
cells stay Arrow offsets, CSV list text is split in Arrow), and encodes the batch to one
``tf.Example`` per row with tfx_bsl's C++ ``RecordBatchToExamplesEncoder``. A row is then
a single string, so rows go through the same bounded shuffle and batched
``tf.io.parse_example`` as TFRecord rows: a per-row element of one component, where a
dict of one tensor per column per row made ``tf.data``'s unbatch, shuffle and rebatch
the bottleneck (about 3k rows/s). Nothing here loops over rows in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsel.spec.features import MISSING_CATEGORY, FeatureSet, FeatureSpec

_VALUE_TYPES = {"string": pa.binary(), "int64": pa.int64(), "float32": pa.float32()}


class ExampleEncoder:
    """Turns record batches of one stream's columns into serialised tf.Examples.

    Args:
        features: The stream's features (their spec says each column's type and form).
        label: The label column (encoded as float32), or None.
        separator: Separator of list cells in CSV text (``"a|b"``); None (Parquet): a
            scalar column of a multi-valent feature holds one value per row (none if null).

    Example:
        >>> encoder = ExampleEncoder(features, "clicked", "|")
        >>> records = encoder.encode(record_batch, "part-0.parquet")
    """

    def __init__(self, features: FeatureSet, label: str | None, separator: str | None):
        self.features, self.label, self.separator = features, label, separator
        self._encoder = None  # built on first use: the C++ coder does not pickle

    def encode(self, batch: pa.RecordBatch, path: str) -> np.ndarray:
        """One serialised tf.Example per row of ``batch`` (an object array of bytes).

        Raises:
            ValueError: A column that does not fit its spec (nulls in a scalar feature,
                values that do not cast), naming the column and ``path``.
        """
        if self._encoder is None:
            from tfx_bsl.coders import example_coder

            self._encoder = example_coder.RecordBatchToExamplesEncoder()
        names = batch.schema.names
        columns = [self._column(batch.column(i), name, path) for i, name in enumerate(names)]
        lists = pa.RecordBatch.from_arrays(columns, names=names)
        return np.asarray(self._encoder.encode(lists), dtype=object)

    def _column(self, column: pa.Array, name: str, path: str) -> pa.Array:
        if name == self.label:
            return _scalar_list(column, pa.float32(), name, path)
        spec = self.features[name]
        if spec.is_multivalent:
            return _list_column(column, spec, self.separator, path)
        if spec.kind == "numeric":
            return _scalar_list(column, pa.float32(), name, path)
        # A missing category reads as in a frame (recsel.inputs.tabular): the OOV row.
        missing = MISSING_CATEGORY[spec.dtype]
        return _scalar_list(column, _VALUE_TYPES[spec.dtype], name, path, missing)


def _cast(column: pa.Array, to: pa.DataType, name: str, path: str) -> pa.Array:
    if pa.types.is_dictionary(column.type):  # pandas' category dtype: its values
        column = column.dictionary_decode()
    try:
        if pa.types.is_binary(to) and not (
            pa.types.is_string(column.type) or pa.types.is_binary(column.type)
        ):
            column = pc.cast(column, pa.string())  # numbers read as category text
        return pc.cast(column, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValueError(
            f"{path}: column {name!r} holds {column.type} values that do not cast to {to} "
            f"({err}); fix the data or the feature spec."
        ) from err


def _scalar_list(
    column: pa.Array, to: pa.DataType, name: str, path: str, missing: Any = None
) -> pa.ListArray:
    """A scalar column as one-item lists (the encoder's form); nulls become ``missing``,
    or are an error where it is None (numbers and labels: a null there has no meaning)."""
    if column.null_count and missing is None:
        raise ValueError(
            f"{path}: column {name!r} has {column.null_count} missing value(s) in a scalar "
            "feature; fill them when writing the shards, or declare the feature as a list."
        )
    values = _cast(column, to, name, path)
    if values.null_count:
        values = pc.fill_null(values, pa.scalar(missing, to))
    offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _list_column(column: pa.Array, spec: FeatureSpec, sep: str | None, path: str) -> pa.Array:
    """A list column (``sep``-joined text, or a scalar column when ``sep`` is None) with
    values of the spec's type; a missing cell is an empty list."""
    if pa.types.is_dictionary(column.type):  # pandas' category dtype: its values
        column = column.dictionary_decode()
    scalar = not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type))
    if scalar and sep is None:  # one value per row (a feature absent from some rows)
        lengths = column.is_valid().cast(pa.int32()).to_numpy(zero_copy_only=False)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        values = _cast(column.drop_null(), _VALUE_TYPES[spec.dtype], spec.name, path)
        return pa.ListArray.from_arrays(offsets, values)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # An empty cell is an empty list, not a list holding "".
        column = _drop_empty_strings(pc.split_pattern(pc.fill_null(column, ""), sep))
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise ValueError(
            f"{path}: feature {spec.name!r} is multi-valent in the feature spec but the column "
            f"holds {column.type}; write it as a list column or fix the spec."
        )
    column = pc.fill_null(column, pa.scalar([], column.type)) if column.null_count else column
    offsets = column.offsets
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    values = _cast(
        column.values.slice(start, stop - start), _VALUE_TYPES[spec.dtype], spec.name, path
    )
    rebased = pc.subtract(offsets, pa.scalar(start, offsets.type))
    make = pa.LargeListArray if pa.types.is_large_list(column.type) else pa.ListArray
    return make.from_arrays(rebased, values)


def _drop_empty_strings(column: pa.ListArray) -> pa.ListArray:
    """Removes "" items from a list<string> column with numpy on its offsets."""
    offsets = column.offsets.to_numpy()
    flat = column.values
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    new_offsets = kept_before[offsets]
    return pa.ListArray.from_arrays(pa.array(new_offsets, pa.int32()), flat.filter(pa.array(keep)))
