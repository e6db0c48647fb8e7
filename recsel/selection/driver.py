"""``select()``: the one entry point every shell (CLI, TFX, Beam, notebook) calls.

It trains the gated ranker once, in rounds. Each round schedules feature selections
then width (chunk) selections, after which widths are rounded and clipped, the model
is pruned and evaluated, and — when a budget is set — its serving latency measured.
The rounds form the quality-versus-cost frontier in the ``SelectionResult``.

Example:
    >>> result = select(train, valid, features, SelectionConfig(num_features=8))
    >>> print(result.summary())
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import time
import warnings
from collections.abc import Callable

import pandas as pd
import tensorflow as tf

from recsel.inputs.source import BatchSource
from recsel.model.tower import resolve_tower
from recsel.selection import explain as _explain
from recsel.selection import width_value
from recsel.selection._copy_guard import CopyGuard
from recsel.selection.rounds import run_round
from recsel.selection.schedule import Schedule
from recsel.selection.setup import check_label_classes, prepare_run, start_at_base_rate
from recsel.selection.trainer import SelectionTrainer
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet
from recsel.spec.result import RoundRecord, SelectionResult
from recsel.spec.widths import check_widths

_LOG = logging.getLogger("recsel.selection.driver")


def select(
    train: pd.DataFrame | BatchSource,
    valid: pd.DataFrame | BatchSource,
    features: FeatureSet,
    config: SelectionConfig | None = None,
    *,
    log_dir: str | None = None,
    progress: bool = True,
    budget_controller=None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 50,
    step_callback: Callable[[int], None] | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> SelectionResult:
    """Selects features and their embedding widths with Sequential Attention.

    Args:
        train: Cleaned training frame (see ``recsel.inputs.tabular.validate_frame``).
        valid: Cleaned validation frame.
        features: Candidate features; ``features.label`` names the label column.
        config: Selection settings (defaults: keep 25% of the features).
        log_dir: TensorBoard log directory for attention traces.
        progress: Show progress bars and one line per round.
        budget_controller: Cost-aware round control (``recsel.selection.budget.BudgetController``);
            built from ``config`` when a budget is set and none is given.
        checkpoint_dir: Checkpoint here every ``checkpoint_every`` steps and at each
            round's end; if it holds a checkpoint of the same run, resume from it. The
            resumed run reaches the same selection as an uninterrupted one. Removed on
            success.
        checkpoint_every: Steps between checkpoints.
        step_callback: Called with the global step after every training step.
        strategy: Train under this ``tf.distribute`` strategy (MirroredStrategy,
            MultiWorkerMirroredStrategy with workers from ``TF_CONFIG``, TPUStrategy).
            The selection state is replica-safe, so every replica ends with the same
            selection. With several workers, give each worker a training stream of its
            own shards; resuming is then not supported (no checkpoints).

    Returns:
        The ``SelectionResult``.
    """
    config = config or SelectionConfig()
    if features.label is None:
        raise ValueError("The feature set has no label; set FeatureSet.label.")
    k = config.resolve_num_features(len(features))
    check_label_classes(train, valid, features.label)
    check_widths(features, config)
    resolve_tower(config.tower)  # a bad tower spec fails before any training
    started = time.time()
    config, trainer, budget_controller, schedule = prepare_run(
        train,
        valid,
        features,
        config,
        k,
        budget_controller,
        functools.partial(
            SelectionTrainer,
            features,
            train,
            valid,
            features.label,
            log_dir=log_dir,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            step_callback=step_callback,
            strategy=strategy,
        ),
    )
    trainer.end_stream_at(schedule.total_steps)  # before restore() reopens it at its step
    start_at_base_rate(trainer, train, features.label)
    resumed = trainer.restore() or {}
    if budget_controller is not None:
        budget_controller.restore_state(resumed.get("budget"))
    if resumed and progress:
        print(
            f"Resuming from checkpoint at step {trainer.step} (round {resumed['round'] + 1}).",
            flush=True,
        )
    # Every candidate kept (widths only): no feature events, the whole pass trains the
    # model and then chooses chunks (the schedule planned it so, ``keep_all``).
    keep_all = not config.has_budget and k == len(features)
    if keep_all and not resumed:
        trainer.layer.feature_attention.force_select(list(range(len(features))))
        trainer.selection_weights.update(dict.fromkeys(features.names, 1.0))
    # Widths-only runs judge chunks by ablation on held-out rows: more rows, more power.
    rows = width_value.SAMPLE_ROWS if keep_all else _explain.SAMPLE_ROWS
    sample = _explain.validation_sample(valid, config.seed, rows, head=trainer.valid_head)
    guard = CopyGuard(trainer.layer, sample)
    trainer.before_feature_event = guard.before_event
    rounds, curves = _run_rounds(trainer, schedule, resumed, budget_controller, keep_all, sample)
    _warn_if_repeated(trainer, config)
    trainer.clear_checkpoints()
    result = _result(trainer, features, config, rounds, curves, budget_controller, started)
    result.dropped_reasons = _explain.dropped_reasons(result, features, sample, guard.copies)
    trainer.close()
    return result


def _run_rounds(
    trainer: SelectionTrainer,
    schedule: Schedule,
    resumed: dict,
    budget_controller,
    keep_all: bool,
    sample: pd.DataFrame,
) -> tuple[list[RoundRecord], dict[int, list | None]]:
    """Runs the schedule's rounds (from where a resumed run stopped) until the budget stops.

    Returns:
        The rounds' records, and each round's validation curve as its features join.
    """
    rounds = [RoundRecord(**r) for r in resumed.get("rounds", [])]
    curves: dict[int, list] = {}  # round -> the validation curve as its features join
    for index, planned in enumerate(schedule.rounds):
        if index < resumed.get("round", 0):
            continue
        position = resumed if index == resumed.get("round") else {}
        record, curves[index] = run_round(
            trainer, schedule, index, planned, position, rounds, budget_controller, keep_all, sample
        )
        if record is None:
            break
        rounds.append(record)
        stop = budget_controller is not None and budget_controller.should_stop(rounds)
        # Through logging, so the TFX executor and Beam jobs (progress=False) log it too.
        _LOG.info(_round_line(record, len(trainer.features)))
        if stop or index == len(schedule.rounds) - 1:
            # No round follows and select() removes the checkpoints on its way out, so a
            # save here (~0.15 s) would only serve a kill in the run's last tenths of a
            # second, and the round's last checkpoint resumes that to the same result.
            break
        trainer.save(
            {
                "round": index + 1,
                "round_steps": 0,
                "round_steps_done": 0,
                "rounds": [dataclasses.asdict(r) for r in rounds],
                "budget": budget_controller.state() if budget_controller is not None else None,
            }
        )
    return rounds, curves


def _result(
    trainer: SelectionTrainer,
    features: FeatureSet,
    config: SelectionConfig,
    rounds: list[RoundRecord],
    curves: dict[int, list | None],
    budget_controller,
    started: float,
) -> SelectionResult:
    """The run's result: the final round (the budget's choice, else the last) and its history."""
    final_index = (
        budget_controller.final_round(rounds) if budget_controller is not None else len(rounds) - 1
    )
    final = rounds[final_index]
    return SelectionResult(
        label=features.label,
        candidates=features.names,
        selected=final.selected,
        dims=final.dims,
        full_dims={s.name: s.embedding_dim for s in features},
        selection_weights={
            n: trainer.selection_weights.get(n, float("nan")) for n in final.selected
        },
        final_weights={n: round(w, 6) for n, w in trainer.layer.feature_weights().items()},
        rounds=rounds,
        final_round=final_index,
        metrics={"auc": final.auc, "log_loss": final.log_loss},
        trajectory=trainer.trajectory,
        cost_model=budget_controller.describe() if budget_controller is not None else None,
        budget=budget_controller.budget() if budget_controller is not None else None,
        config=config.to_dict(),
        provenance=_provenance(started, trainer),
        feature_curve=curves.get(final_index),  # None if resumed past the final round
    )


def _warn_if_repeated(trainer: SelectionTrainer, config: SelectionConfig) -> None:
    """Warns when the run saw examples more than once (memorisation favours ID-like features)."""
    rows_seen = trainer.step * config.batch_size
    train_rows = trainer.train_source.num_rows
    if rows_seen > 1.05 * train_rows * max(1.0, config.epochs):
        warnings.warn(
            f"recsel: selection made {trainer.step} steps at batch {config.batch_size}, "
            f"{rows_seen / max(1, train_rows):.2f} passes over the {train_rows} training rows, "
            "so examples repeated; repeated examples favour memorisable ID-like features. "
            "Drop train_steps to let the schedule fit the data, or use more rows.",
            stacklevel=3,
        )


def _round_line(record: RoundRecord, num_candidates: int) -> str:
    line = (
        f"round {record.index + 1}: {len(record.selected)}/{num_candidates} features, "
        f"{sum(record.dims.values())} embedding columns, AUC {record.auc:.4f}, "
        f"log loss {record.log_loss:.4f}"
    )
    if record.latency_ms_p50 is not None:
        line += f", p50 {record.latency_ms_p50:.3f} ms"
    if record.full_model_latency_ms is not None:
        line += f" (full model {record.full_model_latency_ms:.3f} ms alongside)"
    return line


def _provenance(started: float, trainer: SelectionTrainer) -> dict:
    from recsel.version import __version__

    return {
        "recsel_version": __version__,
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "seed": trainer.config.seed,
        "train_rows_seen": trainer.step * trainer.config.batch_size,
        "steps": trainer.step,
        "wall_seconds": round(time.time() - started, 3),
    }
