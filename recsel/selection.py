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
import logging
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import tensorflow as tf

from recsel import _explain, width_value
from recsel import widths as widths_lib
from recsel.config import SelectionConfig
from recsel.features import FeatureSet
from recsel.inputs.source import BatchSource
from recsel.model import prune_ranker
from recsel.result import RoundRecord, SelectionResult
from recsel.schedule import Schedule, fit_schedule
from recsel.spec.widths import check_widths, embedding_bytes, target_width
from recsel.tower import resolve_tower
from recsel.training import SelectionTrainer

_LOG = logging.getLogger("recsel.selection")


def _finalise_widths(
    trainer: SelectionTrainer, config: SelectionConfig, sample: pd.DataFrame
) -> dict[str, int]:
    layer = trainer.layer
    counts, widths = {}, {}
    mean, se = width_value.ablation_values(trainer.model, sample, trainer.label, config.chunk_size)
    selected = width_value.drop_idle_chunks(
        layer.selected_chunks(), mean, se, config.chunk_significance
    )
    # Most valuable first: a width cut (rounding, memory) then drops the weakest chunks.
    selected = {n: sorted(c, key=lambda k, n=n: (-mean[n][k], k)) for n, c in selected.items()}
    for name, chunks in selected.items():
        full = layer.features[name].embedding_dim
        widths[name] = target_width(len(chunks) * config.chunk_size, full, config)
    if config.memory_budget_bytes is not None:
        # Widths give way before features: cut the chunks with the least value per byte.
        unit = max(config.chunk_size, config.dim_multiple)
        per = unit // config.chunk_size  # widths move a rounding unit, several chunks, at a time
        values = {}
        for n in widths:
            kept = sorted(np.maximum(mean[n][selected[n]], 0.0), reverse=True)
            values[n] = [sum(kept[i : i + per]) for i in range(0, len(kept), per)]
        lows = {n: target_width(0, layer.features[n].embedding_dim, config) for n in widths}
        widths = widths_lib.trim_to_memory_budget(
            widths, layer.features, config.memory_budget_bytes, values, unit, lows
        )
    for name, width in widths.items():
        counts[name] = width // config.chunk_size
    widths_lib.rank_selected_chunks(layer, selected)
    layer.set_chunk_counts(counts)
    return widths


