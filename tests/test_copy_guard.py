"""The event copy guard: a copy of a kept feature, or of a better-ranked pick of the same
event, is never taken (``recsel.selection._copy_guard``)."""

import types

import numpy as np
import pandas as pd
import pytest

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow)
from benchmarks.adversarial_recovery import select_on
from recsel.selection._copy_guard import CopyGuard
from recsel.sequential_attention import SequentialAttention

NAMES = ["a", "a_copy", "b", "b_copy", "c"]


def _sample(rows: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 8, rows), rng.normal(size=rows)
    return pd.DataFrame(
        {
            "a": [f"v{x}" for x in a],
            "a_copy": [f"w{(x * 3) % 8}" for x in a],  # a relabelling of a
            "b": b,
            "b_copy": 3 * b - 2,
            "c": [f"u{x}" for x in rng.integers(0, 5, rows)],
        }
    )


def _layer(logits: list[float], per_event: int) -> types.SimpleNamespace:
    attention = SequentialAttention(len(NAMES))
    # Events at every step from the first, so one training call fires one.
    num_events = 4 // per_event
    attention.set_schedule(
        num_selections=4, num_steps=num_events, warmup_fraction=0.0, per_event=per_event
    )
    attention.logits.assign(logits)
    features = types.SimpleNamespace(names=NAMES)
    return types.SimpleNamespace(feature_attention=attention, features=features)


def test_a_copy_of_a_kept_feature_is_skipped_for_the_next_candidate():
    layer = _layer([0.0, 0.0, 0.0, 0.0, 0.0], per_event=1)
    attention = layer.feature_attention
    attention.force_select([0])  # "a" is kept
    attention.logits.assign([0.0, 5.0, 1.0, 0.0, 2.0])  # its copy leads the ranking
    guard = CopyGuard(layer, _sample())
    guard.before_event()
    assert guard.skipped == {"a_copy": "a"}
    attention(training=True)
    assert attention.selected_indices() == [0, 4]  # "c", the next in line


def test_two_copies_cannot_join_in_one_event():
    layer = _layer([0.0, 0.0, 4.0, 3.0, 1.0], per_event=2)
    guard = CopyGuard(layer, _sample())
    guard.before_event()
    assert guard.skipped == {"b_copy": "b"}
    layer.feature_attention(training=True)
    assert layer.feature_attention.selected_indices() == [2, 4]


def test_distinct_columns_are_left_eligible():
    layer = _layer([1.0, 0.0, 3.0, 0.0, 2.0], per_event=2)
    guard = CopyGuard(layer, _sample())
    guard.before_event()
    assert guard.skipped == {}
    np.testing.assert_array_equal(layer.feature_attention.eligible.numpy(), np.ones(5))


@pytest.mark.slow
def test_count_mode_on_short_rare_data_keeps_no_copy():
    # 10k rows, 2.5% positives (~200 training positives): without the guard, count mode
    # kept numeric source c08 and its exact copy c00 (3x - 2) on this seed.
    data, _, result, caught = select_on("rare", 20, "count", 10_000)
    assert any("batch size is lowered" in str(w.message) for w in caught)
    score = data.score_selection(result.selected)
    assert score["copies"] == [], result.selected
    assert len(result.selected) == len(data.groups)
