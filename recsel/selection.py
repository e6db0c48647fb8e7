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
import math
import platform
import time
import warnings
from collections.abc import Callable

import pandas as pd
import tensorflow as tf

from recsel.config import SelectionConfig
from recsel.features import FeatureSet
from recsel.inputs.source import BatchSource
from recsel.model import prune_ranker
from recsel.result import RoundRecord, SelectionResult
from recsel.tower import resolve_tower
from recsel.training import SelectionTrainer


def check_widths(features: FeatureSet, config: SelectionConfig) -> None:
    """Every full width must be a whole number of chunks and of the rounding unit."""
    unit = max(config.chunk_size, config.dim_multiple)
    bad = [f"{s.name} ({s.embedding_dim})" for s in features if s.embedding_dim % unit]
    if bad:
        raise ValueError(
            f"Embedding widths must be multiples of {unit} (chunk_size {config.chunk_size}, "
            f"dim_multiple {config.dim_multiple}); these are not: {', '.join(bad)}. "
            "Set embedding_dim to a multiple, or change chunk_size / dim_multiple."
        )


def target_width(selected_columns: int, full_dim: int, config: SelectionConfig) -> int:
    """Rounds a chunk-selected width up to ``dim_multiple`` and clips it to [min, max]."""
    unit = max(config.chunk_size, config.dim_multiple)
    high = min(config.max_dim or full_dim, full_dim)
    low = min(config.min_dim, high)
    width = unit * math.ceil(max(selected_columns, low) / unit)
    while width > high and width - unit >= unit:
        width -= unit
    return width


def _finalise_widths(trainer: SelectionTrainer, config: SelectionConfig) -> dict[str, int]:
    layer = trainer.layer
    counts, widths = {}, {}
    for name, chunks in layer.selected_chunks().items():
        full = layer.features[name].embedding_dim
        widths[name] = target_width(len(chunks) * config.chunk_size, full, config)
        counts[name] = widths[name] // config.chunk_size
    layer.set_chunk_counts(counts)
    return widths


def _plan_rounds(k: int | None, num_candidates: int, config: SelectionConfig) -> list[int]:
    """Features per round: one round without a budget, several small ones with a budget."""
    if not config.has_budget:
        return [k]
    per_round = config.features_per_round or max(1, math.ceil(num_candidates / 8))
    target = k or num_candidates
    return [min(per_round, target - i) for i in range(0, target, per_round)]


# A feature event compares candidates after a logit reset, so it needs enough steps for
# the logits to separate; a chunk event only ranks chunks of already-kept features.
MIN_STEPS_PER_FEATURE_EVENT = 10
MIN_STEPS_PER_CHUNK_EVENT = 3


def _round_steps(
    target: int, features: int, chunks: int, warmup: float, chunk_fraction: float
) -> int:
    """Steps for a round: its share of the data, but at least a few steps per selection event."""
    feature_share = (1.0 - chunk_fraction) * (1.0 - warmup)
    need_features = MIN_STEPS_PER_FEATURE_EVENT * math.ceil(features / feature_share)
    need_chunks = MIN_STEPS_PER_CHUNK_EVENT * math.ceil(chunks / chunk_fraction) if chunks else 0
    return max(target, need_features, need_chunks)


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
        train: Training rows: a frame cleaned by ``recsel.tabular.validate_frame``, or a
            ``recsel.inputs.FileStream`` over shards (streamed once, never materialised;
            give it ``num_rows`` from the statistics).
        valid: Validation rows, as a frame or a stream.
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
    trainer = SelectionTrainer(
        features,
        train,
        valid,
        features.label,
        config,
        log_dir,
        progress,
        checkpoint_dir,
        checkpoint_every,
        step_callback,
        strategy=strategy,
    )
    resumed = trainer.restore() or {}
    if resumed and progress:
        print(
            f"Resuming from checkpoint at step {trainer.step} (round {resumed['round'] + 1}).",
            flush=True,
        )
    layer = trainer.layer
    if config.has_budget and budget_controller is None:
        from recsel.budget import BudgetController

        budget_controller = BudgetController.for_config(trainer, config)
    plan = _plan_rounds(k, len(features), config)
    steps_per_round = max(1, trainer.total_steps // len(plan))
    mean_chunks = sum(s.embedding_dim for s in features) / config.chunk_size / len(features)
    rounds = [RoundRecord(**r) for r in resumed.get("rounds", [])]
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
            num_chunks = max(0, round(config.dim_fraction * mean_chunks * planned))
            warmup = config.warmup_fraction if index == 0 else 0.0
            steps = _round_steps(
                steps_per_round, planned, num_chunks, warmup, config.chunk_phase_fraction
            )
            layer.schedule_selection(
                planned,
                num_chunks,
                steps,
                warmup_fraction=warmup,
                chunk_phase_fraction=config.chunk_phase_fraction,
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
            trainer.train(steps - done, description=f"round {index + 1}/{len(plan)}")
        widths = _finalise_widths(trainer, config)
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
        if progress:
            print(_round_line(record, len(features)), flush=True)
        if stop:
            break
    selection_steps = trainer.step - config.finetune_steps * len(rounds)
    train_rows = trainer.train_source.num_rows
    passes = selection_steps * config.batch_size / max(1, train_rows)
    planned = config.planned_passes(train_rows)
    if passes > 1.25 * planned:
        warnings.warn(
            f"Selection needed {selection_steps} steps, {passes:.1f} passes over the {train_rows} training "
            f"rows (planned: {planned:.2f}), to give every selection event enough steps. Repeated "
            "examples favour memorisable ID-like features; use more rows or select fewer features.",
            stacklevel=2,
        )
    final_index = (
        budget_controller.final_round(rounds) if budget_controller is not None else len(rounds) - 1
    )
    final = rounds[final_index]
    trainer.clear_checkpoints()
    return SelectionResult(
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
    )


def embedding_bytes(features: FeatureSet, dtype_bytes: int = 4) -> int:
    """Bytes of the embedding tables: rows × width × dtype size."""
    return int(sum(s.vocabulary_size * s.embedding_dim * dtype_bytes for s in features))


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
    import recsel

    return {
        "recsel_version": recsel.__version__,
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "seed": trainer.config.seed,
        "train_rows_seen": trainer.step * trainer.config.batch_size,
        "steps": trainer.step,
        "wall_seconds": round(time.time() - started, 3),
    }
