"""Shards for ``stream_scale``: generated column-wise, serialised in C++, cached.

Each chunk is ``make_synthetic`` with its own row seed and one shared ``CONCEPT_SEED``,
so every chunk holds fresh rows of the same problem (the same informative columns and
effects), as the shards of one data set do; the columns are renamed by role (``inf0``,
``dup0``, ``noise0``, ...), and each chunk is written as one TFRecord and one Parquet
shard. (Before ``WRITER_VERSION`` 2 the row seed drew the effects too, so each shard was
a different concept and the validation AUC was 0.45-0.57.) Serialisation goes through Arrow: the columns are renamed with
``pyarrow.compute`` and encoded to tf.Examples by tfx_bsl's C++
``RecordBatchToExamplesEncoder``, never row by row in Python (that took 1628 s for the
16 chunks of the full mode; this takes a few seconds per chunk).

The shards are cached under ``~/.cache/recsel/bench/stream_scale/<key>``, where the key
hashes the generator parameters, the generator's source and ``WRITER_VERSION``, so a
changed generator never reuses stale shards. Every file is written to a temporary
name and renamed, so a killed run leaves no half-written shard behind.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CACHE = Path(os.environ.get("RECSEL_BENCH_CACHE", Path.home() / ".cache/recsel/bench"))
VALID_SEED, FIRST_SEED = 999, 1000  # row seeds: the validation chunk's, the first shard's
CONCEPT_SEED = 1000  # one concept for every shard and the validation rows
# Bump when the shards' content or layout changes (the cache key includes it).
WRITER_VERSION = 2


def cache_root(chunk_rows: int, shape: dict) -> Path:
    """The cache directory of shards made with these parameters (and this code)."""
    import recsel.data.synthetic as synthetic

    key = json.dumps(
        {
            "chunk_rows": chunk_rows,
            "shape": shape,
            "seeds": [FIRST_SEED, VALID_SEED],
            "concept_seed": CONCEPT_SEED,
            "generator": hashlib.sha256(inspect.getsource(synthetic).encode()).hexdigest(),
            "writer": WRITER_VERSION,
        },
        sort_keys=True,
    )
    return CACHE / "stream_scale" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _roles(data) -> dict[str, str]:
    roles = {n: f"inf{i}" for i, n in enumerate(data.informative)}
    roles.update({n: f"dup{i}" for i, n in enumerate(data.duplicates)})  # generation order
    roles.update({n: f"noise{i}" for i, n in enumerate(data.noise)})
    return roles


def _renamed(column: pa.ChunkedArray, old: str, new: str) -> pa.Array:
    """The column with each value's ``old`` name prefix replaced by ``new`` (vectorised)."""
    column = column.combine_chunks()
    pattern = "^" + old
    if pa.types.is_list(column.type):
        offsets = column.offsets
        values = pc.replace_substring_regex(column.values, pattern, new, max_replacements=1)
        return pa.ListArray.from_arrays(offsets, values)
    if pa.types.is_string(column.type):
        return pc.replace_substring_regex(column, pattern, new, max_replacements=1)
    return column


def canonical_table(data) -> pa.Table:
    """The chunk as an Arrow table with role names, columns sorted, the label last."""
    source = pa.Table.from_pandas(data.frame, preserve_index=False)
    roles = _roles(data)
    columns = {new: _renamed(source.column(old), old, new) for old, new in roles.items()}
    names = sorted(columns)
    label = np.asarray(data.frame[data.label].to_numpy(), np.float32)
    return pa.table([*(columns[n] for n in names), pa.array(label)], names=[*names, data.label])


def _check_clean(table: pa.Table, path: Path) -> None:
    for name, column in zip(table.column_names, table.columns):
        if column.null_count:
            raise ValueError(f"{path}: generated column {name!r} holds nulls; fix the generator.")
        if pa.types.is_floating(column.type) and not np.isfinite(column.to_numpy()).all():
            raise ValueError(f"{path}: generated column {name!r} holds NaN or inf.")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _as_lists(table: pa.Table) -> pa.Table:
    """Every column as a list column of binary, int64 or float32 (the encoder's forms)."""
    columns = []
    for column in table.columns:
        column = column.combine_chunks()
        if pa.types.is_list(column.type):
            offsets, values = column.offsets, column.values
        else:
            offsets, values = pa.array(np.arange(len(column) + 1, dtype=np.int32)), column
        if pa.types.is_floating(values.type):
            values = pc.cast(values, pa.float32())
        elif pa.types.is_string(values.type):
            values = pc.cast(values, pa.binary())
        columns.append(pa.ListArray.from_arrays(offsets, values))
    return pa.table(columns, names=table.column_names)


def write_tfrecord(table: pa.Table, label: str, path: Path) -> None:
    """``table`` as tf.Examples (the label as int64, as ``serialize_examples`` writes it)."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    index = table.column_names.index(label)
    table = _as_lists(table.set_column(index, label, pc.cast(table.column(label), pa.int64())))
    encoder = example_coder.RecordBatchToExamplesEncoder()

    def write(tmp: Path) -> None:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for batch in table.to_batches(max_chunksize=8192):
                for record in encoder.encode(batch):
                    writer.write(record)

    _atomic(path, write)


def write_chunks(root: Path, chunk_rows: int, chunks: int, shape: dict) -> dict:
    """Makes sure ``root`` holds ``chunks`` TFRecord + Parquet shards and ``valid.tfrecord``.

    Chunks already in the cache are kept; missing ones are generated.

    Returns:
        ``{"features": path of features.json, "label": label, "generated": chunks written}``.
    """
    from recsel.data.synthetic import make_synthetic
    from recsel.inputs.inference import infer_feature_set
    from recsel.inputs.tabular import validate_frame

    root.mkdir(parents=True, exist_ok=True)
    generated, label = 0, None
    features_path = root / "features.json"
    for chunk in [*range(chunks), None]:  # None: the held-out validation chunk
        if chunk is None:
            names = [root / "valid.tfrecord"]
            rows, seed = min(chunk_rows, 20_000), VALID_SEED
        else:
            names = [root / f"part-{chunk:05d}.{ext}" for ext in ("tfrecord", "parquet")]
            rows, seed = chunk_rows, FIRST_SEED + chunk
        if all(n.exists() for n in names) and (chunk != 0 or features_path.exists()):
            continue
        data = make_synthetic(n_rows=rows, seed=seed, concept_seed=CONCEPT_SEED, **shape)
        label = data.label
        table = canonical_table(data)
        _check_clean(table, names[0])
        if chunk == 0:  # every chunk has the same vocabularies, by construction
            frame = table.to_pandas()
            features = infer_feature_set(frame, data.label, embedding_dim=16)
            validate_frame(frame, features, data.label)  # the spec fits the data
            del frame
            features.to_json(str(features_path))  # atomic
        write_tfrecord(table, data.label, names[0])
        if len(names) > 1:
            _atomic(names[1], lambda tmp, table=table: pq.write_table(table, tmp))
        generated += 1
    if label is None:
        label = json.loads((root / "features.json").read_text()).get("label")
    return {"features": str(root / "features.json"), "label": label, "generated": generated}
