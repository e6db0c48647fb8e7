"""A Parquet table as ``select()``'s inputs, cleaned on Arrow buffers: no frame of the data.

``read_table`` -> ``split_frame`` -> ``validate_frame`` -> ``to_dataset`` holds every string
as a Python object and every multi-valent cell as a Python list, and converts them to
Arrow and back in each step: at 400 candidates x 100k rows that was 30 s and 3 GiB
before the first training step. Here the Parquet table stays in Arrow, the split takes
row positions column by column, inference counts with ``pc.value_counts``
(``recsel.inputs.inference`` on the table), and each feature is held as one compact tensor:
strings as int32 codes into their distinct values, lists as codes plus row splits.
A batch gathers its rows and decodes the codes, so it is the batch ``to_dataset`` yields
for the same seed (same rows, same values, same tensor types).

Columns of types this path does not clean itself (booleans, floats in an int64 spec,
scalars in a list spec, ...) go through ``validate_frame``'s own cleaners as one-column
frames, so every rule and error message is the frame path's.

Example:
    >>> inputs = prepare_table("events.parquet", "clicked", validation_fraction=0.2, seed=0)
    >>> result = select(inputs.train, inputs.valid, inputs.features, config)
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from recsel.inputs import frame_dataset, inference, splits, tabular
from recsel.inputs.paths import format_of, resolve_files
from recsel.inputs.readers import python_cells
from recsel.inputs.table_io import (
    MissingColumnError,
    list_array,
    normalise_list_array,
    read_parquet_table,
)
from recsel.spec.features import FeatureSet, FeatureSpec


def read_arrow_table(path: str, label: str | None = None) -> pa.Table:
    """Parquet shards behind ``path`` as one Arrow table, checked as ``read_table`` checks.

    Args:
        path: A Parquet file, a directory of Parquet shards or a glob.
        label: If given, the label column, which must exist.

    Raises:
        ValueError: Not Parquet, no rows, unreadable shards or shards of different schemas.
        MissingColumnError: The label is not a column.

    Example:
        >>> read_arrow_table("events.parquet", label="clicked").num_rows
    """
    files = resolve_files(path)
    if format_of(files[0]) != "parquet":
        raise ValueError(f"{path}: read_arrow_table reads Parquet; use read_table for others.")
    table = read_parquet_table(files)
    if table.num_rows == 0:
        where = files[0] if len(files) == 1 else f"{path} ({len(files)} shards)"
        raise ValueError(f"{where} has no rows.")
    if label is not None and label not in table.column_names:
        raise MissingColumnError(
            f"{path}: label column {label!r} not found; columns: {table.column_names}."
        )
    return table


def is_parquet(path: str) -> bool:
    """Whether ``path`` names Parquet data (the shards' format, by their names)."""
    return format_of(resolve_files(path)[0]) == "parquet"


@dataclasses.dataclass
class TableInputs:
    """What ``prepare_table`` built: the two sources and the features they carry."""

    train: ArrowSource
    valid: ArrowSource
    features: FeatureSet


def prepare_table(
    data: str,
    label: str,
    *,
    validation_data: str | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    time_column: str | None = None,
    features: FeatureSet | None = None,
    nan_policy: str = "raise",
    exclude: Sequence[str] = (),
    **infer_kwargs,
) -> TableInputs:
    """Parquet data to ``select()``'s train and validation sources, as ``recsel select`` does.

    The same rows, features and batches as ``read_table``, ``split_frame``,
    ``infer_feature_set``, ``validate_frame`` and ``to_dataset``, without a frame.

    Args:
        data: Training Parquet (file, directory or glob).
        label: The binary label column.
        validation_data: Validation Parquet; default: a split of ``data``.
        validation_fraction: Share of rows split off for validation.
        seed: Seed of the split.
        time_column: Split by time instead: the latest rows validate (not a candidate).
        features: A feature set to use as is; default: inferred from the training rows.
        nan_policy: ``"raise"`` or ``"impute"`` (see ``validate_frame``).
        exclude: Columns that are not candidates.
        **infer_kwargs: Passed to ``infer_feature_set`` (``embedding_dim``, ``min_count``...).

    Returns:
        The ``TableInputs``.

    Example:
        >>> inputs = prepare_table("events.parquet", "clicked", embedding_dim=16, min_count=5)
    """
    table = read_arrow_table(data, label)
    if validation_data is not None:
        train, valid = table, read_arrow_table(validation_data, label)
        train_rows, valid_rows = np.arange(train.num_rows), np.arange(valid.num_rows)
    else:
        times = None
        if time_column is not None:
            if time_column not in table.column_names:
                raise MissingColumnError(
                    f"time_column {time_column!r} not found; columns: {table.column_names}."
                )
            if table.column(time_column).null_count:
                raise ValueError(
                    f"time_column {time_column!r} has missing values; fill or drop those rows."
                )
            times = splits.time_values(pd.Series(table.column(time_column).to_numpy()), time_column)
        train_rows, valid_rows = splits.split_rows(table.num_rows, validation_fraction, seed, times)
        train, valid = _split(table, train_rows, valid_rows)
        del table
    if features is None:
        exclude = [*exclude, *([time_column] if time_column else [])]
        features = inference.infer_feature_set(train, label, exclude=exclude, **infer_kwargs)
    train_source = ArrowSource.from_table(
        train, features, label, nan_policy=nan_policy, source=data, row_ids=train_rows
    )
    del train
    valid_source = ArrowSource.from_table(
        valid, features, label, nan_policy=nan_policy, source=validation_data or data,
        row_ids=valid_rows,
    )  # fmt: skip
    del valid
    # The per-column pandas Series of the cleaners sit in reference cycles, holding
    # their column copies (300 MiB at 400 candidates x 100k rows) until a full
    # collection that may come only after training has allocated its own peak.
    gc.collect()
    return TableInputs(train_source, valid_source, features)


def _split(table: pa.Table, train_rows: np.ndarray, valid_rows: np.ndarray):
    """Both sides of a split, a column at a time: each source column is freed once taken."""
    names, train, valid = table.column_names, [], []
    train_index, valid_index = pa.array(train_rows), pa.array(valid_rows)
    while table.num_columns:
        column = table.column(0)
        table = table.remove_column(0)
        train.append(column.take(train_index))
        valid.append(column.take(valid_index))
        del column
    return pa.table(train, names=names), pa.table(valid, names=names)


# ------------------------------------------------------------------ compact columns
@dataclasses.dataclass
class _Column:
    """One feature's rows: ``values`` (or codes into ``dictionary``), ragged with ``splits``."""

    values: tf.Tensor
    dictionary: tf.Tensor | None = None
    splits: tf.Tensor | None = None

    def take(self, rows: tf.Tensor) -> tf.Tensor | tf.RaggedTensor:
        if self.splits is None:
            picked = tf.gather(self.values, rows)
            return picked if self.dictionary is None else tf.gather(self.dictionary, picked)
        ragged = tf.gather(
            tf.RaggedTensor.from_row_splits(self.values, self.splits, validate=False), rows
        )
        if self.dictionary is None:
            return ragged
        return ragged.with_values(tf.gather(self.dictionary, ragged.values))


def _coded(strings: pa.Array) -> tuple[tf.Tensor, tf.Tensor]:
    """(int32 codes, distinct values) of a string array without nulls."""
    encoded = strings.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    dictionary = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    return tf.constant(codes), tf.constant(dictionary, tf.string, shape=[len(dictionary)])


def _items(items: pa.Array, dtype: str) -> pa.Array | None:
    """Flat list items cleaned as ``clean_list_values`` cleans them, or None (frame path)."""
    if pa.types.is_null(items.type):
        return pa.array(["" if dtype == "string" else -1] * len(items), _arrow_type(dtype))
    if pa.types.is_string(items.type) or pa.types.is_large_string(items.type):
        return pc.fill_null(pc.cast(items, pa.string()), "") if dtype == "string" else None
    if pa.types.is_integer(items.type):
        if dtype == "string":  # str(int) and Arrow's int -> string cast agree
            return pc.fill_null(pc.cast(items, pa.string()), "")
        return pc.fill_null(pc.cast(items, pa.int64()), -1)
    return None


def _arrow_type(dtype: str) -> pa.DataType:
    return pa.string() if dtype == "string" else pa.int64()


def _scalars(array: pa.Array, spec: FeatureSpec) -> pa.Array | None:
    """A scalar categorical column cleaned as ``normalise_categorical`` does, or None."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.fill_null(pc.cast(array, pa.string()), "") if spec.dtype == "string" else None
    if pa.types.is_integer(kind) and kind != pa.uint64():
        if spec.dtype == "string":
            return pc.fill_null(pc.cast(array, pa.string()), "")
        return pc.fill_null(pc.cast(array, pa.int64()), -1)
    return None


def _fast_column(array: pa.Array, spec: FeatureSpec, row_ids, nan_policy: str, source: str):
    """The compact column on Arrow buffers, or None when the frame path must clean it."""
    if spec.kind == "numeric":
        if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
            return None
        values = pd.Series(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False))
        clean = tabular._clean_numeric(values.set_axis(row_ids), spec.name, nan_policy, source)
        return _Column(tf.constant(clean.to_numpy(np.float32)))
    if spec.kind == "multi_categorical":
        lists = normalise_list_array(array)
        items = None if lists is None else _items(lists.flatten(), spec.dtype)
        if items is None:
            return None
        splits = tf.constant(lists.offsets.to_numpy().astype(np.int64))
        if spec.dtype == "string":
            codes, dictionary = _coded(items)
            return _Column(codes, dictionary, splits)
        return _Column(tf.constant(items.to_numpy(zero_copy_only=False), tf.int64), None, splits)
    clean = _scalars(array, spec)
    if clean is None:
        return None
    if spec.dtype == "string":
        codes, dictionary = _coded(clean)
        return _Column(codes, dictionary)
    return _Column(tf.constant(clean.to_numpy(zero_copy_only=False), tf.int64))


def _frame_column(array: pa.Array, spec: FeatureSpec, row_ids, nan_policy: str, source: str):
    """The frame path's cleaning of one column, then the compact column of its result."""
    series = tabular.arrow_to_frame(pa.table({spec.name: array}))[spec.name].set_axis(row_ids)
    if spec.kind == "numeric":
        clean = tabular._clean_numeric(series, spec.name, nan_policy, source)
        return _Column(tf.constant(clean.to_numpy(np.float32)))
    clean = tabular.normalise_categorical(series, spec, source)
    if spec.kind == "multi_categorical":
        converted = list_array(clean)
        if converted is None:  # every cell empty: no item type to infer
            converted = pa.ListArray.from_arrays(
                pa.array(np.zeros(len(clean) + 1, np.int32)), pa.array([], _arrow_type(spec.dtype))
            )
        clean = converted
    else:
        clean = pa.array(clean.to_numpy(dtype=object), _arrow_type(spec.dtype))
    column = _fast_column(clean, spec, row_ids, nan_policy, source)
    if column is None:
        raise ValueError(f"{source}: column {spec.name!r} holds {clean.type} after cleaning.")
    return column


def _labels(column: pa.ChunkedArray, label: str, binary_label: bool, source: str) -> tf.Tensor:
    series = tabular.arrow_to_frame(pa.table({label: column}))[label]
    if binary_label:
        return tf.constant(tabular._binary_label(series, label, source).to_numpy(np.float32))
    values = pd.to_numeric(series, errors="coerce")
    if not np.isfinite(values.to_numpy(np.float64)).all():
        raise ValueError(f"{source}: label {label!r} has missing, non-numeric or infinite values.")
    return tf.constant(values.to_numpy(np.float32))


class ArrowSource:
    """Rows cleaned from an Arrow table, held as compact tensors: a ``BatchSource``.

    Build it with ``from_table`` (or ``prepare_table``). Its batches are those of
    ``to_dataset`` over the same rows cleaned by ``validate_frame``.

    Args:
        columns: The compact columns, one per feature.
        labels: float32 labels, or None.
        features: The candidate features.
        label: The label column, or None.
        num_rows: Rows held.

    Example:
        >>> source = ArrowSource.from_table(pq.read_table("valid.parquet"), features, "clicked")
        >>> source.num_rows
    """

    def __init__(self, columns, labels, features: FeatureSet, label: str | None, num_rows: int):
        self._columns, self._labels = columns, labels
        self.features, self.label, self.num_rows = features, label, num_rows

    @classmethod
    def from_table(
        cls,
        table: pa.Table,
        features: FeatureSet,
        label: str | None,
        *,
        nan_policy: str = "raise",
        binary_label: bool = True,
        source: str = "data",
        row_ids: np.ndarray | None = None,
    ) -> ArrowSource:
        """Cleans every feature (and the label) of ``table`` as ``validate_frame`` would.

        Args:
            table: The rows.
            features: The features to hold; each must be a column.
            label: The label column, or None.
            nan_policy: ``"raise"`` or ``"impute"``.
            binary_label: Require a 0/1 label.
            source: Names the data in error messages.
            row_ids: Each row's index in error messages (its position in the file).

        Raises:
            MissingColumnError: A feature or the label is not a column.
            ValueError: Values ``validate_frame`` rejects, with its messages.
        """
        if nan_policy not in tabular.NAN_POLICIES:
            raise ValueError(
                f"nan_policy must be one of {tabular.NAN_POLICIES}, got {nan_policy!r}."
            )
        missing = [n for n in features.names if n not in table.column_names]
        if missing:
            raise MissingColumnError(
                f"{source}: feature column(s) {missing} required by the feature spec are "
                f"missing; available columns: {table.column_names}."
            )
        row_ids = np.arange(table.num_rows) if row_ids is None else np.asarray(row_ids)
        columns = {}
        for spec in features:
            array = _combined(table.column(spec.name))
            column = _fast_column(array, spec, row_ids, nan_policy, source)
            if column is None:
                column = _frame_column(array, spec, row_ids, nan_policy, source)
            columns[spec.name] = column
        labels = None
        if label is not None:
            if label not in table.column_names:
                raise MissingColumnError(
                    f"{source}: label column {label!r} not found; available columns: "
                    f"{table.column_names}."
                )
            labels = _labels(table.column(label), label, binary_label, source)
        return cls(columns, labels, features, label, table.num_rows)

    def _gather(self, rows: tf.Tensor):
        inputs = {name: column.take(rows) for name, column in self._columns.items()}
        return inputs if self._labels is None else (inputs, tf.gather(self._labels, rows))

    def dataset(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = False,
        num_epochs: int | None = 1,
        skip_batches: int = 0,
    ) -> tf.data.Dataset:
        """Batches in ``to_dataset``'s order for the same seed (see ``frame_dataset.row_batches``)."""
        if num_epochs not in (None, 1):
            raise ValueError(f"ArrowSource reads once or forever, not {num_epochs} epochs.")
        return frame_dataset.row_batches(
            self.num_rows,
            self._gather,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=num_epochs is None,
            skip_batches=skip_batches,
        )

    def sample_frame(self, rows: int) -> pd.DataFrame:
        """The first ``rows`` rows as a small frame (lists for multi-valent features)."""
        batch = self._gather(tf.range(min(int(rows), self.num_rows), dtype=tf.int64))
        inputs, labels = batch if isinstance(batch, tuple) else (batch, None)
        columns = {name: python_cells(value) for name, value in inputs.items()}
        if labels is not None:
            columns[self.label] = labels.numpy().tolist()
        return pd.DataFrame(columns)


def _combined(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
