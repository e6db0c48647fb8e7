"""The pruning job's input checks and streaming DoFns (TFRecord of tf.Example, Parquet).

Private: use ``recsel.beam.prune_dataset``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from recsel.inputs.table_io import MissingColumnError

NAMESPACE = "recsel.prune"
PRESENT_PREFIX = "present:"  # per-column presence counters of TFRecord inputs
_READ_BATCH = 512  # records per tf.data read: per-record eager iteration is slow


def _shorten(files: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def missing_columns_message(
    missing: Sequence[str], roles: dict[str, str], where: str, known: Sequence[str]
) -> str:
    """Names each missing column with its role (selected feature, label, kept column)."""
    named = "; ".join(f"{roles.get(c, 'column')} {c!r}" for c in missing)
    listed = ", ".join(list(known)[:30]) + (" ..." if len(known) > 30 else "")
    return (
        f"{where}: {named} not found. Columns there: {listed}. Check that the selection "
        "(--selection) was made on this data, and the spelling of --keep-columns."
    )


# --------------------------------------------------------------------------- Parquet
def parquet_footer(path: str) -> tuple[pa.Schema, int]:
    """A Parquet file's Arrow schema (without metadata) and row count, from its footer only."""
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            return parquet.schema_arrow.remove_metadata(), parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err}).") from err


def check_parquet(files: Sequence[str], kept: Sequence[str], roles: dict[str, str]):
    """Checks every shard's schema up front; returns ``(output schema, total rows)``.

    Raises:
        ValueError: A file is unreadable, or two shards have different schemas (both named).
        MissingColumnError: A kept column is not in the schema (the file is named).
    """
    first_schema, total = parquet_footer(files[0])
    for path in files[1:]:
        schema, rows = parquet_footer(path)
        total += rows
        if not schema.equals(first_schema):
            a = dict(zip(first_schema.names, first_schema.types, strict=True))
            b = dict(zip(schema.names, schema.types, strict=True))
            typed = [f"{c} ({a[c]} vs {b[c]})" for c in a if c in b and a[c] != b[c]]
            raise ValueError(
                f"Parquet shards {files[0]} and {path} have different schemas: columns only in the "
                f"first: {sorted(set(a) - set(b))}; only in the second: {sorted(set(b) - set(a))}; "
                f"different types: {typed}. Rewrite the shards with one schema, or prune them "
                "separately."
            )
    missing = [c for c in kept if c not in first_schema.names]
    if missing:
        where = (
            files[0] if len(files) == 1 else f"{files[0]} (and the other {len(files) - 1} shards)"
        )
        raise MissingColumnError(missing_columns_message(missing, roles, where, first_schema.names))
    fields = [first_schema.field(c) for c in first_schema.names if c in set(kept)]
    return pa.schema(fields), total


class PruneParquetBatch(beam.DoFn):
    """Keeps the output columns of one ``(file, row-group table)``; counts ``records_in``."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.records_in = Metrics.counter(NAMESPACE, "records_in")

    def process(self, element: tuple[str, pa.Table]) -> Iterator[pa.Table]:
        path, table = element
        self.records_in.inc(table.num_rows)
        try:
            table = table.select(self.schema.names)
        except KeyError as err:
            raise MissingColumnError(
                f"{path}: columns {self.schema.names} expected, found {table.column_names}; the "
                "file changed after the job was planned?"
            ) from err
        if not table.schema.equals(self.schema, check_metadata=False):
            raise ValueError(
                f"{path}: schema {table.schema} differs from the planned {self.schema}; the file "
                "changed after the job was planned?"
            )
        yield table


class CountRecordsOut(beam.DoFn):
    """Counts ``records_out`` just before the write (a Parquet table counts its rows)."""

    def __init__(self):
        self.records_out = Metrics.counter(NAMESPACE, "records_out")

    def start_bundle(self) -> None:
        self._count = 0

    def process(self, element: bytes | pa.Table) -> Iterator[bytes | pa.Table]:
        self._count += element.num_rows if isinstance(element, pa.Table) else 1
        yield element

    def finish_bundle(self) -> None:
        self.records_out.inc(self._count)
        self._count = 0


# --------------------------------------------------------------------------- TFRecord
def _records(path: str, compressed: bool) -> Iterator[bytes]:
    """Streams one TFRecord file's records; corruption raises ValueError naming the file."""
    import tensorflow as tf

    count = 0
    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP" if compressed else "")
    try:
        for batch in dataset.batch(_READ_BATCH).as_numpy_iterator():
            for record in batch:
                count += 1
                yield record
    except tf.errors.OpError as err:
        hint = "" if compressed else " (if it is gzip-compressed, name it *.gz)"
        raise ValueError(
            f"{path}: corrupt TFRecord file, or not one{hint}: reading failed after {count} good "
            f"records (read in batches of {_READ_BATCH}). Reader said: {err.message}"
        ) from err


