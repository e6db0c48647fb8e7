"""The selection schedule: rounds, steps per round and a batch size that never repeat data.

Every selection event needs a few training steps after its logit reset for the logits
to separate, and every round ends with ``finetune_steps`` hard-mask steps. When the
training rows are too few to give every event its steps at ``batch_size`` in one pass,
the old schedule simply ran more steps, so examples repeated, and ID-like columns then
won by memorisation (the "one-epoch phenomenon" of CTR models, Zhang et al., CIKM 2022).
``plan_schedule`` instead adapts, in this order, and says so in ``Schedule.notes``:

1. a smaller batch (down to ``MIN_BATCH_SIZE``; ``FLOOR_BATCH_SIZE`` for tables of a
   few hundred rows, once nothing else fits), so the same rows buy more steps,
   then fewer steps per feature event (``EVENT_STEP_OPTIONS``);
2. fewer fine-tuning steps per round (down to ``MIN_FINETUNE_STEPS``);
3. several features per selection event, so fewer events need steps;
4. and only when even one event per round at the smallest batch does not fit, a
   ``ScheduleError`` that says how many rows the request needs and what to change.

An explicit ``train_steps`` or ``epochs > 1`` is the caller's informed choice and is
honoured as given (the pass count is then reported, not adapted).

How many rounds, of how many features, is ``recsel.selection.round_plan``'s decision
(``plan_rounds``, ``fit_schedule``); this module plans the steps of the rounds it is given.

Example:
    >>> schedule = plan_schedule(16_000, [6], mean_chunks=2.0, config=SelectionConfig())
    >>> schedule.batch_size, schedule.round_steps, schedule.passes(16_000)
"""

from __future__ import annotations

import dataclasses
import math

from recsel.spec.config import SelectionConfig

# A feature event compares candidates after a logit reset, so it needs enough steps for
# the logits to separate: Adam moves a logit about one learning rate per step whatever
# the gradient's size, so separation needs steps, not rows. 30 rather than 10 took the
# rare-positive adversarial data (2.5%) from 3, 5, 3 to 5, 5, 6 of 6 groups on seeds 0-2
# at the same rows (smaller batches), at the same wall time on Adult (4.3 s vs 3.1-4.5 s).
# A chunk event only ranks chunks of already-kept features.
MIN_STEPS_PER_FEATURE_EVENT = 30
# When rows are short, events make do with fewer (down to 10, the old fixed minimum)
# before rounds merge or several features share one event.
EVENT_STEP_OPTIONS = (MIN_STEPS_PER_FEATURE_EVENT, 20, 10)
MIN_STEPS_PER_CHUNK_EVENT = 3
# Below this the gradient of a step is too noisy for the logits to rank candidates...
MIN_BATCH_SIZE = 32
# ...but tiny tables (hundreds of rows) may go this low, as a last resort before failing.
FLOOR_BATCH_SIZE = 8
MIN_FINETUNE_STEPS = 10


class ScheduleError(ValueError):
    """No schedule gives every selection event its steps without repeating examples."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A planned selection run.

    Args:
        batch_size: Training batch size (``config.batch_size`` or smaller).
        rounds: Features selected per round.
        chunks: Chunks (width candidates) selected per round.
        round_steps: Selection steps per round (fine-tuning excluded).
        finetune_steps: Hard-mask steps at the end of each round.
        features_per_event: Features selected per selection event.
        notes: Human-readable adaptations made to fit the data (empty if none).
        event_steps: Minimum steps planned per feature event (fewer than
            ``MIN_STEPS_PER_FEATURE_EVENT`` only where the rows are short).
        vetted_together: A budget's one merged round (``_merged_round``): its features are
            masked off one by one after it, before its fine-tuning.
    """

    batch_size: int
    rounds: tuple[int, ...]
    chunks: tuple[int, ...]
    round_steps: tuple[int, ...]
    finetune_steps: int
    features_per_event: int = 1
    notes: tuple[str, ...] = ()
    event_steps: int = MIN_STEPS_PER_FEATURE_EVENT
    vetted_together: bool = False

    @property
    def total_steps(self) -> int:
        """Steps of the whole run if every round runs, fine-tuning included."""
        return sum(self.round_steps) + self.finetune_steps * len(self.rounds)

    def passes(self, num_rows: int) -> float:
        """Passes over ``num_rows`` training rows if every planned round runs."""
        return self.total_steps * self.batch_size / max(1, num_rows)


def _need(
    features: int,
    chunks: int,
    warmup: float,
    config: SelectionConfig,
    per_event: int,
    event_steps: int = MIN_STEPS_PER_FEATURE_EVENT,
) -> int:
    """Fewest selection steps a round needs: a minimum per event, in its phase's share."""
    feature_share = (1.0 - config.chunk_phase_fraction) * (1.0 - warmup)
    events = math.ceil(features / per_event)
    need = event_steps * math.ceil(events / feature_share)
    if chunks:
        chunk_events = math.ceil(chunks / per_event)
        need = max(
            need,
            MIN_STEPS_PER_CHUNK_EVENT * math.ceil(chunk_events / config.chunk_phase_fraction),
        )
    return need


