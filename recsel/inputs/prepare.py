"""The one input path of every shell: read -> split -> build candidates -> validate.

``prepare()`` is what the CLI and the Beam ensemble job call; the TFX executor, whose
rows come from an Examples artifact, shares ``build_features()``. Two ways in:

- **streams** (``prepare_streams``): one statistics pass, specs, then a training and a
  validation ``FileStream``; no frame of the data is ever built. The validation rows are
  a separate pattern, or else the last shards (by name) held out, so the statistics and
  vocabularies describe the training shards only.
- **frames** (small data, CSV, one file): the table is read into memory, split by rows
  (or by ``time_column``), and cleaned by ``recsel.tabular.validate_frame``.

Example:
    >>> inputs = prepare("data/part-*.tfrecord.gz", InputOptions("clicked"), stream="auto",
    ...                  work_dir="work")
    >>> result = select(inputs.train, inputs.valid, inputs.features, config)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import schema_pb2

from recsel import params, schema_io
from recsel.features import FeatureSet
from recsel.inputs.readers import FileStream, StreamOptions, resolve_paths
from recsel.inputs.statistics import compute_statistics, feature_set_from_statistics, num_rows
from recsel.inputs.table_io import format_of

STREAM_MODES = params.get("stream").choices

VALID_BATCH_ROWS = 4096
STATISTICS_FILE = "train_statistics.pb"  # under work_dir, reused when a run resumes


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """How a shell's rows are read and its candidates built (``recsel.params`` defaults).

    Args:
        label: The binary label column.
        embedding_dim: Full width of inferred features.
        vocabulary_min_count: Values seen fewer times in training map to OOV.
        nan_policy: ``raise`` or ``impute`` NaN/inf in numeric features.
        validation_fraction: Share of the rows (frames) or shards (streams) held out.
        exclude: Columns that are not candidates.
        categorical: Integer columns that are categorical.
        time_column: Frames only: validate on the latest rows by this column (excluded).
        seed: Seed of the row split (frames) and of the training stream's shuffle.
    """

    label: str
    embedding_dim: int = params.default("embedding_dim")
    vocabulary_min_count: int = params.default("vocabulary_min_count")
    nan_policy: str = params.default("nan_policy")
    validation_fraction: float = params.default("validation_fraction")
    exclude: tuple[str, ...] = params.default("exclude")
    categorical: tuple[str, ...] = params.default("categorical")
    time_column: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "vocabulary_min_count", "nan_policy"):
            params.get(name).check(getattr(self, name))
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}."
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "categorical", tuple(self.categorical))

    @classmethod
    def from_values(cls, label: str, values: dict, **extra) -> InputOptions:
        """The options among ``values`` (``recsel.params`` names; None: the default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in values.items() if k in names and v is not None}
        return cls(label, **{**given, **extra})


@dataclasses.dataclass
class Inputs:
    """What ``prepare`` returns: what ``select()`` takes, and what the outputs record.

    Args:
        train: Training rows: a ``FileStream`` or a cleaned frame.
        valid: Validation rows, of the same kind.
        features: The candidate features.
        schema: The input schema when one was given (the pruned schema keeps it).
        statistics_path: The training statistics (streams only).
    """

    train: Any
    valid: Any
    features: FeatureSet
    schema: schema_pb2.Schema | None = None
    statistics_path: str | None = None

    @property
    def streaming(self) -> bool:
        return isinstance(self.train, FileStream)


def build_features(
    options: InputOptions,
    *,
    features: FeatureSet | None = None,
    schema: schema_pb2.Schema | None = None,
    statistics: Any = None,
    frame: Any = None,
) -> FeatureSet:
    """The candidates, from the first source given: a spec, a schema, statistics, a frame.

    Args:
        options: Label, widths, vocabulary threshold, excluded and categorical columns.
        features: A feature spec to use as is (a missing label is set to ``options.label``).
        schema: A TFMD schema (with ``statistics`` for vocabularies and valencies).
        statistics: TFDV statistics of the training rows.
        frame: Training rows to infer the candidates from.

    Returns:
        The ``FeatureSet``.

    Raises:
        ValueError: No source given, or one the builders reject (they name the column).

    Example:
        >>> build_features(InputOptions("clicked"), frame=train_frame)
    """
    if features is not None:
        return (
            features if features.label is not None else FeatureSet(features.features, options.label)
        )
    if schema is not None:
        return schema_io.feature_set_from_schema(
            schema,
            options.label,
            statistics,
            embedding_dim=options.embedding_dim,
            min_count=options.vocabulary_min_count,
        )
    exclude = [*options.exclude, *([options.time_column] if options.time_column else [])]
    if statistics is not None:
        return feature_set_from_statistics(
            statistics,
            options.label,
            embedding_dim=options.embedding_dim,
            categorical=options.categorical,
            exclude=exclude,
        )
    if frame is None:
        raise ValueError("build_features needs a feature spec, a schema, statistics or a frame.")
    from recsel.inference import infer_feature_set

    return infer_feature_set(
        frame,
        options.label,
        embedding_dim=options.embedding_dim,
        min_count=options.vocabulary_min_count,
        categorical=list(options.categorical),
        exclude=exclude,
    )


