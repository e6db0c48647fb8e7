"""Examples and statistics artifacts in, clean frames and TFMD statistics out.

The executor reads examples with TFXIO (whatever the payload: tf.Example TFRecords,
Parquet, ...) into Arrow record batches, then into the frames ``recsel.select`` takes.
TFXIO gives every feature as a list column; scalar features are unwrapped here, so a
frame holds scalars and, for multi-valent features, Python lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.components.util import examples_utils, tfxio_utils
from tfx.types import artifact_utils
from tfx_bsl.tfxio import dataset_options

from recsel.inputs.schema_io import read_statistics
from recsel.inputs.tabular import arrow_to_frame
from recsel.spec.features import FeatureSet, FeatureSpec

TELEMETRY = ["SequentialAttentionSelector"]
_READ_BATCH = 8192


def available_splits(examples: types.Artifact) -> list[str]:
    """Split names of an Examples artifact (custom split patterns included)."""
    if examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
        patterns = examples.get_string_custom_property(
            examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME
        )
        return list(json.loads(patterns))
    return list(artifact_utils.decode_split_names(examples.split_names or "[]"))


def check_splits(examples: types.Artifact, train_split: str, eval_split: str) -> None:
    """Both splits must exist and differ; the message lists the splits there are."""
    if train_split == eval_split:
        raise ValueError(
            f"train_split and eval_split are both {train_split!r}: selection would be "
            "validated on its own training rows. Name two different splits."
        )
    splits = available_splits(examples)
    for role, split in (("train_split", train_split), ("eval_split", eval_split)):
        if split not in splits:
            raise ValueError(
                f"{role} {split!r} is not a split of the examples at {examples.uri}; "
                f"available splits: {', '.join(splits) or '(none)'}. Set {role} to one "
                "of them (ExampleGen's output_config names the splits)."
            )


def split_tfxio(examples: types.Artifact, split: str, schema: schema_pb2.Schema):
    """The TFXIO that reads one split of ``examples``, decoding with ``schema``."""
    return tfxio_utils.get_split_tfxio([examples], split, TELEMETRY, schema=schema)


def read_split(examples: types.Artifact, split: str, schema: schema_pb2.Schema) -> pa.Table:
    """All rows of one split as an Arrow table (one list column per schema feature)."""
    tfxio = split_tfxio(examples, split, schema)
    options = dataset_options.RecordBatchesOptions(
        batch_size=_READ_BATCH, num_epochs=1, shuffle=False
    )
    batches = list(tfxio.RecordBatches(options))
    if not batches or not sum(b.num_rows for b in batches):
        raise ValueError(
            f"Split {split!r} of the examples at {examples.uri} has no rows; selection "
            "needs training and validation rows."
        )
    return pa.Table.from_batches(batches)


def _unwrap_scalar(column: pa.ChunkedArray, name: str, where: str) -> pa.Array:
    """A list column with at most one value per row as a flat column (empty -> null)."""
    lists = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    if lengths.size and lengths.max() > 1:
        raise ValueError(
            f"{where}: feature {name!r} has up to {int(lengths.max())} values in one example, "
            "but the schema and statistics make it scalar. Give it value_count.max > 1 in "
            "the schema (so it is treated as multi-valent), or fix the data."
        )
    flat = pc.list_flatten(lists)
    if (lengths == 1).all():
        return flat
    # Rows with no value point at a null index, which take() turns into a null.
    index = pa.array(np.cumsum(lengths) - 1, mask=lengths == 0)
    return flat.take(index)


def _decode_text(array: pa.Array) -> pa.Array:
    """Binary values (tf.Example bytes) -> UTF-8 strings, for string features."""
    kind = array.type
    if pa.types.is_large_list(kind) or pa.types.is_list(kind):
        if pa.types.is_binary(kind.value_type) or pa.types.is_large_binary(kind.value_type):
            return pc.cast(array, pa.large_list(pa.large_string()))
        return array
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pc.cast(array, pa.large_string())
    return array


def _column(table: pa.Table, spec: FeatureSpec | None, name: str, where: str) -> pa.Array:
    column = table.column(name)
    if spec is not None and spec.is_multivalent:
        array = column.combine_chunks()
    else:
        array = _unwrap_scalar(column, name, where)
    if spec is None or spec.dtype == "string":
        try:
            array = _decode_text(array)
        except pa.ArrowInvalid as err:
            raise ValueError(f"{where}: feature {name!r} holds bytes that are not UTF-8.") from err
    return array


def table_to_frame(table: pa.Table, features: FeatureSet, label: str, where: str) -> pd.DataFrame:
    """The candidate features and the label of ``table`` as a frame ``validate_frame`` takes.

    Args:
        table: A split read by ``read_split``.
        features: The candidate features.
        label: The label column.
        where: Names the split and its location in error messages.

    Returns:
        One column per candidate and the label.

    Raises:
        ValueError: A schema feature (or the label) has no value in any example, or a
            scalar feature holds several values.
    """
    names = [*features.names, label]
    absent = [
        n for n in names if n not in table.column_names or table.column(n).null_count == len(table)
    ]
    if absent:
        raise ValueError(
            f"{where}: schema feature(s) {absent} have no value in any example; the examples "
            "do not contain them. Regenerate the schema from these examples (SchemaGen) or "
            "mark those features DEPRECATED in the schema."
        )
    specs = {s.name: s for s in features}
    columns = {n: _column(table, specs.get(n), n, where) for n in names}
    return arrow_to_frame(pa.table(columns))


def statistics_splits(statistics: types.Artifact) -> list[str]:
    return list(artifact_utils.decode_split_names(statistics.split_names or "[]"))


def load_statistics(
    statistics: types.Artifact, split: str
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The statistics of ``split`` from a StatisticsGen artifact."""
    splits = statistics_splits(statistics)
    if split not in splits:
        raise ValueError(
            f"The statistics at {statistics.uri} have no split {split!r} (they have: "
            f"{', '.join(splits) or 'none'}). Compute statistics for the training split, or "
            "leave the statistics input out and the selector computes them."
        )
    return stats_artifact_utils.load_statistics(statistics, split).proto()


def compute_statistics(
    make_pipeline: Callable,
    examples: types.Artifact,
    split: str,
    schema: schema_pb2.Schema,
    work_dir: str,
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Runs TFDV over one split in a Beam pipeline and reads the result back.

    Args:
        make_pipeline: The executor's ``_make_beam_pipeline``, so ``beam_pipeline_args``
            (runner, workers, Dataflow options) apply.
        examples: The Examples artifact.
        split: The split to describe.
        schema: Decodes the examples and types the statistics (as StatisticsGen does).
        work_dir: Where the statistics file is written (local or ``gs://``).

    Returns:
        The statistics, computed with the same options as StatisticsGen's defaults.
    """
    path = os.path.join(work_dir, f"Split-{split}", "FeatureStats.pb")
    tfxio = split_tfxio(examples, split, schema)
    with make_pipeline() as pipeline:
        _ = (
            pipeline
            | f"TFXIORead[{split}]" >> tfxio.BeamSource()
            | "GenerateStatistics" >> tfdv.GenerateStatistics(tfdv.StatsOptions(schema=schema))
            | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(path)
        )
    return read_statistics(path)
