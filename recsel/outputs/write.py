"""The output contract: one directory, written atomically, whoever calls.

Files:
    schema.pbtxt           the input TFMD schema, dropped features DEPRECATED (or a
                           fresh schema of the kept features when there was none)
    embedding_config.json  per kept feature: table, vocabulary size, dim, combiner, valency
    selection.json         the full SelectionResult (order, weights, rounds, cost model)
    feature_spec.json      the candidate FeatureSet the selection ran on
    vocabularies/*.txt     each vocabulary, one value per line (recsel.outputs.vocabulary_files),
                           referenced as vocabulary_file from feature_spec.json and
                           embedding_config.json
    report.html            a self-contained report

Example:
    >>> write_outputs(result, features, "gs://bucket/selection", input_schema=schema)
"""

from __future__ import annotations

import json
import os

from tensorflow_metadata.proto.v0 import schema_pb2

from recsel.atomic import atomic_output_dir, atomic_write_text
from recsel.outputs.embedding_config import embedding_config_from_features, write_embedding_config
from recsel.outputs.schema import prune_schema, schema_for_features, write_schema
from recsel.outputs.vocabulary_files import (
    vocabulary_files,
    with_vocabulary_files,
    write_vocabulary_files,
)
from recsel.spec import contract
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult

SCHEMA_FILE = "schema.pbtxt"
EMBEDDING_CONFIG_FILE = "embedding_config.json"
SELECTION_FILE = "selection.json"
FEATURE_SPEC_FILE = "feature_spec.json"
REPORT_FILE = "report.html"


def kept_features(result: SelectionResult, features: FeatureSet) -> FeatureSet:
    """The selected features at their chosen widths, in spec order."""
    return features.subset(result.selected, result.dims)


def write_outputs(
    result: SelectionResult,
    features: FeatureSet,
    output_dir: str,
    *,
    input_schema: schema_pb2.Schema | None = None,
    overwrite: bool = False,
    report: bool = True,
    ensemble: dict | None = None,
) -> str:
    """Writes the output directory; nothing appears at ``output_dir`` unless all succeed.

    Args:
        result: The selection.
        features: The candidate feature set the selection ran on.
        output_dir: Destination directory (local or ``gs://``).
        input_schema: The input TFMD schema, if the data came with one.
        overwrite: Replace a non-empty ``output_dir``.
        report: Also write ``report.html``.
        ensemble: Per-run selections and stability, for ensembled runs' reports.

    Returns:
        ``output_dir``.
    """
    contract.validate(result.to_dict(), "selection.schema.json", SELECTION_FILE)
    kept = kept_features(result, features)
    config = result.config
    vocabularies = vocabulary_files(features)
    embedding_config = embedding_config_from_features(
        kept,
        config.get("chunk_size", 8),
        config.get("dim_multiple", 8),
        {n: result.full_dims[n] for n in kept.names},
    )
    embedding_config = with_vocabulary_files(embedding_config, vocabularies)
    schema = (
        prune_schema(input_schema, result.selected, result.label)
        if input_schema is not None
        else schema_for_features(kept)
    )
    with atomic_output_dir(output_dir, overwrite=overwrite) as staging:
        write_schema(schema, os.path.join(staging, SCHEMA_FILE))
        write_vocabulary_files(features, vocabularies, staging)
        write_embedding_config(embedding_config, os.path.join(staging, EMBEDDING_CONFIG_FILE))
        result.to_json(os.path.join(staging, SELECTION_FILE))
        spec = with_vocabulary_files(features.to_dict(), vocabularies)
        atomic_write_text(
            os.path.join(staging, FEATURE_SPEC_FILE), json.dumps(spec, indent=2) + "\n"
        )
        if report:
            from recsel.outputs.report.page import write_report

            write_report(
                result, os.path.join(staging, REPORT_FILE), features=features, ensemble=ensemble
            )
    return output_dir


def find_selections(root: str) -> list[str]:
    """Directories under ``root`` (itself included) that hold a ``selection.json``, newest first.

    Covers the three layouts recsel writes: the CLI's and the ensemble job's
    ``--output-dir`` (``selection.json`` at the top, plus ``ensemble.json`` and ``runs/``
    for an ensemble), and a TFX run, where the selector's artifact nests the files under
    ``<pipeline_root>/SequentialAttentionSelector/feature_selection/<execution id>/``.
    Staging directories of unfinished writes (``*.staging-*``) are skipped.

    Args:
        root: An output directory, an artifact URI or any directory above them (local
            or ``gs://``).

    Returns:
        The directories, the most recently written first.

    Raises:
        FileNotFoundError: ``root`` does not exist.

    Example:
        >>> find_selections("runs/tfx_demo")[0]
        'runs/tfx_demo/pipeline_root/SequentialAttentionSelector/feature_selection/7'
    """
    import tensorflow as tf

    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"{root}: no such directory; pass a recsel output directory.")
    if tf.io.gfile.exists(os.path.join(root, SELECTION_FILE)):
        return [root]
    found = []
    for directory, subdirs, files in tf.io.gfile.walk(root):
        subdirs[:] = [d for d in subdirs if ".staging-" not in d]
        if SELECTION_FILE in files:
            path = os.path.join(directory, SELECTION_FILE)
            found.append((tf.io.gfile.stat(path).mtime_nsec, directory))
    return [d for _, d in sorted(found, reverse=True)]
