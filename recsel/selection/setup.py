"""Before the first step: the schedule, the trainer (and budget) for it, the output bias."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsel.inputs.source import BatchSource, first_labels
from recsel.selection.round_plan import fit_schedule
from recsel.selection.schedule import Schedule
from recsel.selection.trainer import SelectionTrainer
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet

_LOG = logging.getLogger("recsel.selection.setup")


def prepare_run(
    train: pd.DataFrame | BatchSource,
    valid: pd.DataFrame | BatchSource,
    features: FeatureSet,
    config: SelectionConfig,
    k: int | None,
    budget_controller,
    make_trainer: Callable[[SelectionConfig], SelectionTrainer],
) -> tuple[SelectionConfig, SelectionTrainer, object, Schedule]:
    """Plans the schedule and builds the trainer (and budget controller) for it.

    Under a budget the rounds cover at most the features that can fit, which only the
    calibrated cost model knows; the controller needs a trainer to calibrate against,
    so a provisional one is built first and replaced when the schedule changes the
    batch size. Adaptations are announced in one warning.
    """
    mean_chunks = sum(s.embedding_dim for s in features) / config.chunk_size / len(features)
    trainer = None
    if config.has_budget:
        trainer = make_trainer(config)
        if budget_controller is None:
            from recsel.selection.budget import BudgetController

            budget_controller = BudgetController.for_config(trainer, config)
        fit = budget_controller.most_that_fit()
        target = min(k, fit) if k else fit
    else:
        target = k
    train_rows = train.num_rows if isinstance(train, BatchSource) else len(train)
    schedule = fit_schedule(
        train_rows,
        target,
        len(features),
        mean_chunks,
        config,
        shrinkable=config.has_budget and not k,
    )
    if _only_a_slightly_smaller_batch(schedule, config):
        # Not worth a warning: nothing about the selection changes that the user would act on.
        _LOG.info(
            "batch %d instead of %d, so that the %d planned steps fit in one pass over %d "
            "training rows",
            schedule.batch_size,
            config.batch_size,
            schedule.total_steps,
            train_rows,
        )
    elif schedule.notes:
        # One short line per adaptation: logs (and `| tee`) must not get 300-character lines.
        adaptations = "".join(f"\n  - {note}" for note in schedule.notes)
        warnings.warn(
            f"recsel: {train_rows} training rows are short for {sum(schedule.rounds)} selections at "
            f"batch {config.batch_size} in one pass.\nRepeating examples would let ID-like "
            f"features win by memorisation, so instead:{adaptations}",
            stacklevel=3,
        )
    adapted = dataclasses.replace(
        config, batch_size=schedule.batch_size, finetune_steps=schedule.finetune_steps
    )
    if trainer is None or adapted != config:
        trainer = make_trainer(adapted)
        if budget_controller is not None:
            budget_controller.trainer = trainer
    return adapted, trainer, budget_controller, schedule


def _only_a_slightly_smaller_batch(schedule: Schedule, config: SelectionConfig) -> bool:
    """The schedule's one adaptation is a batch at least ``SLIGHTLY_SMALLER_BATCH`` of the
    requested one (66,392 rows and 4 selections at 256 made it 255)."""
    lowered = schedule.batch_size < config.batch_size
    slight = schedule.batch_size >= SLIGHTLY_SMALLER_BATCH * config.batch_size
    return len(schedule.notes) == 1 and lowered and slight


# A batch lowered to no less than this share of the requested one is logged, not warned of.
SLIGHTLY_SMALLER_BATCH = 0.9
# Rows read to estimate the training positive rate for the output bias.
BASE_RATE_ROWS = 4096
# The output bias starts at the base rate only when the minority class is rarer than this.
RARE_CLASS_RATE = 0.1


def check_label_classes(train, valid, label: str) -> None:
    """Frames (which hold all their rows) must have rows, and both label classes in each.

    A training frame of one class trained and "selected" features without a word, and a
    validation frame of one class or none failed only after the whole training, with
    numpy's "need at least one array to concatenate" for an empty one.

    Raises:
        ValueError: Naming the split, the label and what it holds.
    """
    for frame, split in ((train, "training"), (valid, "validation")):
        if not isinstance(frame, pd.DataFrame):
            continue  # a stream is checked as it is read (``start_at_base_rate``)
        if label not in frame.columns:
            raise ValueError(
                f"The {split} frame has no label column {label!r}; clean it with "
                "recsel.inputs.tabular.validate_frame(frame, features, label) first."
            )
        if frame.empty:
            raise ValueError(f"The {split} frame has no rows; selection needs {split} rows.")
        column = frame[label]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            examples = [str(v) for v in pd.unique(column)[:3]]
            raise ValueError(
                f"The {split} frame's label {label!r} holds {column.dtype} values such as "
                f"{examples}, not 0/1; clean the frames with "
                "recsel.inputs.tabular.validate_frame(frame, features, label) first."
            )
        classes = pd.unique(column)
        if len(classes) < 2:
            raise ValueError(
                f"The {split} rows' label {label!r} is {float(classes[0]):g} in all {len(frame)} "
                "rows, "
                f"so {'there is nothing to learn' if split == 'training' else 'AUC is undefined'}"
                f". Check the label column and the split: each class needs {split} rows."
            )


def start_at_base_rate(trainer: SelectionTrainer, train, label: str) -> None:
    """Starts the output bias at the training log-odds of a positive, for rare labels.

    With 2-3% positives the bias would need ~1,200 Adam steps at the default rate to
    reach the base rate (log-odds -3.7); a one-pass selection has fewer. Until then every
    gate is rewarded for pushing all predictions down, which any feature with many rows
    of its own does as well as an informative one: ID-like columns won the first event on
    rare-positive adversarial data (3 of 5 seeds). At Adult's 24% the same start lost
    its strongest feature at k=4 on 2 of 3 seeds (validation AUC 0.845 vs 0.888), so it
    is kept for labels whose minority class is under ``RARE_CLASS_RATE``.
    """
    logit = getattr(trainer.model, "logit", None)
    if logit is None:  # a custom tower owns its own output layer
        return
    # A stream's first rows (as sample_frame would give them), label only: building the
    # feature cells of 4096 rows took 0.4-0.8 s of every run, for a mean of the labels.
    labels = (
        train[label].to_numpy(np.float64)
        if isinstance(train, pd.DataFrame)
        else first_labels(trainer.train_source, BASE_RATE_ROWS)
    )
    if not isinstance(train, pd.DataFrame) and len(np.unique(labels)) == 1:
        warnings.warn(
            f"recsel: the first {len(labels)} training rows' label {label!r} is "
            f"{float(labels[0]):g} in every row. If the shards are sorted by the label, the "
            "bounded shuffle buffer cannot mix them and each selection event sees one class: "
            "write the rows shuffled, or as more shards (files are shuffled too).",
            stacklevel=3,
        )
    rate = float(np.clip(np.mean(labels), 1e-4, 1 - 1e-4))
    if min(rate, 1 - rate) >= RARE_CLASS_RATE:
        return
    logit.bias.assign(np.full(logit.bias.shape, np.log(rate / (1 - rate)), np.float32))