def _parse(example_cls: Any, record: bytes, path: str, index: int) -> Any:
    from google.protobuf.message import DecodeError

    try:
        return example_cls.FromString(record)
    except DecodeError as err:
        raise ValueError(
            f"{path}: record {index} is not a serialized tf.train.Example ({err})."
        ) from err


def check_tfrecord_sample(
    files: Sequence[str], compressed: bool, kept: Sequence[str], roles: dict[str, str], limit: int
) -> int:
    """Reads up to ``limit`` records from the first files; returns how many it read.

    Raises:
        ValueError: A sampled file is corrupt or holds no tf.Example.
        MissingColumnError: A kept column appears in none of the sampled records.
    """
    from tensorflow.core.example import example_pb2

    if limit <= 0:
        return 0
    seen: set[str] = set()
    count, sampled = 0, []
    for path in files:
        sampled.append(path)
        for record in _records(path, compressed):
            seen.update(_parse(example_pb2.Example, record, path, count).features.feature)
            count += 1
            if count >= limit:
                break
        if count >= limit:
            break
    missing = [c for c in kept if c not in seen]
    if count and missing:
        where = f"all {count} sampled records of {_shorten(sampled)}"
        raise MissingColumnError(
            missing_columns_message(missing, roles, where, sorted(seen))
            + " (A sparse feature that only starts later in the data: pass --sample-records 0; "
            "the job still fails at the end if it never appears.)"
        )
    return count


def example_view() -> type:
    """A message class wire-compatible with ``tf.train.Example`` whose features stay bytes.

    A proto map is a repeated ``{key = 1, value = 2}`` entry message on the wire, so
    ``Example{features{repeated Entry{string key; bytes value}}}`` parses any tf.Example
    without parsing its ``Feature`` values. Dropping entries and re-serializing keeps every
    kept feature byte for byte, about 3x faster than editing a parsed Example's map.
    """
    global _VIEW
    if _VIEW is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        field = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(
            name="recsel_example_view.proto", package="recsel_view", syntax="proto3"
        )
        entry = proto.message_type.add(name="Entry")
        entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
        for name, inner, label in (
            ("Features", "Entry", field.LABEL_REPEATED),
            ("Example", "Features", field.LABEL_OPTIONAL),
        ):
            message = proto.message_type.add(name=name)
            message.field.add(
                name="feature" if name == "Features" else "features",
                number=1,
                type=field.TYPE_MESSAGE,
                label=label,
                type_name=f".recsel_view.{inner}",
            )
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        descriptor = pool.FindMessageTypeByName("recsel_view.Example")
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
            _VIEW = message_factory.GetMessageClass(descriptor)
        else:
            _VIEW = message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return _VIEW


_VIEW: type | None = None


class PruneTFRecordFile(beam.DoFn):
    """Streams one TFRecord file, keeping only the output features of each tf.Example.

    Counts ``records_in`` and, per kept column, the records holding it
    (``present:<column>``), so the job can fail if a column never appears.
    """

    def __init__(self, kept: Sequence[str], compressed: bool):
        self.kept = tuple(kept)
        self.compressed = compressed
        self.records_in = Metrics.counter(NAMESPACE, "records_in")
        self.present = {c: Metrics.counter(NAMESPACE, PRESENT_PREFIX + c) for c in self.kept}

    def setup(self) -> None:
        self._view = example_view()
        self._keep = frozenset(self.kept)

    def start_bundle(self) -> None:
        self._seen: collections.Counter[str] = collections.Counter()

    def process(self, path: str) -> Iterator[bytes]:
        count = 0
        for index, record in enumerate(_records(path, self.compressed)):
            example = _parse(self._view, record, path, index)
            entries = example.features.feature
            kept = [e for e in entries if e.key in self._keep]
            self._seen.update(e.key for e in kept)
            del entries[:]
            entries.extend(kept)
            count += 1
            yield example.SerializeToString()
        self.records_in.inc(count)

    def finish_bundle(self) -> None:
        for name, count in self._seen.items():  # one counter update per bundle, not per record
            self.present[name].inc(count)
        self._seen.clear()
