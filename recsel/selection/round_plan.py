"""How many rounds, of how many features, and the schedule that runs them in one pass.

``plan_rounds`` splits the features to select into rounds: one round for a count, and
under a budget one feature a round (each its own masked check), several once there
would be more than ``MAX_BUDGET_ROUNDS``. ``fit_schedule`` then plans them with
``recsel.selection.schedule.plan_schedule``, adapting to the rows: under a budget the
first round gets longer events where the rows allow (``FIRST_ROUND_EVENT_FACTOR``);
without a count, rounds are planned for fewer features rather than shorter events, and
where the rows are far too short for one-feature rounds, one merged round whose features
are vetted together (``_merged_round``).

Example:
    >>> fit_schedule(16_000, 14, 16, 2.0, SelectionConfig(latency_budget_fraction=0.9))
"""

from __future__ import annotations

import dataclasses
import math

from recsel.selection.schedule import (
    MIN_BATCH_SIZE,
    MIN_STEPS_PER_FEATURE_EVENT,
    Schedule,
    ScheduleError,
    plan_schedule,
)
from recsel.spec.config import SelectionConfig

# Under a budget, rounds hold one feature each until there would be more than this many.
MAX_BUDGET_ROUNDS = 16
# Under a budget without a count, one-feature rounds (each feature its own masked check)
# are planned while one pass holds at least this share of what the budget could hold;
# below it, one merged round (``_merged_round``) selects more. On adversarial data at 10k
# rows one-feature rounds held 3 of 16 and kept 3 of 6 informative groups on all 10 runs
# (seeds 0-4, both variants); at 20k rows they hold 7 of 16 and were clean on all 10,
# so the share lies between the two measured points and 20k keeps its plan.
MERGE_BELOW_SHARE = 1 / 3
# A merged round's events may be as short as a count run's second option, not its last.
MIN_MERGED_EVENT_STEPS = 20
# Under a budget, the first round's event gets this many times the steps of a later one,
# where the rows allow it at no other adaptation: the first pick has no kept feature to
# lean on and decides what the rest of the budget can hold. At the minimum, MovieLens
# seeds 1 and 2 (rounds of 60 steps at batch ~116, ~5k rows before the first event)
# picked zip_code and genres first (their rounds' validation AUC 0.52 and 0.58; count
# mode's k=1 picked user_id and movie_id) and ended at test AUC 0.6868 and 0.6856; at
# 4x they picked user_id and movie_id and ended at 0.6963 and 0.6962 (seed 0: movie_id
# first either way, 0.6958 -> 0.6965); at 2x, 0.6944, 0.6962, 0.6972 on seeds 0-2 (seed 0
# stopped a round earlier). benchmarks/results/issue14_probes/ml_budget_*.json.
FIRST_ROUND_EVENT_FACTOR = 4


def fit_schedule(
    num_rows: int,
    target: int,
    num_candidates: int,
    mean_chunks: float,
    config: SelectionConfig,
    shrinkable: bool = False,
) -> Schedule:
    """``plan_schedule`` for ``plan_rounds``; under a budget without ``features_per_round``,
    rounds grow by one feature until the schedule fits the rows in one pass.

    Args:
        num_rows: Training rows.
        target: Features to plan for (see ``plan_rounds``).
        num_candidates: Candidate features.
        mean_chunks: Mean chunks per candidate.
        config: Selection settings.
        shrinkable: ``target`` is only what the budget could hold (no count was asked):
            when the rows cannot give that many one-feature rounds full-length events,
            plan fewer rounds rather than shorter events (choosing fewer beats choosing
            worse; short first events picked an ID-like column first on adversarial data).

    Returns:
        The ``Schedule`` (its notes say when rounds were merged or the plan shrank).

    Raises:
        ScheduleError: Not even one round of ``target`` features fits.

    Example:
        >>> fit_schedule(16_000, 14, 16, 2.0, SelectionConfig(latency_budget_fraction=0.9))
    """
    first = plan_rounds(target, num_candidates, config)
    if not config.has_budget:
        keep_all = target == num_candidates
        return plan_schedule(num_rows, first, mean_chunks, config, keep_all=keep_all)
    if config.features_per_round:
        return _long_first_round(num_rows, first, mean_chunks, config)
    if shrinkable:
        for fewer in range(target, 0, -1):
            try:
                schedule = _long_first_round(
                    num_rows,
                    plan_rounds(fewer, num_candidates, config),
                    mean_chunks,
                    config,
                    event_steps=(MIN_STEPS_PER_FEATURE_EVENT,),
                    floor_batch=MIN_BATCH_SIZE,
                )
            except ScheduleError:
                continue
            if fewer < target * MERGE_BELOW_SHARE:
                merged = _merged_round(num_rows, target, fewer, mean_chunks, config)
                if merged is not None:
                    return merged
            if fewer < target:
                note = (
                    f"rounds are planned for {fewer} features, not the {target} the budget could "
                    "hold; more rows would allow more"
                )
                schedule = dataclasses.replace(schedule, notes=(note, *schedule.notes))
            return schedule
    error = None
    for per_round in range(max(first), target + 1):
        try:
            schedule = _long_first_round(
                num_rows,
                plan_rounds(target, num_candidates, config, per_round),
                mean_chunks,
                config,
            )
        except ScheduleError as err:
            error = error or err
            continue
        if per_round > max(first):
            note = f"rounds hold {per_round} features each (not {max(first)}), so fewer rounds fit"
            schedule = dataclasses.replace(schedule, notes=(note, *schedule.notes))
        return schedule
    raise error


