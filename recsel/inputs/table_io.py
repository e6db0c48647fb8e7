"""Reading CSV, Parquet and TFRecord shards, and their list columns.

The frame reader (``recsel.inputs.tabular.read_table``), the streaming readers
(``recsel.inputs.readers``) and the Beam jobs share these pieces: reading a shard, list
cells, and the error that names a missing column. Which files a path means, and their
format, is ``recsel.inputs.paths``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import tensorflow as tf
from google.protobuf.message import DecodeError

from recsel.inputs.paths import gzipped

_LIST_TYPES = (list, tuple, np.ndarray)


class MissingColumnError(KeyError, ValueError):
    """A required column is absent; catchable as ``KeyError`` or ``ValueError``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def read_csv(path: str) -> pd.DataFrame:
    """One CSV file; an empty (zero-byte) file gives a frame without columns."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:  # GFile is not a full file object for pandas
            data = io.BytesIO(f.read())
        return pd.read_csv(data, compression="gzip" if gzipped(path) else None)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable CSV file ({err}).") from err


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Converts an Arrow table to pandas, with list columns as Python lists (not numpy arrays).

    Args:
        table: Any Arrow table.

    Returns:
        A DataFrame with the table's columns in order.

    Example:
        >>> arrow_to_frame(pa.table({"tags": [["a", "b"], []]}))["tags"][0]
        ['a', 'b']
    """
    is_list = [
        pa.types.is_list(f.type)
        or pa.types.is_large_list(f.type)
        or pa.types.is_fixed_size_list(f.type)
        for f in table.schema
    ]
    list_names = [f.name for f, flag in zip(table.schema, is_list, strict=True) if flag]
    # pandas metadata would turn a written index back into the index: the columns are the
    # table's own (a named index stays a column; an unnamed one, "__index_level_0__", is
    # then left out of the candidates by name, recsel.inputs.spec_rules).
    if not list_names:
        return table.to_pandas(ignore_metadata=True)
    frame = table.drop(list_names).to_pandas(ignore_metadata=True)
    # Collected, then joined once: inserting hundreds of columns one by one is quadratic.
    with gc_paused():
        lists = {
            name: pd.Series(_python_lists(table.column(name)), index=frame.index, dtype=object)
            for name in list_names
        }
    columns = {**{name: frame[name] for name in frame.columns}, **lists}
    return pd.DataFrame({name: columns[name] for name in table.column_names}, index=frame.index)


def _python_lists(column: pa.ChunkedArray) -> list:
    """A list column's cells as Python lists (None for null cells), built from flat buffers.

    Converting the flat items at once and slicing them into rows is several times faster
    than Arrow's per-cell ``to_pylist``; nested item types keep ``to_pylist``.
    """
    array = column.combine_chunks()
    items = array.type.value_type
    if not (
        pa.types.is_string(items)
        or pa.types.is_large_string(items)
        or pa.types.is_integer(items)
        or pa.types.is_floating(items)
        or pa.types.is_boolean(items)
    ):
        return array.to_pylist()
    values = array.flatten()  # skips the items under null cells
    if values.null_count:
        flat = values.to_pylist()
    elif pa.types.is_string(items) or pa.types.is_large_string(items):
        flat = shared_strings(values).tolist()
    else:
        flat = values.to_numpy(zero_copy_only=False).tolist()
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
    rows: list = rows_of(flat, np.concatenate([[0], np.cumsum(lengths)]))
    if array.null_count:
        for index in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)):
            rows[index] = None
    return rows


def read_parquet(files: list[str]) -> pd.DataFrame:
    """Parquet shards that must share one schema, concatenated in order."""
    return arrow_to_frame(read_parquet_table(files))


