"""Checks and error messages for ``FileStream``: which shard, which feature, what to do.

Private to ``recsel.inputs``. Cheap checks run up front on the first shard (columns
present, types agreeing with the feature spec, i.e. with the statistics it came
from). Errors that only show mid-stream (a corrupt shard, a feature missing from some
shards) surface inside ``tf.data`` without a file name; ``find_bad_shard`` then scans
the shards one by one to name the culprit. That scan runs only on failure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import tensorflow as tf
from google.protobuf.message import DecodeError

from recsel.inputs.paths import gzipped, open_bytes, tfrecord_compression
from recsel.inputs.table_io import MissingColumnError
from recsel.spec.features import FeatureSet

KIND_DTYPES = {"bytes_list": "string", "int64_list": "int64", "float_list": "float32"}
_STATS_HINT = (
    "The feature spec (and the statistics it was built from) does not match the data: "
    "recompute the statistics on these files, or fix the spec."
)


def first_record_kinds(path: str, fmt: str, columns: list[str]) -> dict[str, str]:
    """The value kind of each column in the first records (TFRecord) or the schema (Arrow).

    A TFRecord shard is read until every column has been seen, for at most
    ``KIND_SCAN_RECORDS`` records: an optional feature is absent from some records, and
    the first may be one of them.
    """
    if fmt == "tfrecord":
        found = tfrecord_kinds(path, columns)
    elif fmt == "parquet":
        try:
            schema = parquet_schema(path)
        except (pa.ArrowException, OSError) as err:
            raise ValueError(f"{path}: not a readable Parquet file ({err}).") from err
        found = {name: str(schema.field(name).type) for name in schema.names}
    else:
        found = {name: "csv" for name in csv_header(path)}
    missing = [c for c in columns if c not in found]
    if missing:
        where = f"{KIND_SCAN_RECORDS:,} records" if fmt == "tfrecord" else "shard"
        raise MissingColumnError(
            f"{path}: feature(s) {missing} not found in the first {where}; it has: "
            f"{sorted(found)}. {_STATS_HINT}"
        )
    return {c: found[c] for c in columns}


# Records of a TFRecord shard read, at most, to find the value kind of every column.
KIND_SCAN_RECORDS = 1000


def tfrecord_kinds(path: str, columns: Collection[str] = ()) -> dict[str, str]:
    """Feature -> value kind (``int64_list``...) in a TFRecord shard's first records: the
    first, and more until every one of ``columns`` is seen (``KIND_SCAN_RECORDS`` at most)."""
    found: dict[str, str] = {}
    wanted, read = set(columns), 0
    try:
        records = tf.data.TFRecordDataset(path, compression_type=tfrecord_compression(path))
        for record in records.take(KIND_SCAN_RECORDS).as_numpy_iterator():
            read += 1
            for name, feature in tf.train.Example.FromString(record).features.feature.items():
                found.setdefault(name, feature.WhichOneof("kind"))
            if wanted <= found.keys():
                break
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, DecodeError) as err:
        raise ValueError(_corrupt(path, err)) from err
    if not read:
        raise ValueError(f"{path}: the shard holds no records; remove it or rewrite it.")
    return found


def csv_header(path: str) -> list[str]:
    """The column names on a CSV shard's first line (``.csv.gz`` decompressed)."""
    try:
        with open_bytes(path) as f:
            line = f.readline().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV shard ({err}).") from err
    return [name.strip() for name in line.rstrip("\r\n").split(",")]


def first_corrupt_tfrecord(files: list[str]) -> str | None:
    """The first TFRecord shard that does not read to its end, if any (only on failure)."""
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(
                path, compression_type=tfrecord_compression(path)
            ).batch(4096):
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
            return path
    return None


def check_kinds(kinds: dict[str, str], features: FeatureSet, label: str | None, path: str) -> None:
    """Raises if a column's stored type cannot feed its feature spec."""
    for name, kind in kinds.items():
        if kind == "csv":
            continue  # CSV is text: ConvertOptions types it from the spec, per shard
        if name == label:
            ok = _is_number(kind)
            want = "a number (0/1)"
        else:
            spec = features[name]
            ok, want = _fits(kind, spec.kind, spec.dtype)
        if not ok:
            raise ValueError(
                f"{path}: feature {name!r} is stored as {kind}, but the spec needs {want}. "
                f"{_STATS_HINT}"
            )


def _is_number(kind: str) -> bool:
    return (
        kind in ("int64_list", "float_list")
        or any(t in kind for t in ("int", "float", "double", "bool"))
        and not kind.startswith(("list", "large_list"))
    )


def _scalar_of(kind: str, dtype: str) -> bool:
    """An Arrow scalar type (as ``str(type)``) that holds ``dtype`` values: text or
    pandas categories of text for strings, integers for int64."""
    if dtype == "string":
        return kind in ("string", "large_string") or kind.startswith("dictionary<values=string")
    return kind.startswith(("int", "uint", "dictionary<values=int"))


