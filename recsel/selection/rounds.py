"""One selection round: plan it, train it, settle its widths, fine-tune, prune, evaluate.

``select()`` (``recsel.selection.driver``) runs the rounds; each function here is one step
of a round, on the trainer and its layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from recsel.model.ranker import prune_ranker
from recsel.selection import explain as _explain
from recsel.selection import width_value
from recsel.selection import widths as widths_lib
from recsel.selection.schedule import Schedule
from recsel.selection.trainer import SelectionTrainer
from recsel.spec.config import SelectionConfig
from recsel.spec.result import RoundRecord
from recsel.spec.widths import embedding_bytes, target_width


def finalise_widths(
    trainer: SelectionTrainer, config: SelectionConfig, sample: pd.DataFrame, rotated: bool
) -> dict[str, int]:
    """Settles the round's widths: selected chunks that earn their keep, rounded, clipped
    and, under a memory budget, trimmed by value per byte; the layer's chunk selection is
    set to them.

    A chunk earns its keep on held-out rows (``recsel.selection.width_value``) only where
    the chunks were rotated to principal axes (widths-only runs): ablating one of two
    correlated, unrotated chunks costs little, since the other carries the same direction,
    so on feature-selection runs the significance rule cut every feature to one chunk (the
    TFX demo fell from 8 to 7 informative groups, selector AUC 0.8628 -> 0.8163). There
    the chunks keep their share of first-layer energy (``widths.drop_low_energy_chunks``).
    """
    layer = trainer.layer
    counts, widths = {}, {}

    def held_out_values():
        return width_value.ablation_values(trainer.model, sample, trainer.label, config.chunk_size)

    mean = None
    if config.dim_fraction >= 1.0:
        # Every chunk asked for (an ensemble's refit at the consensus widths): none judged.
        selected = layer.selected_chunks()
    elif rotated:
        mean, se = held_out_values()
        selected = width_value.drop_idle_chunks(
            layer.selected_chunks(), mean, se, config.chunk_significance
        )
    else:
        selected = layer.selected_chunks()
        energy = widths_lib.chunk_values(trainer.model, list(selected), config.chunk_size)
        selected = widths_lib.drop_low_energy_chunks(selected, energy)
    for name, chunks in selected.items():
        full = layer.features[name].embedding_dim
        widths[name] = target_width(len(chunks) * config.chunk_size, full, config)
    cut = any(widths[n] // config.chunk_size < len(c) for n, c in selected.items())
    if cut or config.memory_budget_bytes is not None:
        # Most valuable first: a width cut (rounding, memory) then drops the weakest chunks.
        # Without a cut the kept chunks are these whatever their order, so the held-out
        # ablation (0.1-0.2 s a round) is skipped.
        mean = held_out_values()[0] if mean is None else mean
        selected = {n: sorted(c, key=lambda k, n=n: (-mean[n][k], k)) for n, c in selected.items()}
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


def train_round(
    trainer: SelectionTrainer, steps: int, before: list[str], label: str, rotate: bool
) -> None:
    """Trains ``steps`` steps of a round; when its chunk phase starts inside them and
    ``rotate``, the features it selected are first rotated to their principal axes
    (``recsel.selection.widths``), so that chunk attention compares chunks that hold distinct
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
    layer.chunk_attention.reset_logits([c for n in new for c in layer.chunks_of(n)])
    if steps > split:
        # Checkpoints record the steps done in the round, so count the first call's too.
        provider = trainer.state_provider
        if provider is not None:
            trainer.state_provider = lambda n: provider(split + n)
        try:
            trainer.train(steps - split, description=f"{label} widths")
        finally:
            trainer.state_provider = provider


