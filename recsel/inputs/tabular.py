"""Reading user tables, checking them against a ``FeatureSet`` and feeding ``tf.data``.

The flow is ``read_table`` -> ``validate_frame`` -> ``split_frame`` -> ``to_dataset``.
Frames hold one column per feature: scalars, or Python lists for multi-valent features.

Example:
    >>> frame = read_table("data/train.parquet", label="clicked")
    >>> frame = validate_frame(frame, features, "clicked", nan_policy="impute")
    >>> train, valid = split_frame(frame, validation_fraction=0.2, seed=0)
    >>> dataset = to_dataset(train, features, "clicked", batch_size=256, shuffle=True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recsel.inputs.paths import SUPPORTED_EXTENSIONS, format_of, resolve_files
from recsel.inputs.table_io import (
    _LIST_TYPES,
    MissingColumnError,
    arrow_to_frame,
    clean_list_values,
    holds_lists,
    list_array,
    read_csv,
    read_parquet,
    read_tfrecord,
    rows_of,
    split_list_cells,
)
from recsel.spec.features import MISSING_CATEGORY, FeatureSet, FeatureSpec

__all__ = [
    "MissingColumnError",
    "NAN_POLICIES",
    "SUPPORTED_EXTENSIONS",
    "arrow_to_frame",
    "normalise_categorical",
    "read_table",
    "validate_frame",
]

NAN_POLICIES = ("raise", "impute")
_LABEL_WORDS = {"0": 0.0, "1": 1.0, "true": 1.0, "false": 0.0}


def read_table(
    path: str,
    label: str | None = None,
    *,
    list_separator: str | None = None,
    list_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Reads a CSV, Parquet or TFRecord (tf.Example) table, or a directory / glob of shards.

    CSV cannot hold lists: write multi-valent cells as strings joined by a separator
    (``"a|b|c"``) and pass ``list_separator="|"``, ``list_columns=["tags"]``; empty cells become
    empty lists, and lists whose items are all integer literals become int lists.
    Parquet list columns and tf.Example features that do not have exactly one value in
    every record become Python-list columns; tf.Example bytes are decoded to str.
    ``*.gz`` TFRecords are read as GZIP.

    Args:
        path: A file, a directory of shards (hidden and ``_``-prefixed files skipped) or a
            glob; local or any ``tf.io.gfile`` filesystem (``gs://``).
        label: If given, the label column, which must exist.
        list_separator: Separator of multi-valent string cells (see above).
        list_columns: Columns to split with ``list_separator``.

    Returns:
        The table as a DataFrame with a fresh ``RangeIndex``.

    Raises:
        FileNotFoundError: ``path`` matches nothing.
        ValueError: Unsupported extension, empty table, unreadable or corrupt file, shards
            with different schemas, or a missing label.

    Example:
        >>> frame = read_table("events.csv", label="clicked", list_separator="|", list_columns=["tags"])
    """
    list_columns = list(list_columns)
    if list_columns and not list_separator:
        raise ValueError(f"{path}: list_columns={list_columns} needs list_separator (e.g. '|').")
    files = resolve_files(path)
    fmt = format_of(files[0])
    if fmt == "parquet":
        frame = read_parquet(files)
    else:
        reader = read_csv if fmt == "csv" else read_tfrecord
        parts = [(f, reader(f)) for f in files]
        nonempty = [(f, p) for f, p in parts if len(p.columns)]
        for (f0, p0), (f1, p1) in itertools.pairwise(nonempty):
            if list(p0.columns) != list(p1.columns):
                raise ValueError(
                    f"Shards {f0} and {f1} have different columns: only in the first: "
                    f"{sorted(set(p0.columns) - set(p1.columns))}; only in the second: "
                    f"{sorted(set(p1.columns) - set(p0.columns))}."
                )
        frames = [p for _, p in nonempty]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(frame) == 0:
        where = files[0] if len(files) == 1 else f"{path} ({len(files)} shards)"
        raise ValueError(f"{where} has no rows.")
    frame = frame.reset_index(drop=True)
    if list_columns:
        split_list_cells(frame, list_columns, list_separator, path)
    if label is not None and label not in frame.columns:
        raise MissingColumnError(
            f"{path}: label column {label!r} not found; columns: {list(frame.columns)}."
        )
    return frame


