"""Streaming readers: file shards to ``tf.data`` batches, never a frame of the data.

A ``FileStream`` reads TFRecord (plain or GZIP), Parquet or CSV shards behind a file,
a directory or a glob, and yields ``(features, label)`` batches in the forms the layer
takes: dense ``[batch]`` scalars and ``tf.SparseTensor`` / ``tf.RaggedTensor`` lists, as
``tf.io.parse_example`` and TFXIO produce them. Memory is bounded by the shuffle
buffer, not by the data:

- shards are (optionally) shuffled at file level and interleaved deterministically;
- rows pass through a bounded shuffle buffer;
- parsing is batched and parallel, with prefetch.

The order is a pure function of the files, the options and the seed, so an input
position is just a count of batches: ``dataset(skip_batches=n)`` resumes where a run
stopped, and a checkpoint never has to hold buffered data.

Example:
    >>> stream = FileStream("gs://bucket/train-*.tfrecord.gz", features, StreamOptions(512))
    >>> for inputs, labels in stream.dataset().take(1):
    ...     print(labels.shape)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import tensorflow as tf

from recsel.inputs import _diagnose
from recsel.inputs._arrow import ExampleEncoder
from recsel.inputs.paths import format_of, resolve_files
from recsel.inputs.table_io import MissingColumnError, gc_paused
from recsel.spec.features import FeatureSet

_TF_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}
_ARROW_DTYPES = {"string": pa.string(), "int64": pa.int64(), "float32": pa.float32()}
# Rows of a Parquet or CSV shard decoded and encoded to tf.Examples at once.
READ_ROWS = 2048


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """How a ``FileStream`` orders, batches and shards its rows.

    Args:
        batch_size: Rows per batch.
        shuffle_buffer: Rows held by the row-level shuffle buffer (0: no row shuffle).
            Memory is bounded by this, not by the data.
        shuffle_files: Shuffle the shard order (from ``seed``) before interleaving.
        seed: Seed of every shuffle; the same seed gives the same order.
        num_epochs: Passes over the data; None repeats forever.
        num_workers: Workers reading disjoint shards (``MultiWorkerMirroredStrategy``).
        worker_index: This worker's index in ``[0, num_workers)``.
        cycle_length: Shards read at once by the interleave.
        list_separator: Separator of list cells in CSV text (``"a|b|c"``).
        autotune: Run tf.data's autotuning thread. Off by default: dropping an
            iterator joins that thread, which can first sleep out its optimisation
            period (it doubles up to 60 s), and ``select()`` then waited 9-33 s to drop
            its training stream (issue 13, ``benchmarks/results/cost_probes/
            close_wait.md``). Without it the parallel parse and interleave run one call
            per core (at most ``cycle_length`` files), as the tuner chose on small
            machines, and the prefetch buffer still grows when it runs dry.
    """

    batch_size: int
    shuffle_buffer: int = 10_000
    shuffle_files: bool = True
    seed: int = 0
    num_epochs: int | None = 1
    num_workers: int = 1
    worker_index: int = 0
    cycle_length: int = 4
    list_separator: str = "|"
    autotune: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}.")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {self.shuffle_buffer}.")
        if not 0 <= self.worker_index < self.num_workers:
            raise ValueError(
                f"worker_index {self.worker_index} is not in [0, num_workers={self.num_workers})."
            )
        if self.num_epochs is not None and self.num_epochs < 1:
            raise ValueError(f"num_epochs must be positive or None, got {self.num_epochs}.")


class FileStream:
    """``(features, label)`` batches streamed from file shards.

    Args:
        path: A file, a directory of shards, or a glob (local or ``gs://``); or a list
            of those.
        features: The features to read; their ``dtype`` and ``kind`` must match the data.
        options: Batching, shuffling and sharding.
        label: Label column (float32 ``[batch]``); None yields only the feature dict.
        num_rows: Rows in one pass, from the statistics (``recsel.inputs.statistics.
            num_rows``); ``select()`` plans its schedule from it.

    Raises:
        FileNotFoundError: ``path`` matches no file.
        ValueError: Mixed or unsupported formats, too few shards for the workers, or a
            first shard whose columns or types do not match ``features`` (the message
            names the feature and the file).

    Example:
        >>> stream = FileStream("data/train-*.parquet", features, StreamOptions(256), "clicked")
        >>> model.fit(stream.dataset(), steps_per_epoch=100)
    """

    def __init__(
        self,
        path: str | Sequence[str],
        features: FeatureSet,
        options: StreamOptions,
        label: str | None = None,
        num_rows: int | None = None,
    ):
        self.path, self.features, self.options, self.label = path, features, options, label
        self.num_rows = num_rows
        self.files = resolve_paths(path)
        self.format = format_of(self.files[0])
        if options.num_workers > len(self.files):
            raise ValueError(
                f"{path}: {len(self.files)} shard(s) for {options.num_workers} workers; each "
                "worker reads its own shards. Write at least one shard per worker."
            )
        self._columns = [*features.names, *([label] if label else [])]
        # gs://, s3://, hdfs://: reads whose latency a parallel interleave overlaps.
        self._remote = any("://" in f for f in self.files)
        self._kinds = _diagnose.first_record_kinds(self.files[0], self.format, self._columns)
        # Only CSV holds lists as joined text; a Parquet scalar is one value per row.
        separator = options.list_separator if self.format == "csv" else None
        self._encoder = ExampleEncoder(features, label, separator)
        _diagnose.check_kinds(self._kinds, features, label, self.files[0])

    def explain_error(self, error: Exception) -> Exception:
        """A clear error naming the shard behind ``error`` (raised while iterating).

        ``tf.data`` reports a corrupt shard or a feature missing from some records
        without the file name; this scans the shards (only on failure) to find it.

        Example:
            >>> try:
            ...     model.fit(stream.dataset())
            ... except tf.errors.OpError as err:
            ...     raise stream.explain_error(err) from err
        """
        return _diagnose.find_bad_shard(self, error)

    # ------------------------------------------------------------------ datasets
    def dataset(
        self,
        batch_size: int | None = None,
        *,
        seed: int | None = None,
        shuffle: bool | None = None,
        num_epochs: int | None | str = "options",
        skip_batches: int = 0,
        columns: Sequence[str] | None = None,
    ) -> tf.data.Dataset:
        """The batches, after skipping the first ``skip_batches`` (to resume a run).

        Args:
            batch_size: Rows per batch (default: the options').
            seed: Shuffle seed (default: the options').
            shuffle: Shuffle files and rows (default: as the options say).
            num_epochs: Passes; None repeats forever (default: the options').
            skip_batches: Batches to skip; they are batched but never parsed.
            columns: Parse only these features (and the label); default: every one.
                The rows and their order are the same: parsing is most of a read's
                cost, so evaluating 8 of 40 features parses 9 columns, not 41.

        Returns:
            A ``tf.data.Dataset`` of ``(features, label)``, or of features without a label.

        Example:
            >>> labels_only = stream.dataset(4096, shuffle=False, columns=[])
        """
        read = self._columns if columns is None else self._read_columns(columns)
        opts = self.options
        batch_size = opts.batch_size if batch_size is None else int(batch_size)
        seed = opts.seed if seed is None else int(seed)
        epochs = opts.num_epochs if num_epochs == "options" else num_epochs
        shuffle_files = opts.shuffle_files if shuffle is None else bool(shuffle)
        buffer = opts.shuffle_buffer if shuffle is None or shuffle else 0
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if opts.num_workers > 1:
            files = files.shard(opts.num_workers, opts.worker_index)
        if shuffle_files:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        cycle_length = max(1, min(opts.cycle_length, len(self.files)))
        if self.format == "tfrecord":
            # Local shards read best sequentially: a parallel interleave hands every record
            # across threads, which cost more CPU than it saved. Over one file it took
            # 0.33-0.66 s for 20k rows that a plain read gives in 0.07-0.13 s; over 4 shards
            # 2.3-2.7 s per 200k rows against 1.2-1.3 s (GZIP: 2.6-2.7 against 1.2-1.7 s).
            # Remote shards keep it, to overlap their reads' latency. Both orders are the same.
            parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
            rows = files.interleave(
                self._records_of_file,  # whole records: the parse picks the columns
                cycle_length=cycle_length,
                **(parallel if cycle_length > 1 and self._remote else {}),
            )
        else:
            # Parquet and CSV shards are read by Python generators (GIL-bound, so parallel
            # calls buy little), and a parallel interleave also opens ``cycle_length``
            # further shards ahead of time, each holding its reader, its memory-mapped
            # pages and a decoded record batch: at 16 shards that was 8 open readers and
            # +350 MiB of RSS. A sequential interleave gives the same order (the parallel
            # one is deterministic) with ``cycle_length`` readers open.
            rows = files.interleave(
                lambda path: self._arrow_rows(path, read), cycle_length=cycle_length
            )
        if buffer > 1:
            rows = rows.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        # Repeat after shuffling, as the frame path does: the buffer never mixes two
        # passes, and each pass is reshuffled (deterministically, from the seed).
        if epochs != 1:
            rows = rows.repeat(epochs)
        # Every format's rows are serialised tf.Examples here (Parquet and CSV encoded
        # per record batch), so all take the same shuffle and the same batched parse.
        batches = rows.batch(batch_size).skip(int(skip_batches))  # skipped: not parsed
        parse = functools.partial(self._parse, columns=read)
        batches = batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        # Shuffle then repeat stay two steps, as in the frame path (recsel.inputs.frame_dataset.to_dataset
        # runs without tf.data's rewrites): the fused form draws a different order, and the
        # same rows, seed and buffer must give the same batches either way.
        options.experimental_optimization.shuffle_and_repeat_fusion = False
        options.autotune.enabled = opts.autotune  # see StreamOptions.autotune
        if opts.num_workers > 1:  # already sharded by file: tf.distribute must not re-shard
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF
            )
        return batches.with_options(options).prefetch(tf.data.AUTOTUNE)

    def sample_frame(self, rows: int) -> pd.DataFrame:
        """The first ``rows`` rows, unshuffled, as a small frame (serving inputs).

        Args:
            rows: How many rows (a serving batch: hundreds, not the data).

        Returns:
            A frame with one column per feature (lists for multi-valent ones) and the label.
        """
        columns: dict[str, list] = {}
        try:
            for batch in self.dataset(rows, shuffle=False, num_epochs=1).take(1):
                inputs, labels = batch if isinstance(batch, tuple) else (batch, None)
                # Hundreds of thousands of cells, none in a cycle: collections triggered
                # by their allocation scan every live object (0.39-0.76 s for 5000 rows of
                # 40 features beside a model, against 0.35-0.38 s paused).
                with gc_paused():
                    for name, value in inputs.items():
                        columns[name] = python_cells(value)
                if labels is not None:
                    columns[self.label] = labels.numpy().tolist()
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            raise self.explain_error(err) from err
        if not columns:
            raise ValueError(f"{self.path}: the stream holds no rows.")
        return pd.DataFrame(columns)

    def _read_columns(self, names: Sequence[str]) -> list[str]:
        """``names`` and the label, in the stream's column order."""
        unknown = sorted(set(names) - set(self.features.names))
        if unknown:
            raise KeyError(f"{self.path}: no such feature(s) in the stream: {unknown}.")
        wanted = {*names, self.label}
        return [name for name in self._columns if name in wanted]

    def _records_of_file(self, path: tf.Tensor) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(path, compression_type=self._compression(path))

    def _arrow_rows(self, path: tf.Tensor, columns: list[str]) -> tf.data.Dataset:
        # Arrow decodes a record batch at a time and encodes it to tf.Examples in C++
        # (recsel.inputs._arrow); rows are split out only so the bounded shuffle mixes them.
        return tf.data.Dataset.from_generator(
            functools.partial(self._arrow_examples, columns=columns),
            args=(path,),
            output_signature=tf.TensorSpec([None], tf.string),
        ).unbatch()

    @staticmethod
    def _compression(path: tf.Tensor) -> tf.Tensor:
        return tf.where(tf.strings.regex_full_match(path, r"(?i).*\.gz$"), "GZIP", "")

    # ------------------------------------------------------------------ parsing
    def _parse_spec(self, columns: list[str] | None = None) -> dict:
        """``tf.io.parse_example`` features of ``columns`` (default: all): TFRecord in its
        stored types, Parquet and CSV in the spec's (their encoder cast them); lists ragged
        for Arrow sources, as TFXIO gives them."""
        spec = {}
        for name in self._columns if columns is None else columns:
            if self.format == "tfrecord":
                dtype = _TF_DTYPES[_diagnose.KIND_DTYPES[self._kinds[name]]]
            elif name == self.label or self.features[name].kind == "numeric":
                dtype = tf.float32
            else:
                dtype = _TF_DTYPES[self.features[name].dtype]
            if name == self.label or not self.features[name].is_multivalent:
                spec[name] = tf.io.FixedLenFeature([], dtype)
            elif self.format == "tfrecord":
                spec[name] = tf.io.VarLenFeature(dtype)
            else:
                spec[name] = tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)
        return spec

    def _parse(self, serialized: tf.Tensor, columns: list[str]):
        parsed = tf.io.parse_example(serialized, self._parse_spec(columns))
        return self._split_label(parsed)

    def _split_label(self, parsed: dict):
        if self.label is None:
            return parsed
        label = tf.cast(parsed.pop(self.label), tf.float32)
        return parsed, label

    # ------------------------------------------------------------------ Parquet / CSV
    def _arrow_examples(self, path: bytes, columns: list[str]):
        """Yields ``columns`` of one Parquet or CSV shard as serialised tf.Examples, a
        record batch at a time."""
        path = path.decode() if isinstance(path, bytes) else str(path)
        for batch in self.arrow_batches(path, columns):
            yield self._encoder.encode(batch, path)

    def arrow_batches(self, path: str, columns: list[str] | None = None):
        """The stream's columns (or ``columns``) of one Parquet or CSV shard, as Arrow
        record batches."""
        columns = self._columns if columns is None else columns
        types = {name: kind for name, kind in self._csv_types().items() if name in columns}
        return _diagnose.arrow_record_batches(path, self.format, columns, types, self._read_rows())

    def _read_rows(self) -> int:
        # Whole record batches are cast and encoded at once; this many rows bound the
        # memory of one (on top of the shuffle buffer): the encoded rows are Python bytes
        # and then a string tensor, ~1 KiB a row each. 2048 read as fast as 8192 did and
        # held 90 MiB less at 4 open shards (reading 16 Parquet shards of 250k rows).
        return max(READ_ROWS, self.options.batch_size)

    def _csv_types(self) -> dict[str, pa.DataType]:
        types = {}
        for name in self._columns:
            if name == self.label:
                types[name] = pa.float64()
                continue
            spec = self.features[name]
            types[name] = pa.string() if spec.is_multivalent else _ARROW_DTYPES[spec.dtype]
        return types


def resolve_paths(path: str | Sequence[str]) -> list[str]:
    """The shards behind a path, a pattern, or a list of either (one format for all)."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        raise FileNotFoundError("No input files were given.")
    files = [f for p in paths for f in resolve_files(p)]
    formats = {format_of(f) for f in files}
    if len(formats) > 1:
        raise ValueError(f"{paths}: shards mix formats {sorted(formats)}; use one format.")
    return files


def python_cells(value) -> list:
    """A batch tensor as Python cells: scalars, or lists for sparse and ragged values.

    Whole arrays are converted at once (bytes decoded in one pass over the flat values),
    not cell by cell through ``to_list``.

    Example:
        >>> python_cells(tf.ragged.constant([[b"a"], []]))
        [['a'], []]
    """
    if isinstance(value, tf.SparseTensor):
        value = tf.RaggedTensor.from_sparse(value)
    if isinstance(value, tf.RaggedTensor):
        flat = _python_values(value.flat_values.numpy())
        splits = value.row_splits.numpy().tolist()
        return [flat[start:stop] for start, stop in zip(splits[:-1], splits[1:])]
    return _python_values(value.numpy())


def _python_values(array: np.ndarray) -> list:
    if array.dtype == object:  # tf.string: bytes, at any rank ([batch, 1] from TFXIO)
        flat = [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]
        decoded = np.empty(len(flat), dtype=object)
        decoded[:] = flat
        return decoded.reshape(array.shape).tolist()
    return array.tolist()


__all__ = ["FileStream", "MissingColumnError", "StreamOptions"]
