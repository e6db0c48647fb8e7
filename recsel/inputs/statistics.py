"""One streaming statistics pass over file shards: TFDV on Beam, then a ``FeatureSet``.

This is what StatisticsGen does in a TFX pipeline, for users outside one (the CLI runs
it itself). Vocabularies need real value counts, not the 20 top values that default
statistics keep, so the pass keeps up to ``max_vocab_size`` top values per feature, of
those seen at least ``frequency_threshold`` times (as ``tft.vocabulary`` does); rarer
values fall to the OOV bucket. The row count sizes the selection schedule for one pass.

The pass runs on any Beam runner: DirectRunner here (``--direct_running_mode=
multi_processing`` spreads it over cores), Dataflow with the usual pipeline options.

Example:
    >>> stats = compute_statistics("data/train-*.tfrecord.gz", "work/train_stats.pb")
    >>> features = feature_set_from_statistics(stats, label="clicked")
    >>> num_rows(stats)
    1000000
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx_bsl.public import tfxio
from tfx_bsl.tfxio.parquet_tfxio import ParquetTFXIO

from recsel.inputs import _diagnose
from recsel.inputs.paths import format_of
from recsel.inputs.readers import resolve_paths
from recsel.inputs.schema_io import feature_set_from_schema, read_statistics
from recsel.inputs.spec_rules import exclude_hint, is_id_name
from recsel.spec.features import FeatureSet

DEFAULT_MAX_VOCAB_SIZE = 100_000


class _ReadRecordBatches(beam.PTransform):
    """The shards' record batches through TFXIO (CSV: one source per shard, flattened, as
    ``CsvTFXIO`` takes a single pattern, not a list of files)."""

    def __init__(self, files: list[str], fmt: str):
        super().__init__()
        self.files, self.fmt = files, fmt

    def expand(self, pipeline):
        if self.fmt == "tfrecord":
            return pipeline | tfxio.TFExampleRecord(file_pattern=self.files).BeamSource()
        if self.fmt == "parquet":
            return pipeline | ParquetTFXIO(file_pattern=self.files).BeamSource()
        header = _diagnose.csv_header(self.files[0])
        parts = [
            pipeline
            | f"Shard{i}"
            >> tfxio.CsvTFXIO(file_pattern=f, column_names=header, skip_header_lines=1).BeamSource()
            for i, f in enumerate(self.files)
        ]
        return parts | beam.Flatten()


def describable(kind: pa.DataType) -> bool:
    """Whether TFDV describes (and recsel can select) a column of this Arrow type: text,
    numbers and booleans, or lists of them; not timestamps, dates, decimals or structs."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    if pa.types.is_dictionary(kind):  # pandas' category dtype: decoded to its values
        kind = kind.value_type
    return any(
        test(kind)
        for test in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                     pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean,
                     pa.types.is_null)
    )  # fmt: skip


def _check_describable(files: list[str], fmt: str, exclude: Sequence[str]) -> None:
    """Raises, as a frame's inference does, for a Parquet column (not excluded) of a type
    TFDV cannot describe: it would fail the pass deep inside Beam."""
    if fmt != "parquet":
        return
    for field in _diagnose.parquet_schema(files[0]):
        if field.name not in exclude and not describable(field.type):
            raise ValueError(
                f"{files[0]}: column {field.name!r} has unsupported type {field.type}; "
                f"convert it (e.g. a timestamp to a number) or pass {exclude_hint(field.name)}."
            )


def scalars_as_lists(batch: pa.RecordBatch, drop: Sequence[str] = ()) -> pa.RecordBatch:
    """A record batch whose scalar columns are one-item lists (a missing scalar: a null list).

    TFDV takes list columns only; Parquet scalars (string, int, float) arrive unwrapped.
    It has no boolean type either: booleans (a True/False label) are described as 0/1, the
    values the stream reads them as; dictionary columns (pandas' category dtype) by their
    values.

    Example:
        >>> scalars_as_lists(pa.record_batch([pa.array(["a", None])], ["c"])).column(0).to_pylist()
        [['a'], None]
    """
    columns, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name in drop:
            continue
        names.append(name)
        if pa.types.is_dictionary(column.type):  # TFDV takes the values, not the codes
            column = column.dictionary_decode()
        if _booleans_as_ints(column.type) != column.type:
            column = column.cast(_booleans_as_ints(column.type))
        kind = column.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_null(kind):
            columns.append(column)
            continue
        offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32))
        columns.append(pa.ListArray.from_arrays(offsets, column, mask=column.is_null()))
    return pa.RecordBatch.from_arrays(columns, names)