def start_round(
    trainer: SelectionTrainer,
    schedule: Schedule,
    index: int,
    planned: int,
    budget_controller,
    keep_all: bool,
) -> int:
    """Schedules round ``index``'s selections on the layer; returns how many features it
    selects (0: the budget has no room left, so the run ends)."""
    layer, config = trainer.layer, trainer.config
    layer.thaw()  # pending candidates compete again
    if budget_controller is not None:
        allowed = budget_controller.plan_round(
            layer.selected_features(), layer.selected_widths(), planned
        )
        layer.set_candidates(allowed.eligible, allowed.costs)
        planned = allowed.count
        if planned == 0:
            return 0
    # A budget may cut a round short; its chunk count follows, its steps do not.
    layer.schedule_selection(
        0 if keep_all else planned,
        round(schedule.chunks[index] * planned / schedule.rounds[index]),
        schedule.round_steps[index],
        warmup_fraction=config.warmup_fraction if index == 0 else 0.0,
        chunk_phase_fraction=config.chunk_phase_fraction,
        features_per_event=schedule.features_per_event,
        chunks_per_event=schedule.features_per_event,
    )
    return planned


def run_round(
    trainer: SelectionTrainer,
    schedule: Schedule,
    index: int,
    planned: int,
    position: dict,
    rounds: list[RoundRecord],
    budget_controller,
    keep_all: bool,
    sample: pd.DataFrame,
) -> tuple[RoundRecord | None, list | None]:
    """Runs round ``index`` to its evaluated record and validation curve.

    Args:
        trainer: The run's trainer.
        schedule: The run's schedule.
        index: The round.
        planned: Features the schedule planned for it.
        position: Where a resumed run stopped inside this round (empty when starting it).
        rounds: The rounds done so far (checkpoints record them).
        budget_controller: The budget, or None.
        keep_all: Widths-only run: every candidate is kept (principal axes rotate).
        sample: Validation rows: the chunks' held-out value and the round's curve.

    Returns:
        The round's record and curve (None in a widths-only run), or ``(None, None)``
        if the budget left no room.
    """
    layer, config, features = trainer.layer, trainer.config, trainer.features
    done = position.get("round_steps_done", 0)
    tuned = position.get("finetune_done", 0)
    if done:  # resuming inside this round: its schedule is in the restored variables
        steps = position["round_steps"]
    elif start_round(trainer, schedule, index, planned, budget_controller, keep_all) == 0:
        return None, None
    else:
        steps = schedule.round_steps[index]

    def run_state(done_now: int, done: int = done, tuned: int = 0) -> dict:
        return {
            "round": index,
            "round_steps": steps,
            "round_steps_done": done + done_now,
            "finetune_done": tuned,
            "rounds": [dataclasses.asdict(r) for r in rounds],
            # The budget's judgement so far (dropped features, masked gains): a resumed
            # run needs it to judge the rounds as an uninterrupted one does.
            "budget": budget_controller.state() if budget_controller is not None else None,
        }

    trainer.state_provider = run_state
    if steps > done:
        before = rounds[-1].selected if rounds else []
        label = f"round {index + 1}/{len(schedule.rounds)}"
        train_round(trainer, steps - done, before, label, rotate=keep_all)
    widths = finalise_widths(trainer, config, sample, rotated=keep_all)
    # Fine-tune in place with the hard mask: the model then predicts as its pruned
    # copy will (no pending-candidate share), and the compiled step is reused.
    layer.freeze()
    if schedule.vetted_together and budget_controller is not None and not tuned:
        # The merged round's features that add nothing leave before fine-tuning, so the
        # round's record and model are of the set kept.
        dropped = budget_controller.vet_merged_round(widths)
        widths = {n: w for n, w in widths.items() if n not in dropped}
    trainer.state_provider = lambda n: run_state(0, done=steps, tuned=tuned + n)
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
    # Widths only: every feature is in, in spec order, so there is no curve to show.
    curve = (
        None
        if keep_all
        else _explain.prefix_curve(pruned, kept, record.selected, sample, features.label)
    )
    if budget_controller is not None:
        budget_controller.measure_round(record, pruned, kept)
    return record, curve