def _fits(kind: str, spec_kind: str, dtype: str) -> tuple[bool, str]:
    is_list = kind.startswith(("list", "large_list"))
    if kind in KIND_DTYPES:  # tf.Example: lists and scalars share a kind
        if spec_kind == "numeric":
            return kind != "bytes_list", "int64_list or float_list values"
        want = {"string": "bytes_list", "int64": "int64_list"}[dtype]
        return kind == want, f"{want} values ({dtype} {spec_kind})"
    if spec_kind == "multi_categorical":  # a scalar column: one value per row, or CSV text
        return is_list or _scalar_of(kind, dtype), f"a list column of {dtype}"
    if spec_kind == "numeric":
        return _is_number(kind), "a numeric column"
    if dtype == "string":
        return not is_list, "a scalar column (strings, or numbers read as text)"
    return not is_list and "int" in kind, "an integer column"  # dictionary<values=int...> too


def arrow_record_batches(
    path: str, fmt: str, columns: list[str], csv_types: dict[str, pa.DataType], rows: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of one Parquet or CSV shard, with errors that name the shard."""
    try:
        with _open_arrow(path) if fmt == "parquet" else open_csv_shard(path) as f:
            if fmt == "parquet":
                reader = pq.ParquetFile(f)
                missing = [c for c in columns if c not in reader.schema_arrow.names]
                if missing:
                    raise MissingColumnError(
                        f"{path}: feature(s) {missing} missing from this shard (other shards "
                        f"have them); it has: {reader.schema_arrow.names}. {_STATS_HINT}"
                    )
                yield from reader.iter_batches(batch_size=rows, columns=columns)
            else:
                convert = pacsv.ConvertOptions(column_types=csv_types, include_columns=columns)
                reader = pacsv.open_csv(f, convert_options=convert)
                yield from reader
    except pa.ArrowInvalid as err:
        raise ValueError(
            f"{path}: cannot be read with the feature spec's types ({err}). {_STATS_HINT}"
        ) from err
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable {fmt} shard ({err}).") from err


def csv_inferred_schema(path: str) -> pa.Schema:
    """The Arrow types a CSV shard's first block (1 MiB) infers for its columns."""
    with open_csv_shard(path) as f:
        return pacsv.open_csv(f).schema


def parquet_schema(path: str) -> pa.Schema:
    """A Parquet shard's Arrow schema, from its footer (the shard is not read)."""
    with _open_arrow(path) as f:
        return pq.ParquetFile(f).schema_arrow


def open_csv_shard(path: str):
    """A CSV shard as an Arrow input stream, decompressed when it is ``.csv.gz``."""
    f = _open_arrow(path)
    return pa.CompressedInputStream(f, "gzip") if gzipped(path) else f


def _open_arrow(path: str):
    """A seekable Arrow file: a local path is memory-mapped, a remote one (gs://) wrapped."""
    if "://" not in path:
        return pa.memory_map(path, "r")
    return pa.PythonFile(tf.io.gfile.GFile(path, "rb"), mode="r")


def _corrupt(path: str, err: Exception) -> str:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"{path}: corrupt TFRecord shard, or not one (name gzip-compressed shards *.gz). "
        f"Reader said: {first_line}. Rewrite or remove this shard."
    )


def find_bad_shard(stream, error: Exception) -> Exception:
    """Scans ``stream``'s shards for the one behind ``error``; returns a clear error.

    Args:
        stream: The ``FileStream`` whose dataset raised.
        error: What ``tf.data`` raised (it names neither the file nor, for a corrupt
            shard, the cause).

    Returns:
        A ``ValueError`` naming the shard (and the feature when one is missing), or the
        original error when no single shard is at fault.
    """
    for path in stream.files:
        try:
            if stream.format == "tfrecord":
                records = tf.data.TFRecordDataset(path, compression_type=tfrecord_compression(path))
                for batch in records.batch(4096):
                    tf.io.parse_example(batch, stream._parse_spec())
            else:
                for batch in stream.arrow_batches(path):  # read, cast and encode
                    stream._encoder.encode(batch, path)
        except tf.errors.DataLossError as err:
            return ValueError(_corrupt(path, err))
        except tf.errors.InvalidArgumentError as err:
            message = str(err).strip().splitlines()[0]
            return ValueError(
                f"{path}: records in this shard do not parse with the feature spec ({message}). "
                "A feature missing from some records needs a default or must be declared as a "
                f"list; otherwise {_STATS_HINT[0].lower()}{_STATS_HINT[1:]}"
            )
        except ValueError as err:  # already names the shard (Arrow paths)
            return err
    return error