def _spread(available: int, needs: list[int]) -> tuple[int, ...]:
    """Splits ``available`` steps over rounds in proportion to need, each at least its need."""
    total = sum(needs)
    extra = max(0, available - total)
    return tuple(n + (extra * n) // total for n in needs)


def plan_schedule(
    num_rows: int,
    rounds: list[int],
    mean_chunks: float,
    config: SelectionConfig,
    event_steps: tuple[int, ...] = EVENT_STEP_OPTIONS,
    floor_batch: int = FLOOR_BATCH_SIZE,
    keep_all: bool = False,
    first_round_factor: int = 1,
) -> Schedule:
    """Plans batch size, per-event count and steps so each example is seen about once.

    Args:
        num_rows: Training rows.
        rounds: Features to select per round (``plan_rounds``).
        mean_chunks: Mean number of chunks per candidate (for the width phase).
        config: Selection settings (batch size, epochs, phases, fine-tuning).
        event_steps: Steps per feature event to try, most first.
        floor_batch: Smallest batch when nothing fits at ``MIN_BATCH_SIZE``.
        keep_all: Every candidate is kept (only widths are chosen), so rounds need steps
            for their chunk events only (issue 15).
        first_round_factor: The first round needs this many times its minimum steps
            (``round_plan.FIRST_ROUND_EVENT_FACTOR``, via ``round_plan.fit_schedule``).

    Returns:
        The ``Schedule``. ``notes`` lists every adaptation, for a warning.

    Raises:
        ScheduleError: Even at batch ``floor_batch`` with all of a round's features
            in one event, the schedule would repeat examples. The message gives the rows
            needed and the settings that would fit.

    Example:
        >>> plan_schedule(2_000, [8], 2.0, SelectionConfig())   # -> batch 32, 2 per event
    """
    chunks = [max(0, round(config.dim_fraction * mean_chunks * p)) for p in rounds]
    warmups = [config.warmup_fraction if i == 0 else 0.0 for i in range(len(rounds))]

    def needs(per_event: int, event_steps: int = MIN_STEPS_PER_FEATURE_EVENT) -> list[int]:
        return [
            _need(0 if keep_all else p, c, w, config, per_event, event_steps)
            * (first_round_factor if i == 0 else 1)
            for i, (p, c, w) in enumerate(zip(rounds, chunks, warmups))
        ]

    if config.train_steps is not None or config.epochs > 1:
        # The caller chose the steps or the passes: honour them, adapting nothing.
        share = config.planned_steps(num_rows) // len(rounds)
        steps = tuple(max(share, n) for n in needs(1))
        return Schedule(
            config.batch_size, tuple(rounds), tuple(chunks), steps, config.finetune_steps
        )

    row_budget = math.floor(num_rows * config.epochs)
    # Fine-tuning only calibrates a round's evaluation, so it gives way before the
    # selection events do; MIN_FINETUNE_STEPS still settles the hard-masked tower.
    tunes = sorted({config.finetune_steps, min(config.finetune_steps, MIN_FINETUNE_STEPS)})[::-1]
    options = [
        (b, e, m, f)
        for b in sorted({MIN_BATCH_SIZE, min(floor_batch, MIN_BATCH_SIZE)}, reverse=True)
        for e in range(1, max(rounds) + 1)
        for m in event_steps
        for f in tunes
    ]
    if keep_all:
        # Only chunk events: selecting several chunks per event keeps the batch whole,
        # so widths cost about one plain pass (issue 15), before any smaller batch.
        full = [(config.batch_size, e, event_steps[0], tunes[0]) for e in range(1, max(chunks) + 1)]
        options = full + options
    for least, per_event, steps_each, finetune in options:
        need = needs(per_event, steps_each)
        batch = min(config.batch_size, row_budget // (sum(need) + finetune * len(rounds)))
        if batch >= least:
            break
    else:
        least = min(floor_batch, MIN_BATCH_SIZE)
        smallest = sum(needs(max(rounds), event_steps[-1])) + tunes[-1] * len(rounds)
        raise ScheduleError(
            f"{num_rows} training rows are too few to select {sum(rounds)} features in "
            f"{len(rounds)} round(s) without repeating examples: even at batch {least}, "
            f"{tunes[-1]} fine-tuning steps a round and every round's features chosen in one "
            f"event, the schedule needs {smallest} steps ({smallest * least} rows). Use at "
            "least that many rows, select fewer features (or raise features_per_round), or pass "
            "epochs > 1 (or train_steps) to accept repeated examples knowingly."
        )
    notes = []
    if batch < config.batch_size:
        notes.append(
            f"the batch size is lowered from {config.batch_size} to {batch}, so that "
            f"{sum(need) + finetune * len(rounds)} steps fit in one pass"
        )
    if steps_each < MIN_STEPS_PER_FEATURE_EVENT:
        notes.append(
            f"feature events get {steps_each} steps each (not {MIN_STEPS_PER_FEATURE_EVENT})"
        )
    if finetune < config.finetune_steps:
        notes.append(f"fine-tuning is cut from {config.finetune_steps} to {finetune} steps a round")
    if per_event > 1 and not keep_all:
        notes.append(f"{per_event} features are selected per event, so fewer events need steps")
    available = row_budget // batch - finetune * len(rounds)
    return Schedule(
        batch,
        tuple(rounds),
        tuple(chunks),
        _spread(available, need),
        finetune,
        per_event,
        tuple(notes),
        steps_each,
    )