def numpy_backed(series: pd.Series) -> pd.Series:
    """A pandas nullable column (``Int64``, ``Float64``, ``boolean``) in the NumPy form the
    rules read, as ``read_csv`` without ``dtype_backend`` gives it: numbers with a missing
    value become float64 with NaN, booleans with one objects with None, and a column with
    none its NumPy dtype. Other columns are returned as they are.

    Example:
        >>> numpy_backed(pd.Series([1, None], dtype="Int64")).tolist()
        [1.0, nan]
    """
    dtype = series.dtype
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or dtype.kind not in "iufb":
        return series
    missing = series.isna()
    if not missing.any():
        return series.astype(dtype.numpy_dtype)
    if dtype.kind == "b":
        return series.astype(object).where(~missing, None)
    return series.astype(np.float64)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _clean_scalars(values: pd.Series, dtype: str) -> pd.Series:
    """Vectorised cleaning of scalar categorical values: missing -> "" / -1."""
    if dtype == "string":
        out = values.astype(object).where(~values.isna(), MISSING_CATEGORY["string"])
        if pd.api.types.infer_dtype(out, skipna=False) != "string":
            out = out.map(_as_str)
        return out.astype(object)
    if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(np.int64)
    numbers = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_integer_dtype(numbers.dtype):  # all ints: no float round trip (IDs > 2**53)
        return numbers.astype(np.int64)
    bad = numbers.isna() & ~values.isna()
    arr = numbers.to_numpy(np.float64)
    bad |= np.isfinite(arr) & (arr != np.round(arr))
    if bad.any():
        raise ValueError(f"non-integer values such as {values[bad].unique()[:3].tolist()}")
    missing = MISSING_CATEGORY["int64"]
    return pd.Series(np.where(np.isnan(arr), missing, arr).astype(np.int64), index=values.index)


def _plain_lists(series: pd.Series, array: pa.ListArray) -> bool:
    """True if every cell is a Python list and no cell or item is missing."""
    if array.flatten().null_count or series.isna().any():
        return False
    return all(type(cell) is list for cell in series)


def _clean_lists_arrow(series: pd.Series, dtype: str) -> pd.Series | None:
    """The multi-valent cleaning on Arrow offsets and values, or None for the per-cell path.

    One conversion to an Arrow list array, one vectorised cleaning of the flat items, one
    slicing back into rows: no Python work per cell besides building the output lists.
    """
    array = list_array(series)
    if array is None:
        return None
    items = array.type.value_type
    if (
        pa.types.is_string(items) if dtype == "string" else pa.types.is_integer(items)
    ) and _plain_lists(series, array):
        # Already clean: share the cells (a new Series, the same list objects) rather than
        # rebuild millions of identical lists.
        return series.copy()
    flat = clean_list_values(array.flatten(), dtype)
    if flat is None:
        return None
    rows = rows_of(flat.tolist(), array.offsets.to_numpy())
    return pd.Series(rows, index=series.index, dtype=object)


def normalise_categorical(series: pd.Series, spec: FeatureSpec, source: str = "data") -> pd.Series:
    """Cleans one categorical column: missing -> ``""`` / ``-1`` (OOV), values -> str / int.

    Multi-valent cells become lists (a missing cell is ``[]``, a scalar ``[value]``, and
    missing items become ``""`` / ``-1``). A column that needs no cleaning (Python lists of
    the right item type, nothing missing) shares its list objects with the result.

    Args:
        series: The raw column.
        spec: Its categorical or multi_categorical spec.
        source: Names the data in error messages.

    Returns:
        A new Series (object dtype of str / lists, or int64).

    Example:
        >>> normalise_categorical(pd.Series(["a", None]), spec).tolist()
        ['a', '']
    """
    where = f"{source}: column {spec.name!r}"
    try:
        if spec.kind == "multi_categorical":
            fast = _clean_lists_arrow(series, spec.dtype)
            if fast is not None:
                return fast
            cells = [
                list(c) if isinstance(c, _LIST_TYPES) else [] if _is_missing(c) else [c]
                for c in series
            ]
            # Clean all items at once, then cut them back into rows: far faster than per cell.
            flat = _clean_scalars(
                pd.Series(list(itertools.chain.from_iterable(cells)), dtype=object), spec.dtype
            )
            flat_list = flat.tolist()
            ends = np.cumsum([len(c) for c in cells]).tolist()
            rows = [flat_list[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
            return pd.Series(rows, index=series.index, dtype=object)
        if holds_lists(series):
            raise ValueError(
                "holds lists, but the spec says scalar 'categorical'; use 'multi_categorical'"
            )
        return _clean_scalars(series, spec.dtype).set_axis(series.index)
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where} (categorical {spec.dtype}): {err}.") from err


def _clean_numeric(series: pd.Series, name: str, nan_policy: str, source: str) -> pd.Series:
    where = f"{source}: numeric feature {name!r}"
    if holds_lists(series):
        raise ValueError(f"{where} holds lists; numeric features must be scalar.")
    values = pd.to_numeric(series, errors="coerce").astype(np.float64)
    bad = values.isna() & ~series.isna()
    if bad.any():
        raise ValueError(
            f"{where} has non-numeric values such as {series[bad].unique()[:3].tolist()}."
        )
    arr = values.to_numpy(copy=True)
    nonfinite = ~np.isfinite(arr)
    if nonfinite.any():
        if nan_policy == "raise":
            first = series.index[int(np.argmax(nonfinite))]
            raise ValueError(
                f"{where} has {int(nonfinite.sum())} NaN/missing or ±inf value(s); the first is at "
                f"row index {first!r}. Clean the column, or pass nan_policy='impute' to replace "
                "them with the column's finite mean."
            )
        if nonfinite.all():
            raise ValueError(
                f"{where} has no finite values to impute from; drop or fix the column."
            )
        arr[nonfinite] = arr[~nonfinite].mean()
    return pd.Series(arr, index=series.index, name=series.name)


def _binary_label(series: pd.Series, label: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(np.float32)
    if pd.api.types.is_numeric_dtype(series):
        out, bad = series.astype(np.float64), ~series.isin([0, 1])
    else:

        def to01(v: Any) -> float:
            if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)) and v in (0, 1):
                return float(v)
            return _LABEL_WORDS.get(v.strip().lower(), np.nan) if isinstance(v, str) else np.nan

        out = series.map(to01).astype(np.float64)
        bad = out.isna()
    if bad.any() and series[bad].isna().all():
        raise ValueError(
            f"{source}: label {label!r} is missing in {int(bad.sum())} of {len(series)} "
            "row(s); drop those rows, or fill them, before selecting."
        )
    if bad.any():
        examples = series[bad].unique()[:5].tolist()
        # Text classes ('<=50K'/'>50K'): name one as the positive; numbers: a threshold.
        texts = [v for v in series.dropna().unique()[:3] if isinstance(v, str)]
        rule = f"== {texts[-1]!r}" if texts else "> threshold"
        raise ValueError(
            f"{source}: label {label!r} must be binary (0/1, True/False, '0'/'1', 'true'/'false'); "
            f"{int(bad.sum())} row(s) are not, e.g. {examples}. Binarise it first, e.g. "
            f"frame[{label!r}] = (frame[{label!r}] {rule}).astype(int), or drop rows "
            "with a missing label (or pass binary_label=False for a real-valued label)."
        )
    return out.astype(np.float32)