def read_parquet_table(files: list[str]) -> pa.Table:
    """Parquet shards that must share one schema, as one Arrow table (shards in order)."""
    tables = []
    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                tables.append((path, pq.read_table(pa.BufferReader(f.read()))))
        except (pa.ArrowException, OSError) as err:
            raise ValueError(f"{path}: not a readable Parquet file ({err}).") from err
    first_path, first = tables[0]
    for path, table in tables[1:]:
        if not table.schema.equals(first.schema, check_metadata=False):
            a = dict(zip(first.schema.names, first.schema.types, strict=True))
            b = dict(zip(table.schema.names, table.schema.types, strict=True))
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            typed = [f"{c} ({a[c]} vs {b[c]})" for c in a if c in b and a[c] != b[c]]
            raise ValueError(
                f"Parquet shards {first_path} and {path} have different schemas: columns only in "
                f"the first: {only_a}; only in the second: {only_b}; different types: {typed}. "
                "Rewrite the shards with one schema, or read them separately."
            )
    return pa.concat_tables([t for _, t in tables])


def read_tfrecord(path: str) -> pd.DataFrame:
    """Parses tf.Example records; one-value-in-every-row features become scalar columns."""
    compression = "GZIP" if path.lower().endswith(".gz") else ""
    columns: dict[str, list[list[Any]]] = {}
    kinds: dict[str, str] = {}
    rows = 0
    try:
        for record in tf.data.TFRecordDataset(
            path, compression_type=compression
        ).as_numpy_iterator():
            example = tf.train.Example.FromString(record)
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value) if kind else []
                if kind == "bytes_list":
                    values = [v.decode("utf-8") for v in values]
                if kind and kinds.setdefault(name, kind) != kind:
                    raise ValueError(
                        f"{path}: feature {name!r} is {kinds[name]} in one record and {kind} in another."
                    )
                if name not in columns:  # absent from earlier records: no values there
                    columns[name] = [[] for _ in range(rows)]
                columns[name].append(values)
            rows += 1
            for values in columns.values():
                if len(values) < rows:
                    values.append([])
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, DecodeError) as err:
        raise ValueError(
            f"{path}: corrupt TFRecord file, or not one (if it is gzip-compressed, name it "
            f"*.gz). Reader said: {err}"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: a bytes feature is not UTF-8 text ({err}).") from err
    data = {}
    for name in sorted(columns):
        cells = columns[name]
        if all(len(v) == 1 for v in cells):
            dtype = np.float32 if kinds.get(name) == "float_list" else None
            data[name] = pd.Series([v[0] for v in cells], dtype=dtype)
        else:
            data[name] = pd.Series(cells, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(rows))


def split_list_cells(frame: pd.DataFrame, columns: Iterable[str], sep: str, source: str) -> None:
    """Splits ``sep``-joined string cells of ``columns`` into lists, in place."""
    for name in columns:
        if name not in frame.columns:
            raise MissingColumnError(
                f"{source}: list column {name!r} not found; columns: {list(frame.columns)}."
            )

        def split(cell: Any) -> Any:
            if isinstance(cell, _LIST_TYPES):
                return list(cell)
            if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell == "":
                return []
            if isinstance(cell, float) and cell.is_integer():  # pandas read "3" as 3.0
                cell = int(cell)
            return str(cell).split(sep)

        cells = frame[name].map(split)
        flat = list(itertools.chain.from_iterable(cells))
        # CSV has no types; lists of integer literals are most likely IDs, so keep them int.
        if flat and all(isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) for v in flat):
            cells = cells.map(lambda vs: [int(v) for v in vs])
        frame[name] = cells


# ------------------------------------------------------- list columns on Arrow buffers
# infer_dtype names for columns whose cells cannot be lists; it scans in C, where an
# isinstance() per cell costs a Python call per row.
_SCALAR_INFERRED = frozenset(
    ("string", "bytes", "integer", "floating", "mixed-integer-float", "decimal", "complex",
     "boolean", "datetime64", "datetime", "date", "timedelta64", "timedelta", "time",
     "period", "interval", "empty", "categorical")
)  # fmt: skip


def holds_lists(series: pd.Series) -> bool:
    """Whether any cell of ``series`` is a list, tuple or numpy array.

    Args:
        series: Any column.

    Example:
        >>> holds_lists(pd.Series([["a"], []]))
        True
    """
    if series.dtype != object or len(series) == 0:
        return False
    if pd.api.types.infer_dtype(series, skipna=True) in _SCALAR_INFERRED:
        return False
    return any(isinstance(v, _LIST_TYPES) for v in series)  # stops at the first list


