"""``SequentialAttentionSelector``: a TFX component that selects features and widths.

Example:
    >>> selector = SequentialAttentionSelector(
    ...     examples=example_gen.outputs["examples"],
    ...     schema=schema_gen.outputs["schema"],
    ...     statistics=statistics_gen.outputs["statistics"],
    ...     label_key="clicked",
    ...     num_features=20,
    ... )
    >>> transform = Transform(examples=..., schema=selector.outputs["pruned_schema"], ...)
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from recsel.tfx import spec
from recsel.tfx._params import check_plain_params
from recsel.tfx.artifacts import FeatureSelection
from recsel.tfx.executor import Executor


class SequentialAttentionSelectorSpec(types.ComponentSpec):
    """Inputs, outputs and execution parameters (keys in ``recsel.tfx.spec``)."""

    PARAMETERS = {
        spec.LABEL_KEY: ExecutionParameter(type=str),
        spec.TRAIN_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        spec.EVAL_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        spec.MODULE_FILE_KEY: ExecutionParameter(type=str, optional=True),
        spec.MODULE_PATH_KEY: ExecutionParameter(type=str, optional=True),
        spec.TOWER_FN_KEY: ExecutionParameter(type=str, optional=True),
        # The parameters every shell shares, with their types, from recsel.params.
        **{
            name: ExecutionParameter(type=kind, optional=True)
            for name, kind in {**spec.INPUT_PARAMETERS, **spec.CONFIG_PARAMETERS}.items()
        },
    }
    INPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        spec.STATISTICS_KEY: ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True
        ),
        spec.TRANSFORM_GRAPH_KEY: ChannelParameter(
            type=standard_artifacts.TransformGraph, optional=True
        ),
    }
    OUTPUTS = {
        spec.PRUNED_SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        spec.FEATURE_SELECTION_KEY: ChannelParameter(type=FeatureSelection),
    }


class SequentialAttentionSelector(base_beam_component.BaseBeamComponent):
    """Chooses which features a ranker keeps and how wide each one's embedding is.

    Trains a small gated ranker on the train split with Sequential Attention over
    features and embedding chunks (``recsel.select``), validates it on the eval split
    and publishes:

    - ``pruned_schema`` (``Schema``): the input schema with the dropped features
      ``DEPRECATED``; wire it into Transform and Trainer so they parse only the kept
      features.
    - ``feature_selection`` (``recsel.FeatureSelection``): ``embedding_config.json``
      (tables and widths for the trainer), ``selection.json``, ``feature_spec.json``
      and ``report.html``.

    Beam is used for statistics when ``statistics`` is not given; per-component Beam
    options go through ``with_beam_pipeline_args`` as for any Beam component. The
    selection model itself trains in the executor's process, streaming both splits with
    TFXIO as Trainer does (one pass; memory is bounded by ``shuffle_buffer`` and the
    candidates' embedding tables, not by the rows).

    Args:
        examples: ``Examples`` channel with the train and eval splits.
        schema: ``Schema`` channel (e.g. SchemaGen's).
        label_key: The binary label feature.
        statistics: Optional ``ExampleStatistics`` (StatisticsGen's), which supplies
            vocabularies, valencies and quantiles without another pass over the data.
        transform_graph: Optional ``TransformGraph``, recorded for lineage only (pass it
            when ``examples`` come from Transform); it is not applied.
        train_split: Training split name (default ``train``).
        eval_split: Validation split name (default ``eval``).
        num_features: Features to keep (exclusive with ``feature_fraction``).
        feature_fraction: Share of candidates to keep.
        latency_budget_ms: p50 serving latency budget at ``serving_batch_size``.
        latency_budget_fraction: The latency budget as a share of the full model's p50,
            measured on the machine that runs the selector (exclusive with
            ``latency_budget_ms``).
        memory_budget_bytes: Embedding-table memory budget.
        serving_batch_size: Batch size of the latency measurement.
        embedding_dim: Full embedding width of every candidate (default 16).
        vocabulary_min_count: Vocabulary frequency threshold (default 5): values the
            statistics count fewer times map to OOV, like ``tft.vocabulary``'s
            ``frequency_threshold``; rare values can only be memorised, which lets
            ID-like columns win the selection. 1 keeps every value. Schema domains are
            kept as written.
        chunk_size: Embedding columns per selectable chunk.
        dim_multiple: Chosen widths are multiples of this.
        min_dim: Smallest width of a kept feature.
        max_dim: Largest width of a kept feature.
        batch_size: Selection-model batch size.
        epochs: Passes over the training rows (keep about 1).
        train_steps: Training steps of the whole run (overrides ``epochs``).
        learning_rate: Selection-model learning rate.
        seed: Seed of the selection run.
        dim_fraction: Without a budget, the share of a kept feature's chunks kept.
        chunk_significance: In widths-only runs (every candidate kept), a kept feature's
            chunk is dropped unless ablating it raises the validation log loss by more than
            this many standard errors.
        warmup_fraction: Leading share of the first round with every gate at 1.
        chunk_phase_fraction: Trailing share of each round that chooses widths.
        finetune_steps: Hard-gated fine-tuning steps at the end of each round.
        l2: L2 penalty on looked-up embedding rows.
        logit_scale: Attention logit multiplier.
        features_per_round: Features selected per round under a budget.
        cost_rule: ``weight`` (attention weight among the candidates that fit) or
            ``ratio`` (weight per unit cost), under a budget.
        plateau_tolerance: Under a budget, the validation AUC a round's new features
            must add.
        plateau_patience: Under a budget, stop after this many rounds in a row add nothing
            (less than plateau_tolerance AUC, or over budget).
        log_every: Record the attention trajectory every this many steps.
        nan_policy: ``raise`` (default) or ``impute`` missing numeric values.
        module_file: A Python file defining the custom selection tower's factory (see
            ``recsel.model.tower``): it returns a ``tf_keras`` layer mapping the embedding
            vector to one logit. Use your ranker's head, so features are chosen for it.
        tower_fn: The factory's name in ``module_file`` (default ``build_tower``); without
            ``module_file``, a fully-qualified ``package.module.function``.

    Raises:
        ValueError: Parameters the core rejects (checked here when they are plain values).

    Example:
        >>> selector = SequentialAttentionSelector(
        ...     examples=gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        ...     label_key="clicked", latency_budget_ms=3.0,
        ... ).with_beam_pipeline_args(["--runner=DataflowRunner", ...])
    """

    SPEC_CLASS = SequentialAttentionSelectorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        schema: types.BaseChannel,
        label_key: str,
        statistics: types.BaseChannel | None = None,
        transform_graph: types.BaseChannel | None = None,
        train_split: str = spec.DEFAULT_TRAIN_SPLIT,
        eval_split: str = spec.DEFAULT_EVAL_SPLIT,
        num_features: int | None = None,
        feature_fraction: float | None = None,
        latency_budget_ms: float | None = None,
        latency_budget_fraction: float | None = None,
        memory_budget_bytes: float | None = None,
        serving_batch_size: int | None = None,
        embedding_dim: int = spec.DEFAULT_EMBEDDING_DIM,
        vocabulary_min_count: int = spec.DEFAULT_VOCABULARY_MIN_COUNT,
        chunk_size: int | None = None,
        dim_multiple: int | None = None,
        min_dim: int | None = None,
        max_dim: int | None = None,
        batch_size: int | None = None,
        epochs: float | None = None,
        train_steps: int | None = None,
        learning_rate: float | None = None,
        seed: int | None = None,
        dim_fraction: float | None = None,
        chunk_significance: float | None = None,
        warmup_fraction: float | None = None,
        chunk_phase_fraction: float | None = None,
        finetune_steps: int | None = None,
        l2: float | None = None,
        logit_scale: float | None = None,
        features_per_round: int | None = None,
        cost_rule: str | None = None,
        plateau_tolerance: float | None = None,
        plateau_patience: int | None = None,
        log_every: int | None = None,
        nan_policy: str = spec.DEFAULT_NAN_POLICY,
        module_file: str | None = None,
        tower_fn: str | None = None,
    ):
        params: dict[str, Any] = {
            spec.LABEL_KEY: label_key,
            spec.TRAIN_SPLIT_KEY: train_split,
            spec.EVAL_SPLIT_KEY: eval_split,
            spec.MODULE_FILE_KEY: module_file,
            spec.TOWER_FN_KEY: tower_fn,
        }
        given = locals()  # the signature names every recsel.params parameter TFX exposes
        for name, kind in {**spec.INPUT_PARAMETERS, **spec.CONFIG_PARAMETERS}.items():
            value = given[name]
            # 3 for a float parameter is fine; TFX's type check is strict.
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            params[name] = value
        check_plain_params(params)
        component_spec = SequentialAttentionSelectorSpec(
            examples=examples,
            schema=schema,
            statistics=statistics,
            transform_graph=transform_graph,
            pruned_schema=types.Channel(type=standard_artifacts.Schema),
            feature_selection=types.Channel(type=FeatureSelection),
            **params,
        )
        super().__init__(spec=component_spec)
        if module_file and udf_utils.should_package_user_modules():
            # As for Trainer: TFX packages the module file's folder into a wheel under the
            # pipeline root and passes it as module_path, so remote runs can import it
            # and editing the module invalidates this component's cache.
            udf_utils.add_user_module_dependency(self, spec.MODULE_FILE_KEY, spec.MODULE_PATH_KEY)
