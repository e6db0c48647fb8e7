"""Dataset pruning as a Beam batch job: keep only the selected features (+ label, + extras).

Reads TFRecord files of tf.Example (``*.gz``: GZIP) or Parquet, and writes the same
format, sharded (``part-SSSSS-of-NNNNN.tfrecord[.gz]`` / ``.parquet``). It streams: a
TFRecord file is read record by record (one tf.Example parsed, pruned and re-serialized at
a time), a Parquet file row group by row group with only the kept columns read; nothing is
held beyond a bundle (with the default ``num_shards=0``: a fixed shard count makes Beam
shuffle every record).

Checks, so bad input fails loudly and early:

* Up front, before launching: the input exists and is TFRecord or Parquet; Parquet shards
  share one schema (else both files are named) that holds every kept column; for TFRecord,
  the first ``sample_records`` records parse and hold every kept column.
* At the end: ``records_out == records_in`` (and, for Parquet, the footers' row count), and
  for TFRecord every kept column appeared in at least one record (``present:<column>``
  counters), else the job fails naming the column.

Output is atomic: the pipeline writes into a staging sibling of ``output_dir`` that is
renamed into place only after every check passed (a failed job leaves nothing), and then
``_SUCCESS`` (a JSON manifest) is written into it, last. A directory without ``_SUCCESS`` is
incomplete (on ``gs://`` a directory rename is a copy, not atomic).

Example:
    >>> job = PruneJob("gs://b/train/", "gs://b/selection", "gs://b/train_pruned")
    >>> report = run_prune(job, PipelineOptions(runner="DataflowRunner", ...))
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.beam._prune_io import (
    NAMESPACE,
    PRESENT_PREFIX,
    CountRecordsOut,
    PruneParquetBatch,
    PruneTFRecordFile,
    check_parquet,
    check_tfrecord_sample,
)
from recsel.inputs.paths import format_of, resolve_files
from recsel.inputs.table_io import MissingColumnError

SUCCESS_FILE = "_SUCCESS"
SHARD_PREFIX = "part"


@dataclasses.dataclass(frozen=True)
class PruneJob:
    """What to prune and where to.

    Args:
        input: TFRecord or Parquet file, directory of shards or glob (local or ``gs://``).
        selection: A ``selection.json``, or a selection output directory holding one.
        output_dir: Destination directory; must be empty unless ``overwrite``.
        keep_columns: Extra columns to keep (IDs, timestamps, weights, ...).
        num_shards: Output shards; 0 lets the runner decide (streams, no shuffle).
        sample_records: TFRecord records checked up front (0: skip; the end check remains).
        overwrite: Replace a non-empty ``output_dir``.
    """

    input: str
    selection: str
    output_dir: str
    keep_columns: tuple[str, ...] = ()
    num_shards: int = 0
    sample_records: int = 1000
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep_columns", tuple(self.keep_columns))
        if self.num_shards < 0 or self.sample_records < 0:
            raise ValueError("num_shards and sample_records must be non-negative.")


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    """The checked inputs: files, format, output columns (with roles) and Parquet schema."""

    files: tuple[str, ...]
    format: str
    compressed: bool
    columns: tuple[str, ...]
    roles: dict[str, str]
    schema: pa.Schema | None = None
    expected_rows: int | None = None
    sampled_records: int = 0


def read_selection(path: str) -> tuple[str, list[str]]:
    """``(label, selected features)`` from a ``selection.json`` or a directory holding one.

    Example:
        >>> label, selected = read_selection("runs/demo")
    """
    import tensorflow as tf

    from recsel.atomic import read_text
    from recsel.outputs.write import SELECTION_FILE
    from recsel.spec import contract

    file = os.path.join(path, SELECTION_FILE) if tf.io.gfile.isdir(path) else path
    try:
        data = json.loads(read_text(file))
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{file}: no such selection file; pass a selection.json or the selection's output "
            "directory."
        ) from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: not valid JSON ({err}).") from err
    contract.validate(data, "selection.schema.json", file)
    if not data["selected"]:
        raise ValueError(f"{file}: the selection keeps no features; nothing to prune to.")
    return data["label"], list(data["selected"])


def plan_prune(job: PruneJob) -> PrunePlan:
    """Resolves and checks the inputs up front (see the module docstring).

    Raises:
        FileNotFoundError: No input or selection file.
        ValueError: Unsupported format, corrupt sample, mixed Parquet schemas.
        MissingColumnError: A kept column is not in the data.
    """
    label, selected = read_selection(job.selection)
    roles = {c: "--keep-columns column" for c in job.keep_columns}
    roles.update({c: "selected feature" for c in selected})
    roles[label] = "label"
    kept = list(dict.fromkeys([*selected, label, *job.keep_columns]))
    files = resolve_files(job.input)
    fmt = format_of(files[0])
    if fmt not in ("tfrecord", "parquet"):
        raise ValueError(
            f"{job.input}: pruning reads TFRecord (tf.Example) or Parquet, not {fmt}; convert it "
            "first (e.g. pandas.read_csv(...).to_parquet(...))."
        )
    if fmt == "parquet":
        schema, rows = check_parquet(files, kept, roles)
        return PrunePlan(tuple(files), fmt, False, tuple(schema.names), roles, schema, rows)
    compressed = {f.lower().endswith(".gz") for f in files}
    if len(compressed) > 1:
        raise ValueError(f"{job.input}: mixes gzip (*.gz) and plain TFRecord files; use one kind.")
    gz = compressed.pop()
    sampled = check_tfrecord_sample(files, gz, kept, roles, job.sample_records)
    return PrunePlan(tuple(files), fmt, gz, tuple(kept), roles, sampled_records=sampled)


def build_prune_pipeline(
    pipeline: beam.Pipeline, plan: PrunePlan, prefix: str, num_shards: int = 0
) -> beam.PCollection:
    """Adds read -> prune -> count -> write to ``pipeline``; returns the written file names.

    Args:
        pipeline: A Beam pipeline.
        plan: The checked plan (``plan_prune``).
        prefix: Output path prefix (``<dir>/part``).
        num_shards: Output shards (0: runner decides, no shuffle).

    Returns:
        The PCollection of written files.
    """
    files = pipeline | "Files" >> beam.Create(list(plan.files))
    if plan.format == "tfrecord":
        suffix = ".tfrecord.gz" if plan.compressed else ".tfrecord"
        compression = CompressionTypes.GZIP if plan.compressed else CompressionTypes.UNCOMPRESSED
        return (
            files
            | "ReadAndPrune" >> beam.ParDo(PruneTFRecordFile(plan.columns, plan.compressed))
            | "CountOut" >> beam.ParDo(CountRecordsOut())
            | "Write"
            >> beam.io.WriteToTFRecord(
                prefix, file_name_suffix=suffix, num_shards=num_shards, compression_type=compression
            )
        )
    return (
        files
        | "Read"
        >> beam.io.ReadAllFromParquetBatched(columns=list(plan.columns), with_filename=True)
        | "Prune" >> beam.ParDo(PruneParquetBatch(plan.schema))
        | "CountOut" >> beam.ParDo(CountRecordsOut())
        | "Write"
        >> beam.io.WriteToParquetBatched(
            prefix, plan.schema, codec="snappy", file_name_suffix=".parquet", num_shards=num_shards
        )
    )


def counters(result: Any) -> dict[str, int]:
    """The job's counters (``records_in``, ``records_out``, ``present:<column>``), summed."""
    totals: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        totals[metric.key.metric.name] = totals.get(metric.key.metric.name, 0) + int(value or 0)
    return totals


def _check_counts(plan: PrunePlan, job: PruneJob, counts: dict[str, int]) -> None:
    records_in, records_out = counts.get("records_in", 0), counts.get("records_out", 0)
    if records_in != records_out:
        raise RuntimeError(f"Read {records_in} records but wrote {records_out}; output discarded.")
    if plan.expected_rows is not None and records_in != plan.expected_rows:
        raise RuntimeError(
            f"The Parquet footers promise {plan.expected_rows} rows but {records_in} were read; "
            "output discarded."
        )
    if plan.format == "tfrecord":
        never = [c for c in plan.columns if counts.get(PRESENT_PREFIX + c, 0) == 0]
        if never:
            named = "; ".join(f"{plan.roles[c]} {c!r}" for c in never)
            raise MissingColumnError(
                f"{job.input}: {named} appears in none of the {records_in} records of "
                f"{len(plan.files)} file(s) ({plan.files[0]} ...); output discarded. Check that "
                "the selection was made on this data."
            )


def run_prune(job: PruneJob, options: PipelineOptions | None = None) -> dict[str, Any]:
    """Plans, runs and checks the pruning job; returns the ``_SUCCESS`` manifest.

    Args:
        job: The job.
        options: Beam pipeline options; None: the DirectRunner.

    Returns:
        The manifest: input, selection, format, columns, counters, files, seconds.

    Raises:
        FileNotFoundError, ValueError, MissingColumnError: Bad input (see ``plan_prune``).
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.
        RuntimeError: The pipeline failed, or the end-of-job checks did not pass.

    Example:
        >>> manifest = run_prune(PruneJob("train.tfrecord.gz", "sel/", "pruned/"))
        >>> manifest["counters"]["records_out"]
    """
    import tensorflow as tf

    from recsel.atomic import atomic_output_dir, atomic_write_text

    started = time.time()
    plan = plan_prune(job)
    inputs = [job.input, job.selection]
    with atomic_output_dir(job.output_dir, overwrite=job.overwrite, inputs=inputs) as staging:
        pipeline = beam.Pipeline(options=options or PipelineOptions())
        build_prune_pipeline(pipeline, plan, os.path.join(staging, SHARD_PREFIX), job.num_shards)
        result = pipeline.run()
        result.wait_until_finish()
        counts = counters(result)
        _check_counts(plan, job, counts)
        written = sorted(os.path.basename(f) for f in tf.io.gfile.listdir(staging))
    manifest = {
        "input": job.input,
        "selection": job.selection,
        "format": plan.format,
        "compressed": plan.compressed,
        "columns": list(plan.columns),
        "counters": counts,
        "files": written,
        "seconds": round(time.time() - started, 3),
    }
    atomic_write_text(os.path.join(job.output_dir, SUCCESS_FILE), json.dumps(manifest, indent=2))
    return manifest
