"""From file patterns to what ``select()`` takes, by streaming: one statistics pass, specs,
then a training and a validation ``FileStream``. No frame of the data is ever built.

The validation rows are a separate pattern, or else the last shards (by name) held
out, so the statistics and vocabularies describe the training shards only.

Example:
    >>> inputs = prepare_streams("data/part-*.tfrecord.gz", "clicked", work_dir="work")
    >>> result = select(inputs.train, inputs.valid, inputs.features, config)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import schema_pb2

from recsel.inputs import schema_io
from recsel.inputs.candidates import InputOptions, build_features
from recsel.inputs.paths import format_of, open_bytes, tfrecord_compression
from recsel.inputs.readers import FileStream, StreamOptions, resolve_paths
from recsel.inputs.statistics import compute_statistics, num_rows
from recsel.spec.features import FeatureSet

VALID_BATCH_ROWS = 4096
STATISTICS_FILE = "train_statistics.pb"  # under work_dir, reused when a run resumes


@dataclasses.dataclass
class StreamInputs:
    """What ``prepare_streams`` found: streams, features, and where the statistics are.

    Args:
        train: The training stream (``num_rows`` from the statistics).
        valid: The validation stream, read once in order.
        features: The candidate features.
        schema: The input schema when one was given (the pruned schema keeps it).
        statistics_path: The training statistics the specs were built from.
    """

    train: FileStream
    valid: FileStream
    features: FeatureSet
    schema: schema_pb2.Schema | None
    statistics_path: str


def split_shards(files: list[str], fraction: float, what: str) -> tuple[list[str], list[str]]:
    """Holds out the last ``fraction`` of the shards (at least one) for validation."""
    if len(files) < 2:
        raise ValueError(
            f"{what}: one shard cannot be split into training and validation rows while "
            "streaming. Pass --validation-data (a separate file or pattern), or write the "
            "data as several shards."
        )
    held = min(len(files) - 1, max(1, math.ceil(fraction * len(files))))
    return files[:-held], files[-held:]


def prepare_streams(
    data: str | Sequence[str],
    label: str,
    *,
    work_dir: str,
    validation_data: str | Sequence[str] | None = None,
    validation_fraction: float = 0.2,
    features: FeatureSet | None = None,
    schema_path: str | None = None,
    statistics_path: str | None = None,
    categorical: Sequence[str] = (),
    exclude: Sequence[str] = (),
    embedding_dim: int = 16,
    frequency_threshold: int = 1,
    batch_size: int = 256,
    shuffle_buffer: int = 10_000,
    seed: int = 0,
    worker_index: int = 0,
    num_workers: int = 1,
    pipeline_options: PipelineOptions | None = None,
) -> StreamInputs:
    """Streams and specs for ``select()`` from file patterns, in one statistics pass.

    Args:
        data: Training shards: a file, directory, glob, or a list of them.
        label: The binary label column.
        work_dir: Where the statistics are written (reused when a run resumes).
        validation_data: Validation shards; default: hold out the last shards of ``data``.
        validation_fraction: Share of the shards held out when ``validation_data`` is None.
        features: A feature spec to use as is (the statistics then only count rows).
        schema_path: A TFMD schema to build the specs from (with the statistics).
        statistics_path: Existing statistics of the training shards (skips the pass).
        categorical: Integer columns that are categorical.
        exclude: Columns that are not candidates.
        embedding_dim: Full width of inferred features.
        frequency_threshold: Values seen fewer times in training map to OOV.
        batch_size: Training batch size.
        shuffle_buffer: Rows in the training stream's shuffle buffer.
        seed: Shuffle seed.
        worker_index: This worker's index (multi-worker training reads disjoint shards).
        num_workers: Workers training together.
        pipeline_options: Beam options for the statistics pass.

    Returns:
        The ``StreamInputs``.
    """
    files = resolve_paths(data)
    where = data if isinstance(data, str) else ", ".join(data)
    if validation_data is not None:
        train_files, valid_files = files, resolve_paths(validation_data)
    else:
        train_files, valid_files = split_shards(files, validation_fraction, where)
    if statistics_path is None:
        statistics_path = os.path.join(work_dir, STATISTICS_FILE)
        if not os.path.exists(statistics_path):
            compute_statistics(
                train_files,
                statistics_path,
                frequency_threshold=frequency_threshold,
                categorical=categorical,
                exclude=exclude,
                pipeline_options=pipeline_options,
            )
    statistics = schema_io.read_statistics(statistics_path)
    schema = schema_io.read_schema(schema_path) if schema_path else None
    options = InputOptions(
        label,
        embedding_dim=embedding_dim,
        vocabulary_min_count=frequency_threshold,
        exclude=tuple(exclude),
        categorical=tuple(categorical),
    )
    features = build_features(options, features=features, schema=schema, statistics=statistics)
    train = FileStream(
        train_files,
        features,
        StreamOptions(
            batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            num_workers=num_workers,
            worker_index=worker_index,
        ),
        label,
        num_rows=num_rows(statistics),
    )
    valid_options = StreamOptions(VALID_BATCH_ROWS, shuffle_buffer=0, shuffle_files=False)
    valid = FileStream(valid_files, features, valid_options, label)
    return StreamInputs(train, valid, features, schema, statistics_path)


def count_rows(files: Sequence[str]) -> int:
    """Rows in ``files``: Parquet from its footers, TFRecord and CSV by one read of the
    records (nothing is parsed or held). For a subset of shards the statistics do not
    describe, such as one ensemble run's shard.

    Example:
        >>> count_rows(["part-0.parquet", "part-1.parquet"])
    """
    import pyarrow.parquet as pq
    import tensorflow as tf

    total = 0
    for path in files:
        kind = format_of(path)
        if kind == "parquet":
            with tf.io.gfile.GFile(path, "rb") as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        elif kind == "tfrecord":
            records = tf.data.TFRecordDataset(path, compression_type=tfrecord_compression(path))
            total += int(records.reduce(0, lambda n, _: n + 1))
        else:
            with open_bytes(path) as handle:
                total += max(0, sum(1 for line in handle if line.strip()) - 1)  # less the header
    return total
