"""Where each ensemble run's rows come from: streams (shards) or frames (small data).

Both go through ``recsel.inputs.prepare``, the one input path of every shell.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.beam._ensemble_job import EnsembleJob, shard_rows
from recsel.inputs.prepare import STATISTICS_FILE, Inputs, count_rows, prepare
from recsel.spec.features import FeatureSet


def raw_split(job: EnsembleJob) -> tuple[pd.DataFrame, pd.DataFrame]:
    from recsel.inputs.prepare import list_read_options
    from recsel.inputs.splits import split_frame
    from recsel.inputs.tabular import read_table

    lists = list_read_options(job.input, None, job.input_options())
    frame = read_table(job.input, label=job.label, **lists)
    return split_frame(frame, job.validation_fraction, seed=job.config.seed)


def load_split(
    job: EnsembleJob, features: FeatureSet, shard: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frames only: reads ``job.input`` and returns cleaned (train, valid); ``shard`` narrows
    train only.

    Args:
        job: The job.
        features: The candidate features (validated against the table).
        shard: Index of the training shard (``job.num_runs`` shards), or None for all rows.

    Returns:
        The cleaned training and validation frames.
    """
    from recsel.inputs.tabular import validate_frame

    train, valid = raw_split(job)
    if shard is not None:
        rows = shard_rows(len(train), shard, job.num_runs, seed=job.config.seed + 1)
        train = train.iloc[rows]
    clean = {"nan_policy": job.nan_policy, "source": job.input}
    return (
        validate_frame(train, features, job.label, **clean),
        validate_frame(valid, features, job.label, **clean),
    )


def streams(job: EnsembleJob, features: FeatureSet, spec: dict[str, Any] | None = None) -> Inputs:
    """Streams only: the run's training stream (its shard with ``job.shards``) and the
    shared validation stream, through ``recsel.inputs.prepare``.

    Args:
        job: The job (its ``statistics`` describe the training shards).
        features: The candidate features.
        spec: The run spec (seed and shard); None: all training shards, the base seed.

    Returns:
        The ``Inputs``; a shard's ``num_rows`` is counted from its own files.
    """
    shard = spec.get("shard") if spec else None
    inputs = prepare(
        job.input,
        job.input_options(spec["seed"] if spec else None),
        stream="on",
        features=features,
        statistics_path=job.statistics or os.path.join(job.statistics_dir, STATISTICS_FILE),
        work_dir=job.statistics_dir,
        batch_size=job.config.batch_size,
        shuffle_buffer=job.shuffle_buffer,
        worker_index=0 if shard is None else shard,
        num_workers=1 if shard is None else job.num_runs,
    )
    if shard is not None:  # the statistics count every training shard; this run reads fewer
        inputs.train.num_rows = count_rows(inputs.train.files[shard :: job.num_runs])
    return inputs


def prepare_statistics(job: EnsembleJob, options: PipelineOptions | None = None) -> Inputs:
    """Streams only: the one statistics pass over the training shards (skipped when
    ``job.statistics`` or an earlier pass exists) and the candidates built from it.

    Args:
        job: The job.
        options: Beam options of the pass (the job's runner); None: the DirectRunner.

    Returns:
        The ``Inputs`` over every training shard.
    """
    given = FeatureSet.from_dict(job.features, source="--features") if job.features else None
    return prepare(
        job.input,
        job.input_options(),
        stream="on",
        features=given,
        statistics_path=job.statistics,
        work_dir=job.statistics_dir,
        batch_size=job.config.batch_size,
        shuffle_buffer=job.shuffle_buffer,
        pipeline_options=options,
    )