def _train_round(
    trainer: SelectionTrainer, steps: int, before: list[str], label: str, rotate: bool
) -> None:
    """Trains ``steps`` steps of a round; when its chunk phase starts inside them and
    ``rotate``, the features it selected are first rotated to their principal axes
    (``recsel.widths``), so that chunk attention compares chunks that hold distinct
    directions.

    Only widths-only runs rotate: mid-round, with candidates still competing, the
    rotation (whose Adam second moments cannot rotate exactly) cost adversarial seed 0
    under a roomy budget 4 of its 6 groups (2 features kept, against 6 unrotated)."""
    layer = trainer.layer
    split = int(layer.chunk_attention.attention_start.numpy()) - trainer.step
    if not rotate or not 0 <= split <= steps:
        trainer.train(steps, description=label)
        return
    if split:
        trainer.train(split, description=label)
    new = [n for n in layer.selected_features() if n not in before]
    widths_lib.align_principal_axes(trainer.model, new)
    # The rotated chunks are new candidates: their logits start level.
    chunks = [c for n in new for c in layer.chunks_of(n)]
    logits = layer.chunk_attention.logits.numpy()
    logits[chunks] = 0.0
    layer.chunk_attention.logits.assign(logits)
    if steps > split:
        # Checkpoints record the steps done in the round, so count the first call's too.
        provider = trainer.state_provider
        if provider is not None:
            trainer.state_provider = lambda n: provider(split + n)
        try:
            trainer.train(steps - split, description=f"{label} widths")
        finally:
            trainer.state_provider = provider


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
        train: Cleaned training frame (see ``recsel.tabular.validate_frame``).
        valid: Cleaned validation frame.
        features: Candidate features; ``features.label`` names the label column.
        config: Selection settings (defaults: keep 25% of the features).
        log_dir: TensorBoard log directory for attention traces.
        progress: Show progress bars and one line per round.
        budget_controller: Cost-aware round control (``recsel.budget.BudgetController``);
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
    check_widths(features, config)
    resolve_tower(config.tower)  # a bad tower spec fails before any training
    started = time.time()
    config, trainer, budget_controller, schedule = _prepare(
        train,
        valid,
        features,
        config,
        k,
        budget_controller,
        lambda cfg: SelectionTrainer(
            features,
            train,
            valid,
            features.label,
            cfg,
            log_dir,
            progress,
            checkpoint_dir,
            checkpoint_every,
            step_callback,
            strategy=strategy,
        ),
    )
    _start_at_base_rate(trainer, train, features.label)
    resumed = trainer.restore() or {}
    if resumed and progress:
        print(
            f"Resuming from checkpoint at step {trainer.step} (round {resumed['round'] + 1}).",
            flush=True,
        )
    layer = trainer.layer
    plan = list(schedule.rounds)
    # Every candidate kept (widths only): no feature events, the whole pass trains the
    # model and then chooses chunks (the schedule planned it so, ``keep_all``).
    keep_all = not config.has_budget and k == len(features)
    if keep_all and not resumed:
        layer.feature_attention.force_select(list(range(len(features))))
        trainer.selection_weights.update(dict.fromkeys(features.names, 1.0))
    rounds = [RoundRecord(**r) for r in resumed.get("rounds", [])]
    sample = _explain.validation_sample(valid, config.seed)
    curves: dict[int, list] = {}  # round -> the validation curve as its features join
    for index, planned in enumerate(plan):
        if resumed.get("stopped"):
            break
        if index < resumed.get("round", 0):
            continue
        resuming = index == resumed.get("round")
        done = resumed.get("round_steps_done", 0) if resuming else 0
        tuned = resumed.get("finetune_done", 0) if resuming else 0
        if done:  # resuming inside this round: its schedule is in the restored variables
            steps = resumed["round_steps"]
        else:
            layer.hard_mask.assign(0.0)  # pending candidates compete again
            if budget_controller is not None:
                planned = budget_controller.prepare_round(planned)
                if planned == 0:
                    break
            # A budget may cut a round short; its chunk count follows, its steps do not.
            num_chunks = round(schedule.chunks[index] * planned / schedule.rounds[index])
            steps = schedule.round_steps[index]
            layer.schedule_selection(
                0 if keep_all else planned,
                num_chunks,
                steps,
                warmup_fraction=config.warmup_fraction if index == 0 else 0.0,
                chunk_phase_fraction=config.chunk_phase_fraction,
                features_per_event=schedule.features_per_event,
                chunks_per_event=schedule.features_per_event,
            )

        def run_state(done_now: int, index=index, steps=steps, done=done, tuned=0) -> dict:
            return {
                "round": index,
                "round_steps": steps,
                "round_steps_done": done + done_now,
                "finetune_done": tuned,
                "rounds": [dataclasses.asdict(r) for r in rounds],
            }

        trainer.state_provider = run_state
        if steps > done:
            before = rounds[-1].selected if rounds else []
            label = f"round {index + 1}/{len(plan)}"
            _train_round(trainer, steps - done, before, label, rotate=keep_all)
        widths = _finalise_widths(trainer, config, sample)
        # Fine-tune in place with the hard mask: the model then predicts as its pruned
        # copy will (no pending-candidate share), and the compiled step is reused.
        layer.freeze()
        trainer.state_provider = lambda n, steps=steps, tuned=tuned: run_state(
            0, steps=steps, done=steps, tuned=tuned + n
        )
        if config.finetune_steps > tuned:
            trainer.train(config.finetune_steps - tuned, description=f"round {index + 1} fine-tune")
        pruned = prune_ranker(trainer.model)
        kept = features.subset(layer.selected_features(), widths)
        record = RoundRecord(
            index=index,
            selected=layer.selected_features(),
            dims=widths,
            steps=trainer.step,
            embedding_bytes=embedding_bytes(kept),
            **trainer.evaluate(pruned, kept),
        )
        if not keep_all:  # widths only: every feature is in, in spec order; no curve to show
            curves[index] = _explain.prefix_curve(
                pruned, kept, record.selected, sample, features.label
            )
        if budget_controller is not None:
            budget_controller.measure_round(record, pruned, kept)
        rounds.append(record)
        stop = budget_controller is not None and budget_controller.should_stop(rounds)
        rounds_done = [dataclasses.asdict(r) for r in rounds]
        trainer.save(
            {
                "round": index + 1,
                "round_steps": 0,
                "round_steps_done": 0,
                "rounds": rounds_done,
                "stopped": stop,
            }
        )
        # Through logging, so the TFX executor and Beam jobs (progress=False) log it too.
        _LOG.info(_round_line(record, len(features)))
        if stop:
            break
    rows_seen = trainer.step * config.batch_size
    train_rows = trainer.train_source.num_rows
    if rows_seen > 1.05 * train_rows * max(1.0, config.epochs):
        warnings.warn(
            f"recsel: selection made {trainer.step} steps at batch {config.batch_size}, "
            f"{rows_seen / max(1, train_rows):.2f} passes over the {train_rows} training rows, "
            "so examples repeated; repeated examples favour memorisable ID-like features. "
            "Drop train_steps to let the schedule fit the data, or use more rows.",
            stacklevel=2,
        )
    final_index = (
        budget_controller.final_round(rounds) if budget_controller is not None else len(rounds) - 1
    )
    final = rounds[final_index]
    trainer.clear_checkpoints()
    result = SelectionResult(
        label=features.label,
        candidates=features.names,
        selected=final.selected,
        dims=final.dims,
        full_dims={s.name: s.embedding_dim for s in features},
        selection_weights={
            n: trainer.selection_weights.get(n, float("nan")) for n in final.selected
        },
        final_weights={n: round(w, 6) for n, w in layer.feature_weights().items()},
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
    result.dropped_reasons = _explain.dropped_reasons(result, features, sample)
    return result


def _prepare(
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
            from recsel.budget import BudgetController

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
    if schedule.notes:
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


# Rows read to estimate the training positive rate for the output bias.
BASE_RATE_ROWS = 4096
# The output bias starts at the base rate only when the minority class is rarer than this.
RARE_CLASS_RATE = 0.1


def _start_at_base_rate(trainer: SelectionTrainer, train, label: str) -> None:
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
    frame = (
        train
        if isinstance(train, pd.DataFrame)
        else trainer.train_source.sample_frame(BASE_RATE_ROWS)
    )
    rate = float(np.clip(np.mean(frame[label].to_numpy(np.float64)), 1e-4, 1 - 1e-4))
    if min(rate, 1 - rate) >= RARE_CLASS_RATE:
        return
    logit.bias.assign(np.full(logit.bias.shape, np.log(rate / (1 - rate)), np.float32))


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
    from recsel._version import __version__

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