def should_stream(data: str | Sequence[str], mode: str = "auto") -> bool:
    """Whether ``prepare`` streams: ``on``/``off``, or (``auto``) TFRecord or Parquet data
    of two or more shards, which is what holding out shards for validation needs.

    Raises:
        ValueError: An unknown mode.
        FileNotFoundError: ``data`` matches no file (the message names the pattern).
    """
    if mode not in STREAM_MODES:
        raise ValueError(f"stream must be one of {STREAM_MODES}, got {mode!r}.")
    if mode != "auto":
        return mode == "on"
    files = resolve_paths(data)
    return len(files) >= 2 and format_of(files[0]) in ("tfrecord", "parquet")


def prepare(
    data: str | Sequence[str],
    options: InputOptions,
    *,
    stream: str = "auto",
    validation_data: str | Sequence[str] | None = None,
    features: FeatureSet | None = None,
    schema_path: str | None = None,
    statistics_path: str | None = None,
    work_dir: str | None = None,
    batch_size: int = 256,
    shuffle_buffer: int = 10_000,
    worker_index: int = 0,
    num_workers: int = 1,
    pipeline_options: PipelineOptions | None = None,
) -> Inputs:
    """Reads, splits and validates the rows and builds the candidates: every shell's path.

    Args:
        data: Training data: a file, directory, glob, or (streams) a list of them.
        options: How rows are read and candidates built.
        stream: ``auto``, ``on`` or ``off`` (see ``should_stream``).
        validation_data: Separate validation data (default: hold out rows or shards).
        features: A feature spec to use as is.
        schema_path: A TFMD schema to build the specs from.
        statistics_path: TFDV statistics of the training rows (streams: skips the pass).
        work_dir: Streams: where the statistics pass writes (required to stream).
        batch_size: Streams: the training batch size.
        shuffle_buffer: Streams: rows in the training shuffle buffer.
        worker_index: Streams: this worker's index (workers read disjoint shards).
        num_workers: Streams: workers reading together.
        pipeline_options: Streams: Beam options of the statistics pass.

    Returns:
        The ``Inputs``.

    Raises:
        ValueError: Bad data or options; the message names the file, column or flag.

    Example:
        >>> inputs = prepare("events.parquet", InputOptions("clicked"))
        >>> select(inputs.train, inputs.valid, inputs.features, SelectionConfig())
    """
    if not should_stream(data, stream):
        return _prepare_frames(
            data, options, validation_data, features, schema_path, statistics_path
        )
    if options.time_column or options.nan_policy != "raise":
        flag = "--time-column" if options.time_column else "--nan-policy impute"
        raise ValueError(
            f"{flag} needs the whole table in memory; it is not available while streaming. "
            "Write the split (or the imputed values) into the shards, or pass --stream off."
        )
    if work_dir is None:
        raise ValueError("Streaming needs a work_dir for the statistics pass.")
    inputs = prepare_streams(
        data,
        options.label,
        work_dir=work_dir,
        validation_data=validation_data,
        validation_fraction=options.validation_fraction,
        features=features,
        schema_path=schema_path,
        statistics_path=statistics_path,
        categorical=options.categorical,
        exclude=options.exclude,
        embedding_dim=options.embedding_dim,
        frequency_threshold=options.vocabulary_min_count,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        seed=options.seed,
        worker_index=worker_index,
        num_workers=num_workers,
        pipeline_options=pipeline_options,
    )
    return Inputs(
        inputs.train, inputs.valid, inputs.features, inputs.schema, inputs.statistics_path
    )


def _prepare_frames(
    data: str,
    options: InputOptions,
    validation_data: str | None,
    features: FeatureSet | None,
    schema_path: str | None,
    statistics_path: str | None,
) -> Inputs:
    """The in-memory path: read, split by rows (or time), build the candidates, clean."""
    from recsel import tabular

    frame = tabular.read_table(data, label=options.label)
    if validation_data:
        train, valid = frame, tabular.read_table(validation_data, label=options.label)
    else:
        train, valid = tabular.split_frame(
            frame, options.validation_fraction, options.seed, options.time_column
        )
    schema = schema_io.read_schema(schema_path) if schema_path else None
    statistics = schema_io.read_statistics(statistics_path) if statistics_path else None
    if schema is None:
        statistics = None  # without a schema, the frame itself is what candidates come from
    features = build_features(
        options, features=features, schema=schema, statistics=statistics, frame=train
    )
    clean = {"nan_policy": options.nan_policy}
    train = tabular.validate_frame(train, features, options.label, source=data, **clean)
    valid = tabular.validate_frame(
        valid, features, options.label, source=validation_data or data, **clean
    )
    return Inputs(train, valid, features, schema)


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
            compression = "GZIP" if path.lower().endswith(".gz") else ""
            records = tf.data.TFRecordDataset(path, compression_type=compression)
            total += int(records.reduce(0, lambda n, _: n + 1))
        else:
            with tf.io.gfile.GFile(path, "r") as handle:
                total += max(0, sum(1 for line in handle if line.strip()) - 1)  # less the header
    return total


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
