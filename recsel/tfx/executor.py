"""The ``SequentialAttentionSelector`` executor: TFXIO in, ``recsel.select``, artifacts out.

The executor is a thin shell around ``recsel.select`` (no selection logic of its own) and
``recsel.outputs.write.write_outputs``. Remote workers import it as
``recsel.tfx.executor.Executor``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from typing import Any

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from recsel import quiet
from recsel.atomic import atomic_write_text, read_text
from recsel.inputs.prepare import InputOptions, build_features
from recsel.inputs.schema_io import read_schema
from recsel.inputs.statistics import num_rows
from recsel.inputs.tfxio_source import TFXIOSource, check_against_statistics
from recsel.outputs.write import write_outputs
from recsel.selection.driver import select
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult
from recsel.tfx import _data, spec
from recsel.tfx._params import SelectorParams, load_tower, parse_params

# recsel's own logger: its lines show in quiet mode (absl's INFO does not).
_LOG = logging.getLogger("recsel.tfx")


class Executor(base_beam_executor.BaseBeamExecutor):
    """Selects features and embedding widths with Sequential Attention.

    Streams the train and eval splits with TFXIO (``TensorFlowDataset``, as Trainer
    reads; no split is ever held in memory), plans one pass from the training
    statistics' row count, builds the candidate ``FeatureSet``
    from the schema and the training split's statistics, runs ``recsel.select`` and
    publishes the pruned schema and the recsel output directory. Nothing is published
    when any step fails: outputs are staged and renamed into place at the end. The
    selection checkpoints into the execution's stateful working directory, so a retried
    (e.g. preempted) execution resumes instead of starting over.

    Inputs (``input_dict``):
        examples: ``Examples`` with the train and eval splits.
        schema: ``Schema`` describing the examples (e.g. SchemaGen's).
        statistics: Optional ``ExampleStatistics`` (StatisticsGen's): vocabularies,
            valencies and numeric quantiles come from its training split. Without it,
            the executor computes them with TFDV in a Beam pipeline, so
            ``beam_pipeline_args`` apply.
        transform_graph: Optional ``TransformGraph``. Recorded only (lineage and the
            ``transform_graph_uri`` custom property): pass it when ``examples`` are
            Transform's transformed examples. It is not applied to the examples.

    Outputs (``output_dict``):
        pruned_schema: ``Schema`` whose ``schema.pbtxt`` is the input schema with the
            dropped features ``DEPRECATED``; Transform and Trainer take it as is.
        feature_selection: ``recsel.FeatureSelection`` holding ``embedding_config.json``,
            ``selection.json``, ``feature_spec.json``, ``report.html`` and
            ``schema.pbtxt``; custom properties ``selected_features``, ``num_selected``,
            ``auc`` and (when measured) ``latency_ms_p50``.

    Execution properties (``exec_properties``):
        label_key: Label feature (required).
        train_split: Training split (default ``train``).
        eval_split: Validation split (default ``eval``).
        embedding_dim: Full embedding width of every candidate (default 16).
        vocabulary_min_count: Values the statistics count fewer times map to OOV
            (default 5; see ``SequentialAttentionSelector``).
        nan_policy: ``raise`` (default) or ``impute`` missing numeric values.
        module_file: Optional Python file with the custom selection tower's factory.
        module_path: Optional importable module with it (TFX sets this after packaging
            ``module_file`` into a wheel; the wheel is installed to import it).
        tower_fn: The factory's name in the module (default ``build_tower``); alone, a
            fully-qualified ``package.module.function``.
        num_features, feature_fraction, latency_budget_ms, latency_budget_fraction,
        memory_budget_bytes, serving_batch_size, chunk_size, dim_multiple, min_dim,
        max_dim, batch_size, epochs, train_steps, learning_rate, seed: passed to
            ``recsel.SelectionConfig`` (None keeps its default). A budget that cannot be met fails with the minimum achievable
            latency in the message.
    """

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Runs the selection; see the class docstring for the keys.

        Raises:
            ValueError: Bad parameters, a label missing from the schema, unknown splits,
                schema features missing from the examples, unusable data or an
                unachievable budget (``recsel.selection.budget.BudgetError``).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        if not quiet.is_verbose():
            quiet.plain_warnings()  # "recsel WARNING: ...", as the run's log lines read
        params = parse_params(exec_properties)
        tower = load_tower(exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        schema_path = io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict[spec.SCHEMA_KEY])
        )
        schema = read_schema(schema_path)
        _check_label(schema, params.label_key, schema_path)
        _data.check_splits(examples, params.train_split, params.eval_split)
        selection = artifact_utils.get_single_instance(output_dict[spec.FEATURE_SELECTION_KEY])
        statistics = self._statistics(input_dict, examples, schema, params, selection.uri)
        options = InputOptions(
            params.label_key,
            embedding_dim=params.embedding_dim,
            vocabulary_min_count=params.vocabulary_min_count,
            nan_policy=params.nan_policy,
        )
        features = build_features(options, schema=schema, statistics=statistics)
        train_where = f"split {params.train_split!r} of the examples at {examples.uri}"
        check_against_statistics(
            features, params.label_key, statistics, params.nan_policy, train_where
        )
        train = self._stream(examples, params.train_split, schema, features, params)
        train.num_rows = num_rows(statistics)
        valid = self._stream(examples, params.eval_split, schema, features, params)
        _LOG.info(
            "Selecting among %d candidates, streaming %d training rows (per the statistics) "
            "and the %r split for validation.",
            len(features),
            train.num_rows,
            params.eval_split,
        )
        result = select(
            train,
            valid,
            features,
            dataclasses.replace(params.config, tower=tower),
            progress=False,
            checkpoint_dir=self._checkpoint_dir(),
        )
        _LOG.info(  # one line: the full summary is in selection.json and recsel report
            "Selection finished: kept %d of %d features, validation AUC %.4f.",
            len(result.selected),
            len(result.candidates),
            result.metrics.get("auc", float("nan")),
        )
        transform_graph = input_dict.get(spec.TRANSFORM_GRAPH_KEY) or []
        _publish(
            result,
            features,
            schema,
            selection,
            artifact_utils.get_single_instance(output_dict[spec.PRUNED_SCHEMA_KEY]),
            transform_graph[0].uri if transform_graph else None,
        )

    def _statistics(
        self,
        input_dict: dict[str, list[types.Artifact]],
        examples: types.Artifact,
        schema: schema_pb2.Schema,
        params: SelectorParams,
        output_uri: str,
    ) -> statistics_pb2.DatasetFeatureStatisticsList:
        given = input_dict.get(spec.STATISTICS_KEY) or []
        if given:
            stats = artifact_utils.get_single_instance(given)
            return _data.load_statistics(stats, params.train_split)
        work_dir = os.path.join(self._scratch_root(output_uri), f"recsel-stats-{uuid.uuid4().hex}")
        _LOG.info("No statistics input: computing them with TFDV under %s.", work_dir)
        try:
            return _data.compute_statistics(
                self._make_beam_pipeline, examples, params.train_split, schema, work_dir
            )
        finally:
            if tf.io.gfile.exists(work_dir):
                tf.io.gfile.rmtree(work_dir)

    def _checkpoint_dir(self) -> str | None:
        # TFX keeps the stateful working dir across retries of one execution, so a
        # preempted selection resumes where it stopped (select() removes it on success).
        stateful = self._context.stateful_working_dir if self._context else None
        return os.path.join(stateful, "selection-checkpoint") if stateful else None

    def _scratch_root(self, output_uri: str) -> str:
        try:
            return self._get_tmp_dir()
        except RuntimeError:  # No executor context (a direct call): next to the output.
            return os.path.dirname(output_uri.rstrip("/"))

    def _stream(
        self,
        examples: types.Artifact,
        split: str,
        schema: schema_pb2.Schema,
        features: FeatureSet,
        params: SelectorParams,
    ) -> TFXIOSource:
        """One split as a stream, read with TFXIO as Trainer reads it (never a frame)."""
        return TFXIOSource(
            _data.split_tfxio(examples, split, schema),
            features,
            params.label_key,
            impute_numeric=params.nan_policy == "impute",
            where=f"split {split!r} of the examples at {examples.uri}",
        )


def _check_label(schema: schema_pb2.Schema, label: str, schema_path: str) -> None:
    names = [f.name for f in schema.feature]
    if label not in names:
        raise ValueError(
            f"label_key {label!r} is not a feature of the schema {schema_path}; its features "
            f"are: {', '.join(names) or '(none)'}. Set label_key to the label's schema name."
        )


def _publish(
    result: SelectionResult,
    features: FeatureSet,
    schema: schema_pb2.Schema,
    selection: types.Artifact,
    pruned: types.Artifact,
    transform_graph_uri: str | None,
) -> None:
    """Writes both outputs; on any failure removes what was written, so nothing looks valid."""
    write_outputs(result, features, selection.uri, input_schema=schema)
    try:
        pruned_text = read_text(os.path.join(selection.uri, spec.SCHEMA_FILE))
        atomic_write_text(os.path.join(pruned.uri, spec.SCHEMA_FILE), pruned_text)
    except BaseException:
        if tf.io.gfile.exists(selection.uri):
            tf.io.gfile.rmtree(selection.uri)
        raise
    selection.set_string_custom_property(
        spec.SELECTED_FEATURES_PROPERTY, json.dumps(list(result.selected))
    )
    selection.set_int_custom_property(spec.NUM_SELECTED_PROPERTY, len(result.selected))
    selection.set_float_custom_property(spec.AUC_PROPERTY, float(result.metrics["auc"]))
    latency = result.rounds[result.final_round].latency_ms_p50 if result.rounds else None
    if latency is not None:
        selection.set_float_custom_property(spec.LATENCY_P50_PROPERTY, float(latency))
    if transform_graph_uri:
        selection.set_string_custom_property(spec.TRANSFORM_GRAPH_URI_PROPERTY, transform_graph_uri)