def list_array(series: pd.Series) -> pa.ListArray | None:
    """A list column as one Arrow list array (missing cells -> empty lists), or None.

    None means the cells are not uniformly lists of one item type (scalars mixed in,
    items of mixed types): callers fall back to their per-cell path, which handles
    and reports those cases.

    Args:
        series: A column of lists (Python lists, tuples or numpy arrays) and missing cells.

    Returns:
        A ``ListArray`` with offsets starting at 0 and no null lists, or None.

    Example:
        >>> list_array(pd.Series([["a", "b"], None])).offsets.to_pylist()
        [0, 2, 2]
    """
    try:
        array = pa.array(series.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return normalise_list_array(array)


def normalise_list_array(array: pa.Array | pa.ChunkedArray) -> pa.ListArray | None:
    """An Arrow list column as one ``ListArray`` with offsets from 0 and null lists as [].

    Args:
        array: Any Arrow array or chunked array.

    Returns:
        The normalised list array, or None if ``array`` is not a list type.

    Example:
        >>> normalise_list_array(pa.array([["a"], None])).offsets.to_pylist()
        [0, 1, 1]
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.cast(pa.list_(array.type.value_type))
    if not pa.types.is_list(array.type):
        return None
    if array.offset or array.null_count:  # rebuild: offsets from 0, null lists as []
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        array = pa.ListArray.from_arrays(pa.array(offsets), array.flatten())
    return array


def clean_list_values(values: pa.Array, dtype: str) -> np.ndarray | None:
    """Flat list items as ``dtype`` with missing items -> ``""`` / ``-1``, or None.

    Only string items (for ``string``) and integer items (for either dtype) are
    converted here; anything else returns None for the caller's per-item path, which
    has the exact conversion rules and error messages.

    Args:
        values: The flattened items of a ``list_array``.
        dtype: The feature's dtype, ``string`` or ``int64``.

    Example:
        >>> clean_list_values(pa.array(["a", None]), "string").tolist()
        ['a', '']
    """
    kind = values.type
    if pa.types.is_null(kind):
        return np.full(
            len(values), "" if dtype == "string" else -1, object if dtype == "string" else np.int64
        )
    if dtype == "string" and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return shared_strings(pc.fill_null(values, ""))
    if pa.types.is_integer(kind):
        if dtype == "string":  # str(int) and Arrow's int -> string cast agree
            return shared_strings(pc.fill_null(pc.cast(values, pa.string()), ""))
        if dtype == "int64":
            return pc.fill_null(pc.cast(values, pa.int64()), -1).to_numpy(zero_copy_only=False)
    return None


def shared_strings(values: pa.Array) -> np.ndarray:
    """A string array (no nulls) as an object array holding one ``str`` per distinct value.

    Multi-hot items repeat a small vocabulary; one Python string per item would cost
    ~50 bytes per item (gigabytes at hundreds of list columns), a shared one 8 bytes.

    Example:
        >>> shared_strings(pa.array(["a", "b", "a"])).tolist()
        ['a', 'b', 'a']
    """
    encoded = values.dictionary_encode()
    unique = np.asarray(encoded.dictionary.to_pylist() + [None], dtype=object)[:-1]
    return unique[encoded.indices.to_numpy(zero_copy_only=False)]


def rows_of(flat: list, offsets: np.ndarray) -> list[list]:
    """Cuts ``flat`` back into per-row lists at ``offsets`` (length rows + 1).

    Example:
        >>> rows_of(["a", "b", "c"], np.array([0, 2, 2, 3]))
        [['a', 'b'], [], ['c']]
    """
    bounds = offsets.tolist()
    with gc_paused():
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@contextlib.contextmanager
def gc_paused():
    """Pauses the cyclic GC while millions of small lists are built.

    Each allocation burst triggers collections that scan every live container (all the
    cells built so far); the lists of strings and ints built here cannot form cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