def _booleans_as_ints(kind: pa.DataType) -> pa.DataType:
    """``kind`` with booleans (scalar or list items) as int64; other types unchanged."""
    if pa.types.is_boolean(kind):
        return pa.int64()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = _booleans_as_ints(kind.value_type)
        return pa.list_(item) if pa.types.is_list(kind) else pa.large_list(item)
    return kind


def stats_options(
    frequency_threshold: int = 1,
    max_vocab_size: int = DEFAULT_MAX_VOCAB_SIZE,
    categorical: Sequence[str] = (),
) -> tfdv.StatsOptions:
    """TFDV options that keep vocabulary-sized top values above a frequency threshold.

    Args:
        frequency_threshold: Values seen fewer times are left out of the top values.
        max_vocab_size: Top values kept per feature.
        categorical: Integer features to describe as categorical (value counts, not
            a numeric histogram).

    Returns:
        Options for ``tfdv.GenerateStatistics`` (or StatisticsGen's ``stats_options``).

    Example:
        >>> StatisticsGen(examples=..., stats_options=stats_options(frequency_threshold=5))
    """
    if frequency_threshold < 1:
        raise ValueError(f"frequency_threshold must be >= 1, got {frequency_threshold}.")
    # A schema naming only these features: TFDV types the rest from the data.
    schema = schema_pb2.Schema()
    for name in categorical:
        feature = schema.feature.add(name=name, type=schema_pb2.INT)
        feature.int_domain.is_categorical = True
    return tfdv.StatsOptions(
        schema=schema if categorical else None,
        num_top_values=int(max_vocab_size),
        num_rank_histogram_buckets=int(max_vocab_size),
        frequency_threshold=int(frequency_threshold),
    )


def id_like_integers(path: str, fmt: str) -> list[str]:
    """Integer columns of a shard whose names say ID (``user_id``, ``ItemID``).

    A frame's are categories (``recsel.inputs.inference``); the statistics pass counts
    these as categories too, so that their values, not a numeric histogram, are described
    and become a vocabulary. A CSV column is an integer one when its first block reads so.
    """
    if fmt == "tfrecord":
        kinds = _diagnose.tfrecord_kinds(path)
        return sorted(n for n, kind in kinds.items() if kind == "int64_list" and is_id_name(n))
    schema = (
        _diagnose.parquet_schema(path) if fmt == "parquet" else _diagnose.csv_inferred_schema(path)
    )
    return [f.name for f in schema if pa.types.is_integer(f.type) and is_id_name(f.name)]


