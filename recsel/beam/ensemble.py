"""Ensembled selection as a Beam batch job: N ``select()`` runs in parallel, one consensus.

Graph::

    Create(run specs) -> Reshuffle -> ParDo(RunSelection) -> ToList -> ParDo(WriteConsensus)
    Create([feature spec | None]) -> ParDo(InferFeatures) --side input--^

Each run spec is a seed (base seed + run index) and, with ``shards=True``, a disjoint shard
of the training rows. Workers read their rows themselves from ``input`` through the one
input path (``recsel.inputs.prepare``; nothing but small dicts travel through Beam), run
the one core ``recsel.select`` and emit ``SelectionResult.to_dict()``. Every run validates
on the same rows:

- **streams** (TFRecord or Parquet in two or more shards, or ``stream="on"``): one
  statistics pass before launch (on the same runner) builds the candidates; each run
  streams its training shards (with ``shards``, every ``num_runs``-th file) and the
  held-out validation shards. No run builds a frame of its rows.
- **frames** (one file, CSV, or ``stream="off"``): each worker reads the table and splits
  it into training and validation rows with the base seed.

The last step combines the runs by ``RULE`` (see ``recsel.beam._consensus``), refits a ranker on the consensus to measure it, and writes the
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
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.beam._consensus import RULE, consensus, consensus_result
from recsel.beam._ensemble_inputs import load_split, prepare_statistics, raw_split, streams
from recsel.beam._ensemble_io import (
    ENSEMBLE_FILE,
    ensemble_record,
    final_line,
    write_ensemble_outputs,
)
from recsel.beam._ensemble_job import EnsembleJob, refit_config, shard_rows
from recsel.inputs.prepare import build_features, should_stream
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult

__all__ = [
    "EnsembleJob",
    "build_ensemble_pipeline",
    "load_split",
    "refit_config",
    "run_ensemble",
    "shard_rows",
    "streams",
]

_LOG = logging.getLogger("recsel.beam.ensemble")


class InferFeatures(beam.DoFn):
    """Passes a given feature-spec dict through, or builds one from the training rows."""

    def __init__(self, job: EnsembleJob):
        self.job = job

    def process(self, given: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        if given is not None:
            yield FeatureSet.from_dict(given, source="--features").to_dict()
            return
        if should_stream(self.job.input, self.job.stream):
            features = prepare_statistics(self.job).features
        else:
            train, _ = raw_split(self.job)
            features = build_features(self.job.input_options(), frame=train)
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
        from recsel.selection.driver import select

        started = time.time()
        feature_set = FeatureSet.from_dict(features)
        if should_stream(self.job.input, self.job.stream):
            inputs = streams(self.job, feature_set, spec)
            train, valid, train_rows = inputs.train, inputs.valid, inputs.train.num_rows
        else:
            train, valid = load_split(self.job, feature_set, spec["shard"])
            train_rows = len(train)
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
        result.provenance["ensemble_run"] = {**spec, "train_rows": train_rows}
        line = run_line(spec, result, time.time() - started, self.job.num_runs)
        _LOG.info(line)  # one plain 'recsel: ...' line (recsel.quiet's handler)
        yield {"spec": spec, "result": result.to_dict()}


def _refit(job: EnsembleJob, features: FeatureSet, selected: list[str], dims: dict[str, int]):
    """Trains and evaluates a ranker on exactly the consensus features at the consensus widths.

    It reuses ``select()`` with nothing left to choose: k = all given features and
    ``dim_fraction=1`` (every chunk kept), so the widths stay those of the consensus.
    """
    from recsel.selection.driver import select

    subset = features.subset(selected, dims)
    if should_stream(job.input, job.stream):
        inputs = streams(job, subset)
        train, valid = inputs.train, inputs.valid
    else:
        train, valid = load_split(job, features)
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
        _remove_tree(self.job.statistics_dir)  # ours (given statistics live elsewhere)
        _remove_if_empty(self.job.checkpoint_root)  # each select() removed its own on success
        summary = final_line(result, record)
        _LOG.info(summary)  # one plain 'recsel: ...' line (recsel.quiet's handler)
        yield {"output_dir": self.job.output_dir, "summary": summary}


def _remove_if_empty(path: str) -> None:
    import tensorflow as tf

    if tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path):
        tf.io.gfile.rmtree(path)


def _remove_tree(path: str) -> None:
    import tensorflow as tf

    if tf.io.gfile.isdir(path):
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

    check_output_dir(job.output_dir, job.overwrite, [job.input])
    if job.features is not None:
        FeatureSet.from_dict(job.features, source="--features")  # fail before launching
    if should_stream(job.input, job.stream):
        # One statistics pass on the job's runner, before the runs: it builds the candidates
        # every run shares, and checks the shards against them before anything trains.
        inputs = prepare_statistics(job, options)
        _LOG.info(
            "Streaming %d training and %d validation shard(s); %d training rows.",
            len(inputs.train.files),
            len(inputs.valid.files),
            inputs.train.num_rows,
        )
        if job.shards and len(inputs.train.files) < job.num_runs:
            raise ValueError(
                f"{job.input}: {len(inputs.train.files)} training shard(s) for {job.num_runs} "
                "runs with shards=True; a streamed run trains on whole files. Write at least "
                "one training shard per run, or leave out --shards."
            )
        job = dataclasses.replace(
            job, features=inputs.features.to_dict(), statistics=inputs.statistics_path
        )
    pipeline = beam.Pipeline(options=options or PipelineOptions())
    build_ensemble_pipeline(pipeline, job)
    pipeline.run().wait_until_finish()
    return json.loads(read_text(os.path.join(job.output_dir, ENSEMBLE_FILE)))