def validate_frame(
    frame: pd.DataFrame,
    features: FeatureSet,
    label: str,
    binary_label: bool = True,
    nan_policy: str = "raise",
    source: str = "data",
) -> pd.DataFrame:
    """Checks a frame against the feature set and returns a cleaned copy.

    Numeric features become float64; NaN / ±inf either raise (``nan_policy="raise"``) or are
    replaced by the column's own finite mean (``"impute"``). Missing categorical values become
    ``""`` (string) or ``-1`` (int64), which the lookups map to an OOV bucket. The label
    becomes float32 0/1. Other columns are kept unchanged; the input is never modified.

    Args:
        frame: The raw table, e.g. from ``read_table``.
        features: The feature set; every feature must be a column.
        label: The label column.
        binary_label: Require a 0/1 label (bool, 0/1 numbers, "0"/"1"/"true"/"false").
            If False, the label must be numeric and finite.
        nan_policy: ``"raise"`` or ``"impute"``.
        source: Names the data (e.g. a file path) in error messages.

    Returns:
        The cleaned copy.

    Raises:
        MissingColumnError: A feature or the label is not a column.
        ValueError: Non-binary label, non-finite numeric values under ``"raise"``, or values
            of the wrong type.

    Example:
        >>> clean = validate_frame(frame, features, "clicked", nan_policy="impute", source=path)
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}.")
    missing = [n for n in features.names if n not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"{source}: feature column(s) {missing} required by the feature spec are missing; "
            f"available columns: {list(frame.columns)}."
        )
    if label not in frame.columns:
        raise MissingColumnError(
            f"{source}: label column {label!r} not found; available columns: {list(frame.columns)}."
        )
    # Cleaned columns are collected and the frame is built once: assigning hundreds of
    # columns into a copy one by one rewrites its consolidated blocks each time (quadratic).
    out = {name: frame[name] for name in frame.columns}
    for spec in features:
        column = numpy_backed(frame[spec.name])
        if spec.kind == "numeric":
            out[spec.name] = _clean_numeric(column, spec.name, nan_policy, source)
        else:
            out[spec.name] = normalise_categorical(column, spec, source)
    if binary_label:
        out[label] = _binary_label(numpy_backed(frame[label]), label, source)
    else:
        values = pd.to_numeric(numpy_backed(frame[label]), errors="coerce")
        if not np.isfinite(values.to_numpy(np.float64)).all():
            raise ValueError(
                f"{source}: label {label!r} has missing, non-numeric or infinite values."
            )
        out[label] = values.astype(np.float32)
    return pd.DataFrame(out, index=frame.index, copy=True)
