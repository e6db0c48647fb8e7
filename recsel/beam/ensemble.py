"""Ensembled selection as a Beam batch job: N ``select()`` runs in parallel, one consensus.

Graph::

    Create(run specs) -> Reshuffle -> ParDo(RunSelection) -> ToList -> ParDo(WriteConsensus)
    Create([feature spec | None]) -> ParDo(InferFeatures) --side input--^

Each run spec is a seed (base seed + run index) and, with ``shards=True``, a disjoint shard
of the training rows. Workers read the table themselves from ``input`` (nothing but small
dicts travel through Beam), split it into training and validation rows with the base
seed (so every run validates on the same rows), run the one core ``recsel.select`` and emit
``SelectionResult.to_dict()``. The last step combines the runs by ``RULE`` (see
``recsel.beam._consensus``), refits a ranker on the consensus to measure it, and writes the
single-run output directory plus ``runs/run-<i>.json`` and ``ensemble.json``, atomically.

Example:
    >>> job = EnsembleJob("gs://b/events.parquet", "clicked", "gs://b/sel", num_runs=5,
    ...                   config=SelectionConfig(num_features=20))
    >>> summary = run_ensemble(job, PipelineOptions(runner="DataflowRunner", ...))
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.beam._consensus import RULE, consensus, consensus_result
from recsel.beam._ensemble_io import (
    ENSEMBLE_FILE,
    ensemble_record,
    final_line,
    write_ensemble_outputs,
)
from recsel.config import SelectionConfig
from recsel.features import FeatureSet
from recsel.result import SelectionResult

_LOG = logging.getLogger("recsel.beam.ensemble")


@dataclasses.dataclass(frozen=True)
class EnsembleJob:
    """Everything a worker needs; small and picklable (no frames, no models).

    Args:
        input: Table path (file, directory of shards or glob; CSV, Parquet or TFRecord).
        label: Binary label column.
        output_dir: Output directory (local or ``gs://``); must be empty unless ``overwrite``.
        num_runs: Selection runs (at least 2).
        config: Selection settings; run ``i`` uses ``seed = config.seed + i``.
        shards: Give each run a disjoint shard of the training rows instead of all of them.
        features: A ``FeatureSet.to_dict()``; None infers one on a worker from the
            training rows (``recsel.inference.infer_feature_set``).
        validation_fraction: Share of rows held out for validation (split with ``config.seed``).
        embedding_dim: Full width of inferred features.
        exclude: Columns that are not candidates (inference only).
        categorical: Integer columns to treat as categorical (inference only).
        nan_policy: ``raise`` or ``impute`` (see ``recsel.tabular.validate_frame``).
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
    validation_fraction: float = 0.2
    embedding_dim: int = 32
    exclude: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    nan_policy: str = "raise"
    refit: bool = True
    overwrite: bool = False
    log_dir: str | None = None
    checkpoint_dir: str | None = None
    launched_at: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.num_runs < 2:
            raise ValueError(f"An ensemble needs at least 2 runs, got num_runs={self.num_runs}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}."
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "categorical", tuple(self.categorical))

    @property
    def checkpoint_root(self) -> str:
        """The directory holding every run's checkpoints."""
        return self.checkpoint_dir or self.output_dir.rstrip("/") + ".checkpoint"

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


def _raw_split(job: EnsembleJob) -> tuple[pd.DataFrame, pd.DataFrame]:
    from recsel.tabular import read_table, split_frame

    frame = read_table(job.input, label=job.label)
    return split_frame(frame, job.validation_fraction, seed=job.config.seed)


def load_split(
    job: EnsembleJob, features: FeatureSet, shard: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads ``job.input`` and returns cleaned (train, valid); ``shard`` narrows train only.

    Args:
        job: The job.
        features: The candidate features (validated against the table).
        shard: Index of the training shard (``job.num_runs`` shards), or None for all rows.

    Returns:
        The cleaned training and validation frames.
    """
    from recsel.tabular import validate_frame

    train, valid = _raw_split(job)
    if shard is not None:
        rows = shard_rows(len(train), shard, job.num_runs, seed=job.config.seed + 1)
        train = train.iloc[rows]
    clean = {"nan_policy": job.nan_policy, "source": job.input}
    return (
        validate_frame(train, features, job.label, **clean),
        validate_frame(valid, features, job.label, **clean),
    )


class InferFeatures(beam.DoFn):
    """Passes a given feature-spec dict through, or infers one from the training rows."""

    def __init__(self, job: EnsembleJob):
        self.job = job

    def process(self, given: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        if given is not None:
            yield FeatureSet.from_dict(given, source="--features").to_dict()
            return
        from recsel.inference import infer_feature_set

        train, _ = _raw_split(self.job)
        features = infer_feature_set(
            train,
            self.job.label,
            embedding_dim=self.job.embedding_dim,
            categorical=list(self.job.categorical),
            exclude=list(self.job.exclude),
        )
        _LOG.info("Inferred %d candidate features from %s.", len(features), self.job.input)
        yield features.to_dict()


def run_line(spec: dict[str, Any], result: SelectionResult, seconds: float, num_runs: int) -> str:
    """The one-line progress summary of a finished run."""
    where = (
        f", shard {spec['shard'] + 1}/{spec['num_shards']}" if spec.get("shard") is not None else ""
    )
    return (
        f"run {spec['index'] + 1}/{num_runs} (seed {spec['seed']}{where}): "
        f"{len(result.selected)}/{len(result.candidates)} features [{', '.join(result.selected)}], "
        f"AUC {result.metrics.get('auc', float('nan')):.4f}, "
        f"log loss {result.metrics.get('log_loss', float('nan')):.4f}, {seconds:.1f} s"
    )


class RunSelection(beam.DoFn):
    """One ``select()`` run per spec; emits ``{"spec": ..., "result": SelectionResult dict}``."""

    def __init__(self, job: EnsembleJob):
        self.job = job

    def process(self, spec: dict[str, Any], features: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from recsel.selection import select

        started = time.time()
        feature_set = FeatureSet.from_dict(features)
        train, valid = load_split(self.job, feature_set, spec["shard"])
        config = dataclasses.replace(self.job.config, seed=spec["seed"])
        log_dir = (
            os.path.join(self.job.log_dir, f"run-{spec['index']}") if self.job.log_dir else None
        )
        result = select(
            train,
            valid,
            feature_set,
            config,
            log_dir=log_dir,
            progress=False,
            checkpoint_dir=os.path.join(self.job.checkpoint_root, f"run-{spec['index']}"),
        )
        result.provenance["ensemble_run"] = {**spec, "train_rows": len(train)}
        line = run_line(spec, result, time.time() - started, self.job.num_runs)
        _LOG.info(line)  # one plain 'recsel: ...' line (recsel.quiet's handler)
        yield {"spec": spec, "result": result.to_dict()}


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


def _refit(job: EnsembleJob, features: FeatureSet, selected: list[str], dims: dict[str, int]):
    """Trains and evaluates a ranker on exactly the consensus features at the consensus widths.

    It reuses ``select()`` with nothing left to choose: k = all given features and
    ``dim_fraction=1`` (every chunk kept), so the widths stay those of the consensus.
    """
    from recsel.selection import select

    train, valid = load_split(job, features)
    subset = features.subset(selected, dims)
    config = refit_config(job.config, len(subset))
    checkpoints = os.path.join(job.checkpoint_root, "refit")
    refit = select(train, valid, subset, config, progress=False, checkpoint_dir=checkpoints)
    if set(refit.selected) != set(selected) or refit.dims != dims:
        raise RuntimeError(
            f"The consensus refit changed the selection ({refit.selected}, {refit.dims}) instead "
            f"of keeping it ({selected}, {dims}); this is a bug in recsel, please report it."
        )
    return refit


class WriteConsensus(beam.DoFn):
    """Combines all runs, refits the consensus and writes the output directory atomically."""

    def __init__(self, job: EnsembleJob):
        self.job = job

    def process(
        self, emitted: list[dict[str, Any]], features: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        emitted = sorted(emitted, key=lambda e: e["spec"]["index"])
        if len(emitted) != self.job.num_runs:
            raise RuntimeError(f"Expected {self.job.num_runs} run results, got {len(emitted)}.")
        specs = [e["spec"] for e in emitted]
        runs = [SelectionResult.from_dict(e["result"]) for e in emitted]
        config = self.job.config
        chosen = consensus(runs, config.dim_multiple, config.chunk_size)
        feature_set = FeatureSet.from_dict(features)
        refit = (
            _refit(self.job, feature_set, chosen.selected, chosen.dims) if self.job.refit else None
        )
        record = ensemble_record(specs, runs, chosen, refit is not None)
        versions = (
            "recsel_version",
            "tensorflow_version",
            "python_version",
            "machine",
            "processor",
        )
        source = (refit or runs[0]).provenance
        provenance = {
            **{key: source[key] for key in versions if key in source},
            "seed": config.seed,
            "wall_seconds": round(time.time() - self.job.launched_at, 3),
            "ensemble": {
                "num_runs": self.job.num_runs,
                "seeds": [s["seed"] for s in specs],
                "shards": self.job.shards,
                "rule": RULE,
                "jaccard_mean": record["jaccard_mean"],
            },
        }
        if refit is not None:
            provenance["refit"] = {
                key: refit.provenance.get(key)
                for key in ("steps", "train_rows_seen", "wall_seconds")
            }
        result = consensus_result(runs, chosen, refit, provenance)
        write_ensemble_outputs(
            self.job.output_dir, result, feature_set, runs, record, overwrite=self.job.overwrite
        )
        _remove_if_empty(self.job.checkpoint_root)  # each select() removed its own on success
        summary = final_line(result, record)
        _LOG.info(summary)  # one plain 'recsel: ...' line (recsel.quiet's handler)
        yield {"output_dir": self.job.output_dir, "summary": summary}


def _remove_if_empty(path: str) -> None:
    import tensorflow as tf

    if tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path):
        tf.io.gfile.rmtree(path)


def build_ensemble_pipeline(pipeline: beam.Pipeline, job: EnsembleJob) -> beam.PCollection:
    """Adds the ensemble job to ``pipeline``; returns the PCollection of the final summary.

    Args:
        pipeline: A Beam pipeline (any runner).
        job: The job.

    Returns:
        A one-element PCollection ``{"output_dir", "summary"}``.

    Example:
        >>> with beam.Pipeline(options=options) as p:
        ...     build_ensemble_pipeline(p, job)
    """
    features = (
        pipeline
        | "FeatureSpec" >> beam.Create([job.features], reshuffle=False)
        | "InferFeatures" >> beam.ParDo(InferFeatures(job))
    )
    features_side = beam.pvalue.AsSingleton(features)
    return (
        pipeline
        | "RunSpecs" >> beam.Create(job.run_specs())
        | "Spread" >> beam.Reshuffle()  # one run per worker rather than all in one bundle
        | "Select" >> beam.ParDo(RunSelection(job), features_side)
        | "Gather" >> beam.combiners.ToList()
        | "Consensus" >> beam.ParDo(WriteConsensus(job), features_side)
    )


def run_ensemble(job: EnsembleJob, options: PipelineOptions | None = None) -> dict[str, Any]:
    """Runs the ensemble job to completion and returns ``ensemble.json`` as a dict.

    Checks the output directory before launching, so a job that would fail at the end
    fails at once.

    Args:
        job: The job.
        options: Beam pipeline options (runner, project, ...); None: the DirectRunner.

    Returns:
        The ensemble record written to ``<output_dir>/ensemble.json``.

    Raises:
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.

    Example:
        >>> record = run_ensemble(job, PipelineOptions(["--direct_num_workers=2"]))
    """
    from recsel.atomic import check_output_dir, read_text

    check_output_dir(job.output_dir, job.overwrite)
    if job.features is not None:
        FeatureSet.from_dict(job.features, source="--features")  # fail before launching
    pipeline = beam.Pipeline(options=options or PipelineOptions())
    build_ensemble_pipeline(pipeline, job)
    pipeline.run().wait_until_finish()
    return json.loads(read_text(os.path.join(job.output_dir, ENSEMBLE_FILE)))
