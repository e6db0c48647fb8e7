"""Examples and statistics artifacts in: splits, their TFXIO readers, TFMD statistics.

The executor streams each split through the TFXIO this module builds (whatever the
payload: tf.Example TFRecords, Parquet, ...), as Trainer reads it; no split becomes a
frame. Statistics come from StatisticsGen's artifact or from one TFDV pass here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.components.util import examples_utils, tfxio_utils
from tfx.types import artifact_utils

from recsel.inputs.schema_io import read_statistics

TELEMETRY = ["SequentialAttentionSelector"]


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
