"""Writes a DataFrame as TFRecord (tf.Example) or Parquet shards, fast, for tests and benchmarks.

tf.Example encoding goes through ``tfx_bsl`` (C++, whole record batches at once): building
200k Examples one by one in Python takes longer than the pruning job that reads them.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _as_lists(table: pa.Table) -> pa.Table:
    """tf.Example holds lists of bytes / int64 / float: wrap scalars, strings become bytes."""
    columns = []
    for column in table.columns:
        column = column.combine_chunks()
        if not pa.types.is_list(column.type):
            offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32))
            column = pa.ListArray.from_arrays(offsets, column)
        if pa.types.is_string(column.type.value_type):
            column = column.cast(pa.list_(pa.binary()))
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def write_shards(
    frame: pd.DataFrame,
    directory: str,
    fmt: str,
    num_shards: int = 4,
    compressed: bool = False,
    row_group_size: int = 20_000,
) -> list[str]:
    """Writes ``frame`` as ``num_shards`` files ``data-SSSSS-of-NNNNN.<ext>`` in ``directory``.

    Args:
        frame: Scalar columns (str, int, float) and list columns (lists of str / int).
        directory: Local destination directory (created).
        fmt: ``tfrecord`` or ``parquet``.
        num_shards: Files to write (contiguous row ranges).
        compressed: GZIP the TFRecord files (``.tfrecord.gz``).
        row_group_size: Parquet rows per row group.

    Returns:
        The written paths.

    Example:
        >>> write_shards(make_synthetic(n_rows=1000).frame, "/tmp/data", "tfrecord")
    """
    if fmt not in ("tfrecord", "parquet"):
        raise ValueError(f"fmt must be 'tfrecord' or 'parquet', got {fmt!r}.")
    os.makedirs(directory, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    bounds = np.linspace(0, len(frame), num_shards + 1).astype(int)
    ext = ".parquet" if fmt == "parquet" else ".tfrecord.gz" if compressed else ".tfrecord"
    paths = []
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        path = os.path.join(directory, f"data-{i:05d}-of-{num_shards:05d}{ext}")
        part = table.slice(start, stop - start)
        if fmt == "parquet":
            pq.write_table(part, path, row_group_size=row_group_size)
        else:
            import tensorflow as tf
            from tfx_bsl.coders import example_coder

            encoder = example_coder.RecordBatchToExamplesEncoder()
            with tf.io.TFRecordWriter(path, options="GZIP" if compressed else None) as writer:
                for batch in _as_lists(part).to_batches(max_chunksize=20_000):
                    for record in encoder.encode(batch):
                        writer.write(record)
        paths.append(path)
    return paths
