"""The joint chunk rule (``width_value.joint_drop``) against the per-chunk one."""

import numpy as np
import pandas as pd
import pytest

from recsel.inputs.tabular import validate_frame
from recsel.selection import width_value
from recsel.selection.width_value import (
    JointAblation,
    ablation_values,
    drop_idle_chunks,
    joint_drop,
)
from recsel.spec.config import SelectionConfig
from tests.test_widths import _small_model, first_dense


def _additive(values: dict[str, np.ndarray], errors: dict[str, np.ndarray]):
    """A rise evaluator whose chunks add up independently: means add, variances add."""

    def rise(jobs):
        mean = np.array([values[n][c].sum() for n, c in jobs])
        se = np.array([np.sqrt((errors[n][c] ** 2).sum()) for n, c in jobs])
        return mean, se

    return rise


def test_a_tail_worth_little_alone_but_much_jointly_is_kept():
    # Table "wide": one strong chunk and 8 tail chunks each 1.5 SE (not significant alone);
    # together they are 1.5 * sqrt(8) = 4.2 SE. Table "idle": a noise tail (mean 0).
    mean = {"wide": np.array([50.0] + [1.5] * 8), "idle": np.array([50.0, 0.0, 0.0, 0.0])}
    se = {"wide": np.ones(9), "idle": np.ones(4)}
    selected = {"wide": list(range(9)), "idle": list(range(4))}
    rise = _additive(mean, se)
    each = drop_idle_chunks(selected, mean, se, 2.0)
    joint = joint_drop(selected, mean, rise, 2.0)
    assert each == {"wide": [0], "idle": [0]}
    # 1.5k <= 2 sqrt(k) holds for k <= 1 only: one tail chunk goes, seven stay.
    assert len(joint["wide"]) == 8 and 0 in joint["wide"]
    assert joint["idle"] == [0]
    # The invariant the per-chunk rule breaks: what the joint rule dropped is jointly
    # within 2 SE; what the per-chunk rule dropped is far outside it.
    for kept, within in ((joint, True), (each, False)):
        jobs = [(n, [c for c in selected[n] if c not in kept[n]]) for n in selected]
        m, s = rise([job for job in jobs if job[1]])
        assert bool(np.all(m <= 2.0 * s)) is within


def test_joint_drop_drops_the_least_valuable_first_and_keeps_the_best():
    mean = {"a": np.array([0.1, 5.0, -0.2, 3.0])}
    se = {"a": np.ones(4)}
    seen = []

    def rise(jobs):
        seen.extend(c for _, c in jobs)
        return _additive(mean, se)(jobs)

    # Everything but the best is jointly worthless at 10 SE: dropped in value order.
    assert joint_drop({"a": [0, 1, 2, 3]}, mean, rise, 10.0) == {"a": [1]}
    assert seen == [[2], [2, 0], [2, 0, 3]]
    # A single chunk is never tried (the feature gates decide features, not widths).
    assert joint_drop({"a": [1]}, mean, rise, 10.0) == {"a": [1]}


def test_joint_ablation_matches_single_chunk_values_and_the_tower():
    model, layer, _ = _small_model()
    layer.feature_attention.force_select([0, 1])
    layer.set_chunk_counts({"a": 2, "b": 2})
    dense = first_dense(model)
    kernel = dense.kernel.numpy()
    kernel[4:8] = 0.0  # feature a's chunk 1: nothing reads it
    dense.kernel.assign(kernel)
    frame = pd.DataFrame({"a": list("pqrs") * 25, "b": list("xyzx") * 25, "y": [1, 0, 1, 0] * 25})
    sample = validate_frame(frame, layer.features, "y")
    mean, se = ablation_values(model, sample, "y", 4)
    rise = JointAblation(model, sample, "y", 4)
    jobs = [("a", [0]), ("a", [1]), ("b", [0]), ("b", [1])]
    m, s = rise(jobs)
    np.testing.assert_allclose(m, [mean[n][c[0]] for n, c in jobs], atol=1e-9)
    np.testing.assert_allclose(s, [se[n][c[0]] for n, c in jobs], atol=1e-9)
    # Both of b's chunks together, through the tower itself (no numpy shortcut).
    (both,), _ = rise([("b", [0, 1])])
    embedded = rise.embedded.copy()
    cols = layer.output_columns_of("b")[:8]
    labels = sample["y"].to_numpy(np.float64)
    base = width_value._log_loss_rows(model, embedded, labels)
    embedded[:, cols] = embedded[:, cols].mean(axis=0)
    direct = (width_value._log_loss_rows(model, embedded, labels) - base).mean()
    assert both == pytest.approx(direct, rel=1e-4, abs=1e-6)
    assert joint_drop({"a": [0, 1]}, mean, rise, 2.0) == {"a": [0]}


def test_an_unknown_chunk_rule_is_refused_by_name():
    with pytest.raises(ValueError, match="chunk_rule must be 'each', 'joint' or 'tail', got 'all'"):
        SelectionConfig(chunk_rule="all")


def test_the_tail_rule_never_drops_a_chunk_significant_alone():
    # Chunks worth less than nothing (-3 SE) let the plain joint rule drop a 2.5 SE chunk:
    # the cumulative rise stays within 2 SE. Among the chunks not significant alone
    # ("tail"), the 2.5 SE chunk is kept, and so is a jointly significant tail.
    mean = {"a": np.array([50.0, 2.5, -3.0, -3.0]), "w": np.array([50.0] + [1.5] * 8)}
    se = {"a": np.ones(4), "w": np.ones(9)}
    selected = {"a": [0, 1, 2, 3], "w": list(range(9))}
    rise = _additive(mean, se)
    assert joint_drop(selected, mean, rise, 2.0)["a"] == [0]
    tail = joint_drop(selected, mean, rise, 2.0, se)
    assert tail["a"] == [0, 1]
    assert len(tail["w"]) == 8
    each = drop_idle_chunks(selected, mean, se, 2.0)
    assert all(set(each[n]) <= set(tail[n]) for n in selected)
