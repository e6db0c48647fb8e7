"""The selection schedule never repeats examples to buy steps (issue 14)."""

import pytest

from recsel.selection.round_plan import (
    FIRST_ROUND_EVENT_FACTOR,
    MIN_MERGED_EVENT_STEPS,
    fit_schedule,
    plan_rounds,
)
from recsel.selection.schedule import (
    FLOOR_BATCH_SIZE,
    MIN_BATCH_SIZE,
    MIN_STEPS_PER_FEATURE_EVENT,
    ScheduleError,
    plan_schedule,
)
from recsel.spec.config import SelectionConfig


def test_plentiful_rows_keep_the_batch_and_use_one_pass():
    config = SelectionConfig(num_features=4)
    schedule = plan_schedule(200_000, [4], 2.0, config)
    assert schedule.batch_size == 256 and not schedule.notes
    assert schedule.features_per_event == 1 and schedule.finetune_steps == 50
    assert schedule.passes(200_000) <= 1.0
    assert schedule.passes(200_000) > 0.99  # the rows are used, not wasted


def test_short_rows_lower_the_batch_instead_of_repeating_examples():
    config = SelectionConfig(num_features=6)
    schedule = plan_schedule(16_000, [6], 2.0, config)
    assert MIN_BATCH_SIZE <= schedule.batch_size < 256
    assert schedule.passes(16_000) <= 1.0
    # Every feature event still gets its steps: 6 events in the feature phase of the round.
    feature_phase = schedule.round_steps[0] * (1 - config.chunk_phase_fraction)
    warm = feature_phase * (1 - config.warmup_fraction)
    assert warm / 6 >= MIN_STEPS_PER_FEATURE_EVENT - 1
    assert any("batch size is lowered from 256" in note for note in schedule.notes)


def test_very_short_rows_select_several_features_per_event():
    schedule = plan_schedule(5_000, [12], 2.0, SelectionConfig(num_features=12))
    assert schedule.batch_size >= MIN_BATCH_SIZE and schedule.passes(5_000) <= 1.0
    assert schedule.features_per_event > 1 or schedule.finetune_steps < 50
    assert schedule.notes


def test_no_sound_schedule_is_a_clear_error():
    with pytest.raises(ScheduleError, match=r"200 training rows are too few to select 30") as info:
        plan_schedule(200, [30], 2.0, SelectionConfig(num_features=30))
    message = str(info.value)
    assert "Use at least that many rows" in message and "epochs > 1" in message
    assert "rows)" in message  # the rows the request needs are stated


def test_explicit_train_steps_or_epochs_are_honoured():
    steps = plan_schedule(16_000, [6], 2.0, SelectionConfig(num_features=6, train_steps=400))
    assert steps.batch_size == 256 and steps.round_steps == (400,)
    epochs = plan_schedule(16_000, [6], 2.0, SelectionConfig(num_features=6, epochs=3))
    assert epochs.batch_size == 256 and epochs.passes(16_000) > 1


def test_budget_rounds_cover_what_fits_one_feature_each():
    config = SelectionConfig(latency_budget_fraction=0.5)
    assert plan_rounds(8, 34, config) == [1] * 8  # not 7 rounds of 5 for all 34 candidates
    assert plan_rounds(40, 400, config) == [3] * 13 + [1]  # at most 16 rounds
    assert plan_rounds(8, 34, SelectionConfig(num_features=8)) == [8]


def test_budget_without_a_count_plans_fewer_rounds_rather_than_shorter_events():
    config = SelectionConfig(latency_budget_fraction=0.9)
    schedule = fit_schedule(16_000, 14, 16, 2.0, config, shrinkable=True)
    assert len(schedule.rounds) < 14 and schedule.passes(16_000) <= 1.0
    assert schedule.notes[0].startswith(f"rounds are planned for {sum(schedule.rounds)} features")
    # Asked for a count, it keeps the count and shortens events instead.
    counted = fit_schedule(16_000, 14, 16, 2.0, config, shrinkable=False)
    assert sum(counted.rounds) == 14 and counted.passes(16_000) <= 1.0


