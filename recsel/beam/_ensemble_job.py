"""The ensemble job's options (``EnsembleJob``) and its row shards; no Beam in here.

``recsel.beam.ensemble`` re-exports these names; they live apart so that the job's
inputs (``recsel.beam._ensemble_inputs``) and its graph both import them without a cycle.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from recsel import params
from recsel.inputs.prepare import InputOptions, should_stream
from recsel.spec.config import SelectionConfig


@dataclasses.dataclass(frozen=True)
class EnsembleJob:
    """Everything a worker needs; small and picklable (no frames, no models).

    The options shared with the CLI (widths, vocabulary threshold, NaN policy, split,
    streaming, where outputs go) take their defaults from ``recsel.params``.

    Args:
        input: Table path (file, directory of shards or glob; CSV, Parquet or TFRecord).
        label: Binary label column.
        output_dir: Output directory (local or ``gs://``); must be empty unless ``overwrite``.
        num_runs: Selection runs (at least 2).
        config: Selection settings; run ``i`` uses ``seed = config.seed + i``.
        shards: Give each run a disjoint shard of the training rows instead of all of them
            (streams: every ``num_runs``-th training file, so at least one file per run).
        features: A ``FeatureSet.to_dict()``; None builds one from the training rows (the
            statistics when streaming, ``recsel.inputs.inference.infer_feature_set`` otherwise).
        validation_fraction: Share of the rows (frames: split with ``config.seed``) or of
            the shards (streams: the last ones) held out for validation.
        embedding_dim: Full width of inferred features.
        exclude: Columns that are not candidates (inference only).
        categorical: Integer columns to treat as categorical (inference only).
        list_columns: CSV columns whose text cells are lists (frames only).
        list_separator: The separator of those cells.
        nan_policy: ``raise`` or ``impute`` (see ``recsel.inputs.tabular.validate_frame``; frames only).
        vocabulary_min_count: Values seen fewer times in training map to OOV (inference).
        stream: ``auto`` (stream TFRecord or Parquet data of two or more shards), ``on``
            or ``off`` (see ``recsel.inputs.prepare.should_stream``).
        shuffle_buffer: Streams: rows in each run's shuffle buffer.
        statistics: Streams: TFDV statistics of the training shards; None: computed once,
            before launch, under ``<checkpoint_dir>/statistics``.
        refit: Measure the consensus by training a ranker on it (else metrics are run means).
        overwrite: Replace a non-empty ``output_dir``.
        log_dir: TensorBoard directory; run ``i`` logs to ``<log_dir>/run-<i>``.
        checkpoint_dir: Where runs checkpoint (``<dir>/run-<i>``, ``<dir>/refit``), so a
            retried run (a preempted worker) resumes; default ``<output_dir>.checkpoint``.
            Removed on success.
        launched_at: Launch time (``time.time()``), for the reported wall time.
    """

    input: str
    label: str
    output_dir: str
    num_runs: int = 3
    config: SelectionConfig = dataclasses.field(default_factory=SelectionConfig)
    shards: bool = False
    features: dict[str, Any] | None = None
    validation_fraction: float = params.default("validation_fraction")
    embedding_dim: int = params.default("embedding_dim")
    exclude: tuple[str, ...] = params.default("exclude")
    categorical: tuple[str, ...] = params.default("categorical")
    list_columns: tuple[str, ...] = params.default("list_columns")
    list_separator: str = params.default("list_separator")
    nan_policy: str = params.default("nan_policy")
    vocabulary_min_count: int = params.default("vocabulary_min_count")
    stream: str = params.default("stream")
    shuffle_buffer: int = params.default("shuffle_buffer")
    statistics: str | None = None
    refit: bool = True
    overwrite: bool = params.default("overwrite")
    log_dir: str | None = params.default("log_dir")
    checkpoint_dir: str | None = params.default("checkpoint_dir")
    launched_at: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.num_runs < 2:
            raise ValueError(f"An ensemble needs at least 2 runs, got num_runs={self.num_runs}.")
        for name in ("stream", "shuffle_buffer"):
            params.get(name).check(getattr(self, name))
        self.input_options()  # checks the input options (a bad one fails before launch)
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "list_columns", tuple(self.list_columns))
        if self.list_columns and should_stream(self.input, self.stream):
            raise ValueError(
                "--list-columns needs the whole table in memory; it is not available while "
                "streaming. Pass --stream off, or write the cells as lists (Parquet or TFRecord)."
            )

    @property
    def checkpoint_root(self) -> str:
        """The directory holding every run's checkpoints."""
        return params.default_checkpoint_dir(self.output_dir, self.checkpoint_dir)

    @property
    def statistics_dir(self) -> str:
        """Where the statistics pass writes when ``statistics`` is not given."""
        return os.path.join(self.checkpoint_root, "statistics")

    def input_options(self, seed: int | None = None) -> InputOptions:
        """The ``recsel.inputs.prepare`` options of the job (``seed``: the stream's shuffle)."""
        return InputOptions(
            self.label,
            embedding_dim=self.embedding_dim,
            vocabulary_min_count=self.vocabulary_min_count,
            nan_policy=self.nan_policy,
            validation_fraction=self.validation_fraction,
            exclude=self.exclude,
            categorical=self.categorical,
            list_columns=self.list_columns,
            list_separator=self.list_separator,
            seed=self.config.seed if seed is None else seed,
        )

    def run_specs(self) -> list[dict[str, Any]]:
        """One small dict per run: index, seed and (with ``shards``) the shard to train on."""
        return [
            {
                "index": i,
                "seed": self.config.seed + i,
                "shard": i if self.shards else None,
                "num_shards": self.num_runs if self.shards else None,
            }
            for i in range(self.num_runs)
        ]


def shard_rows(num_rows: int, shard: int, num_shards: int, seed: int) -> np.ndarray:
    """Row positions of one of ``num_shards`` disjoint, covering, random shards (sorted).

    Example:
        >>> shard_rows(10, 0, 3, seed=0)  # about a third of 0..9
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}.")
    order = np.random.default_rng(seed).permutation(num_rows)
    return np.sort(order[shard::num_shards])


def refit_config(config: SelectionConfig, num_features: int) -> SelectionConfig:
    """The runs' config with nothing left to choose: every feature and chunk kept, and no
    budget (the consensus was chosen within it; a budget would start new rounds)."""
    return dataclasses.replace(
        config,
        num_features=num_features,
        feature_fraction=None,
        dim_fraction=1.0,
        latency_budget_ms=None,
        latency_budget_fraction=None,
        memory_budget_bytes=None,
        features_per_round=None,
    )