def compute_statistics(
    path: str | list[str],
    output_path: str,
    *,
    frequency_threshold: int = 1,
    max_vocab_size: int = DEFAULT_MAX_VOCAB_SIZE,
    categorical: Sequence[str] = (),
    exclude: Sequence[str] = (),
    pipeline_options: PipelineOptions | None = None,
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Describes the shards behind ``path`` in one Beam pass and writes the statistics.

    Args:
        path: A file, a directory of shards, or a glob (TFRecord, Parquet or CSV), or a
            list of those.
        output_path: Where the binary ``DatasetFeatureStatisticsList`` goes; written to a
            temporary name first and renamed, so a failed pass leaves nothing behind.
        frequency_threshold: Minimum count for a value to be listed (vocabulary cut-off).
        max_vocab_size: Top values kept per feature.
        categorical: Integer features to count as categorical.
        exclude: Columns to leave out of the pass (a Parquet column of a type TFDV
            cannot describe, such as a timestamp, must be one of them).
        pipeline_options: Beam options (runner, workers); DirectRunner by default.

    Returns:
        The statistics proto that was written.

    Raises:
        FileNotFoundError: ``path`` matches no file.
        ValueError: The shards cannot be read (the message names the pattern).

    Example:
        >>> compute_statistics("gs://b/train-*.gz", "gs://b/stats.pb",
        ...     pipeline_options=PipelineOptions(runner="DataflowRunner", ...))
    """
    files = resolve_paths(path)
    fmt = format_of(files[0])
    parent = os.path.dirname(output_path) or "."
    tf.io.gfile.makedirs(parent)
    categorical = [*categorical, *id_like_integers(files[0], fmt)]
    _check_describable(files, fmt, exclude)
    temporary = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(output_path)}")
    try:
        # PipelineOptions() would parse sys.argv (the caller's own flags): pass [].
        with beam.Pipeline(options=pipeline_options or PipelineOptions([])) as pipeline:
            _ = (
                pipeline
                | "Read" >> _ReadRecordBatches(files, fmt)
                | "Lists" >> beam.Map(scalars_as_lists, drop=sorted(exclude))
                | "Statistics"
                >> tfdv.GenerateStatistics(
                    stats_options(frequency_threshold, max_vocab_size, categorical)
                )
                | "Write" >> tfdv.WriteStatisticsToBinaryFile(temporary)
            )
        tf.io.gfile.rename(temporary, output_path, overwrite=True)
    except Exception as err:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        culprit = _diagnose.first_corrupt_tfrecord(files) if fmt == "tfrecord" else None
        where = culprit or path
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{where}: the statistics pass failed ({first_line}). "
            + ("This shard is corrupt: rewrite or remove it." if culprit else "")
        ) from err
    return read_statistics(output_path)


def num_rows(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    """Examples described by the statistics (their first dataset: the whole split)."""
    if not statistics.datasets:
        raise ValueError("The statistics hold no dataset; recompute them on the data.")
    return int(statistics.datasets[0].num_examples)


def feature_set_from_statistics(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    label: str,
    *,
    embedding_dim: int = 16,
    max_vocab_size: int = DEFAULT_MAX_VOCAB_SIZE,
    num_buckets: int = 16,
    categorical: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> FeatureSet:
    """Candidate features from statistics alone: TFDV infers the schema, recsel the specs.

    A categorical feature's vocabulary is the values the statistics list (those seen at
    least the pass's ``frequency_threshold`` times, up to ``max_vocab_size``); rarer and
    unseen values map to the OOV bucket at training and serving time alike.

    Args:
        statistics: From ``compute_statistics`` or StatisticsGen.
        label: The label feature (not a candidate).
        embedding_dim: Full width of every feature's table.
        max_vocab_size: Largest vocabulary; larger features are hashed.
        num_buckets: Quantile buckets for numeric features.
        categorical: Integer features that are categorical (IDs), not numeric.
        exclude: Features that are not candidates.

    Returns:
        The feature set (see ``recsel.inputs.schema_io.feature_set_from_schema`` for the rules).

    Example:
        >>> features = feature_set_from_statistics(read_statistics("stats.pb"), "clicked")
    """
    schema = tfdv.infer_schema(statistics, infer_feature_shape=True)
    listed = _listed_values(statistics)
    int_vocabularies = {}
    for feature in schema.feature:
        if feature.name in exclude:
            feature.lifecycle_stage = schema_pb2.DEPRECATED
        elif feature.type == schema_pb2.INT and (
            feature.name in categorical or is_id_name(feature.name)
        ):
            # As for a frame (recsel.inputs.inference): integers named like IDs are categories.
            feature.int_domain.is_categorical = True
            values = listed.get(feature.name)  # counted as categories: listed as text
            if values and len(values) <= max_vocab_size:
                int_vocabularies[feature.name] = [int(v) for v in values]
        elif feature.type == schema_pb2.BYTES and feature.WhichOneof("domain_info") is None:
            values = listed.get(feature.name)
            if values and len(values) <= max_vocab_size:
                feature.string_domain.value[:] = values
    return feature_set_from_schema(
        schema,
        label,
        statistics,
        vocabularies=int_vocabularies,
        embedding_dim=embedding_dim,
        max_vocab_size=max_vocab_size,
        num_buckets=num_buckets,
    )


def _listed_values(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict[str, list]:
    """Each string feature's listed values: its thresholded vocabulary."""
    out = {}
    for fs in statistics.datasets[0].features if statistics.datasets else ():
        if fs.WhichOneof("stats") == "string_stats":
            name = ".".join(fs.path.step) if fs.path.step else fs.name
            s = fs.string_stats
            out[name] = [b.label for b in s.rank_histogram.buckets] or [
                v.value for v in s.top_values
            ]
    return out