def test_budget_rows_far_too_short_for_one_feature_rounds_plan_one_merged_round():
    config = SelectionConfig(latency_budget_fraction=0.9)
    schedule = fit_schedule(8_000, 16, 16, 2.0, config, shrinkable=True)
    assert schedule.vetted_together and len(schedule.rounds) == 1
    assert 3 < schedule.rounds[0] < 16 and schedule.features_per_event == 1
    assert schedule.event_steps >= MIN_MERGED_EVENT_STEPS and schedule.passes(8_000) <= 1.0
    assert schedule.notes[0].startswith(f"one round selects up to {schedule.rounds[0]} features")
    # Where one-feature rounds hold a third or more of the target, they stay.
    kept = fit_schedule(16_000, 16, 16, 2.0, config, shrinkable=True)
    assert not kept.vetted_together and set(kept.rounds) == {1} and len(kept.rounds) >= 16 / 3


def test_tiny_tables_go_below_the_usual_smallest_batch_before_failing():
    schedule = plan_schedule(600, [2], 2.0, SelectionConfig(num_features=2, batch_size=32))
    assert FLOOR_BATCH_SIZE <= schedule.batch_size < MIN_BATCH_SIZE
    assert schedule.passes(600) <= 1.0


def test_a_budget_first_round_gets_longer_events_where_the_rows_allow():
    # MovieLens-sized: 64k rows, 5 one-feature budget rounds. The first pick has nothing
    # kept to lean on, so its round gets FIRST_ROUND_EVENT_FACTOR x a later round's steps.
    config = SelectionConfig(latency_budget_fraction=0.65)
    schedule = fit_schedule(64_000, 5, 8, 2.0, config, shrinkable=True)
    first, *later = schedule.round_steps
    assert first >= FIRST_ROUND_EVENT_FACTOR * max(later) * 0.95 and first > 2 * max(later)
    assert len(schedule.rounds) == 5 and schedule.passes(64_000) <= 1.0
    assert schedule.finetune_steps == config.finetune_steps  # bought by the batch alone
    # Where the long round would cost another adaptation (adversarial-sized rows), the
    # plan is the plain one: no fewer rounds and no shorter fine-tuning for it.
    short = fit_schedule(16_000, 6, 21, 2.0, config, shrinkable=True)
    assert len(set(short.round_steps)) == 1 and len(short.rounds) == 6
    # A count run has one round: nothing changes.
    counted = fit_schedule(64_000, 4, 8, 2.0, SelectionConfig(num_features=4))
    assert counted.round_steps == plan_schedule(64_000, [4], 2.0, SelectionConfig()).round_steps


@pytest.mark.parametrize("rows, warned", [(66_392, False), (16_000, True)])
def test_a_slightly_smaller_batch_is_logged_and_a_real_adaptation_warned(
    rows, warned, caplog, recwarn
):
    # MovieLens' 66,392 training rows and 4 selections: 260 steps at batch 255, not 256.
    # A 0.4% smaller batch is nothing to act on; 16,000 rows cut the batch to 78.
    import logging

    import pandas as pd

    from recsel.selection.setup import prepare_run

    config = SelectionConfig(num_features=4)
    train = pd.DataFrame(index=range(rows))
    with caplog.at_level(logging.INFO, logger="recsel.selection.setup"):
        adapted, *_ = prepare_run(train, train, _features(8), config, 4, None, lambda c: None)
    short = [w for w in recwarn if "training rows are short" in str(w.message)]
    assert adapted.batch_size < 256 and bool(short) == warned
    logged = [r.getMessage() for r in caplog.records if r.name == "recsel.selection.setup"]
    assert (logged == []) == warned
    if not warned:
        assert logged == [
            f"batch {adapted.batch_size} instead of 256, so that the 260 planned steps fit in "
            f"one pass over {rows} training rows"
        ]


def _features(count: int):
    from recsel.spec.features import FeatureSet

    specs = [
        {"name": f"x{i}", "kind": "numeric", "dtype": "float32", "embedding_dim": 16}
        for i in range(count)
    ]
    return FeatureSet.from_dict({"version": 1, "label": "y", "features": specs})