def _merged_round(
    num_rows: int, target: int, fewer: int, mean_chunks: float, config: SelectionConfig
) -> Schedule | None:
    """One round of the most features (more than ``fewer``, at most ``target``) that fit
    one pass with one feature per event and events of at least ``MIN_MERGED_EVENT_STEPS``
    steps, planned as a count run's round is; None if it holds no more than ``fewer``.

    Its features are vetted together after the round (``RoundValue.vet_merged_round``):
    each is masked off the trained model, and those whose validation AUC gain does not
    clear the tolerance by one standard error leave before the round's fine-tuning.
    """
    best = None
    for count in range(fewer + 1, target + 1):
        try:
            plan = plan_schedule(num_rows, [count], mean_chunks, config, floor_batch=MIN_BATCH_SIZE)
        except ScheduleError:
            break
        if plan.features_per_event > 1 or plan.event_steps < MIN_MERGED_EVENT_STEPS:
            break
        best = plan
    if best is None:
        return None
    note = (
        f"one round selects up to {best.rounds[0]} features (one-feature rounds would hold "
        f"only {fewer} of the {target} the budget could hold); each is then kept only if "
        "masking it off the trained model costs validation AUC"
    )
    return dataclasses.replace(best, notes=(note, *best.notes), vetted_together=True)


def _long_first_round(
    num_rows: int, rounds: list[int], mean_chunks: float, config: SelectionConfig, **options
) -> Schedule:
    """``plan_schedule`` with a first round of ``FIRST_ROUND_EVENT_FACTOR`` times its
    minimum steps, where that fits the rows at no adaptation the plain plan does not make
    (a smaller batch aside: the rows are the same one pass); else the plain plan.

    Only budget rounds ask for it: a count run has one round, whose events all share
    its steps. The budget's first round picks its feature with nothing kept yet, and
    at the minimum 30 steps its logits had barely separated (see the constant).

    Raises:
        ScheduleError: Even the plain plan does not fit (from ``plan_schedule``).
    """
    plain = plan_schedule(num_rows, rounds, mean_chunks, config, **options)
    if len(rounds) < 2:
        return plain
    try:
        long = plan_schedule(
            num_rows, rounds, mean_chunks, config, first_round_factor=FIRST_ROUND_EVENT_FACTOR,
            **options,
        )  # fmt: skip
    except ScheduleError:
        return plain

    def adaptations(schedule: Schedule) -> tuple:  # all but the batch size
        return schedule.features_per_event, schedule.finetune_steps, schedule.event_steps

    return long if adaptations(long) == adaptations(plain) else plain


def plan_rounds(
    target: int, num_candidates: int, config: SelectionConfig, per_round: int | None = None
) -> list[int]:
    """Features per round: one round without a budget, several small ones with a budget.

    Args:
        target: Features to plan for: the count asked, or under a budget without a count
            the most that can fit (``BudgetController.most_that_fit``).
        num_candidates: Candidate features.
        config: Selection settings (``features_per_round``, the budget).
        per_round: Features per round under a budget (default: ``features_per_round``, else
            one while that keeps the rounds to ``MAX_BUDGET_ROUNDS``).

    Returns:
        Features to select in each round.

    Example:
        >>> plan_rounds(24, 34, SelectionConfig(latency_budget_fraction=0.5))   # [2] * 12 (24 features, at most 16 rounds)
    """
    if not config.has_budget:
        return [target]
    # One feature a round while that keeps the rounds few: every round then has a masked
    # check of its one new feature (BudgetController.should_stop); a round of two let
    # an ID-like column ride along with a copy (+0.0026 AUC together, on adversarial data).
    per_round = (
        per_round or config.features_per_round or max(1, math.ceil(target / MAX_BUDGET_ROUNDS))
    )
    return [min(per_round, target - i) for i in range(0, target, per_round)]
