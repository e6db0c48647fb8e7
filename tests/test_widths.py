"""Widths that earn their keep (issue 15): planted widths, principal axes, memory budget."""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras
from scipy.stats import spearmanr

from recsel.data.planted_widths import make_planted_widths
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import SequentialAttentionEmbedding
from recsel.model.ranker import Ranker
from recsel.outputs.write import write_outputs
from recsel.selection.driver import select
from recsel.selection.width_value import ablation_values, drop_idle_chunks
from recsel.selection.widths import (
    align_principal_axes,
    chunk_values,
    first_dense,
    principal_rotation,
    rank_selected_chunks,
    trim_to_memory_budget,
)
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet, FeatureSpec


def _prepared(frame, label, embedding_dim, min_count=5):
    train, valid = split_frame(frame, 0.2, seed=1)
    features = infer_feature_set(train, label, embedding_dim=embedding_dim, min_count=min_count)
    return validate_frame(train, features, label), validate_frame(valid, features, label), features


# ------------------------------------------------------------------------- generator
def test_planted_generator_exposes_the_needed_width_of_every_table():
    data = make_planted_widths(n_rows=3_000, seed=3, pairs=((8, 500, 40), (2, 30, 20)))
    assert sorted(data.needed_width.values()) == [1, 1, 1, 1, 2, 2, 8, 8]
    assert set(data.feature_columns()) == set(data.needed_width)
    for a, b, rank in data.pairs:
        assert data.needed_width[a] == data.needed_width[b] == rank
    assert data.frame["label"].isin([0, 1]).all() and 0.2 < data.frame["label"].mean() < 0.6
    # Zipf popularity: the most common value of a 100k table is far above uniform.
    big = next(n for n, c in data.cardinality.items() if c == 100_000)
    assert data.frame[big].value_counts(normalize=True).iloc[0] > 100 / 100_000
    again = make_planted_widths(n_rows=3_000, seed=3, pairs=((8, 500, 40), (2, 30, 20)))
    assert again.frame.equals(data.frame)


def test_planted_generator_rejects_bad_arguments_by_name():
    with pytest.raises(ValueError, match="n_rows"):
        make_planted_widths(n_rows=10)
    with pytest.raises(ValueError, match="rank"):
        make_planted_widths(pairs=((0, 10, 10),))
    with pytest.raises(ValueError, match="at least one"):
        make_planted_widths(pairs=(), additive=())


# ------------------------------------------------------------------ principal axes
def test_principal_rotation_keeps_the_product_and_orders_contributions():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 2)) @ rng.standard_normal((2, 6))  # rank 2 in 6 columns
    table += 0.01 * rng.standard_normal(table.shape)
    kernel = rng.standard_normal((6, 5))
    rotation, contribution = principal_rotation(table, np.ones(50), kernel)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(
        (table @ rotation) @ (rotation.T @ kernel), table @ kernel, atol=1e-8
    )
    assert np.all(np.diff(contribution) <= 1e-12)
    assert contribution[:2].sum() > 0.999 * contribution.sum()  # the rank shows
    np.testing.assert_allclose(contribution.sum(), np.sum((table @ kernel) ** 2))


def _small_model(seed=0):
    tf_keras.utils.set_random_seed(seed)
    features = FeatureSet(
        (
            FeatureSpec("a", "categorical", vocabulary=tuple("pqrs"), embedding_dim=8),
            FeatureSpec("b", "categorical", vocabulary=tuple("xyz"), embedding_dim=8),
        ),
        label="y",
    )
    layer = SequentialAttentionEmbedding(features, chunk_size=4, seed=seed)
    model = Ranker(layer, (6,), seed=seed)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-2),
        loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
    )
    inputs = {
        "a": tf.constant([["p"], ["q"], ["r"], ["s"]] * 8),
        "b": tf.constant([["x"], ["y"], ["z"], ["x"]] * 8),
    }
    labels = tf.constant([[1.0], [0.0], [1.0], [0.0]] * 8)
    layer.schedule_selection(2, 0, 40, warmup_fraction=0.9)  # all gates 1 for 36 steps
    model.fit(inputs, labels, batch_size=8, epochs=2, verbose=0)
    return model, layer, inputs


def test_rotation_leaves_the_model_function_unchanged():
    model, layer, inputs = _small_model()
    before = model(inputs, training=False).numpy()
    table_before = layer.feature_table("a")
    contributions = align_principal_axes(model, ["a", "b"])
    np.testing.assert_allclose(model(inputs, training=False).numpy(), before, atol=1e-5)
    assert not np.allclose(layer.feature_table("a"), table_before)
    values = chunk_values(model, ["a"], 4)["a"]
    assert values[0] >= values[1]  # strongest directions now sit in chunk 0
    assert set(contributions) == {"a", "b"} and np.all(np.diff(contributions["a"]) <= 1e-9)


# ------------------------------------------------------------------ width trimming
def _tables(rows: dict[str, int], width: int) -> FeatureSet:
    return FeatureSet(
        tuple(
            FeatureSpec(n, "categorical", hash_buckets=r, embedding_dim=width)
            for n, r in rows.items()
        )
    )


def test_memory_trim_cuts_the_biggest_table_first_at_equal_value():
    features = _tables({"huge": 10_000, "s1": 10, "s2": 20}, 32)
    values = {n: np.array([4.0, 3.0, 2.0, 1.0]) for n in features.names}
    widths = {n: 32 for n in features.names}
    budget = (10_000 * 16 + 30 * 32) * 4  # the small tables fit at full width
    got = trim_to_memory_budget(widths, features, budget, values, 8, dict.fromkeys(widths, 8))
    assert got == {"huge": 16, "s1": 32, "s2": 32}
    # Chunks worth far more per byte on the huge table: the small tables give way first.
    values["huge"] = np.full(4, 1e6)
    got = trim_to_memory_budget(widths, features, budget, values, 8, dict.fromkeys(widths, 8))
    assert got["s1"] == got["s2"] == 8
    assert sum(features[n].vocabulary_size * w * 4 for n, w in got.items()) <= budget


def test_idle_chunks_are_dropped_but_every_feature_keeps_one():
    selected = {"a": [0, 1, 2], "b": [0]}
    mean = {"a": np.array([10.0, 5.0, 1e-4]), "b": np.array([-1e-6])}
    se = {"a": np.array([1.0, 1.0, 1e-3]), "b": np.array([1e-3])}
    assert drop_idle_chunks(selected, mean, se, 2.0) == {"a": [0, 1], "b": [0]}
    # 5 standard errors is not 6: the second chunk goes too.
    assert drop_idle_chunks(selected, mean, se, 6.0) == {"a": [0], "b": [0]}
    # Significance 0 still drops chunks that do not help at all.
    mean["a"][2] = -1e-4
    assert drop_idle_chunks(selected, mean, se, 0.0) == {"a": [0, 1], "b": [0]}


def test_ablation_values_find_the_chunk_the_tower_does_not_read():
    model, layer, _ = _small_model()
    layer.feature_attention.force_select([0, 1])
    layer.set_chunk_counts({"a": 2, "b": 2})
    dense = first_dense(model)
    kernel = dense.kernel.numpy()
    kernel[4:8] = 0.0  # columns 4-7 are feature a's chunk 1: nothing reads them now
    dense.kernel.assign(kernel)
    frame = pd.DataFrame({"a": list("pqrs") * 25, "b": list("xyzx") * 25, "y": [1, 0, 1, 0] * 25})
    sample = validate_frame(frame, layer.features, "y")
    mean, se = ablation_values(model, sample, "y", 4)
    assert set(mean) == {"a", "b"} and mean["a"].shape == (2,)
    assert mean["a"][1] == pytest.approx(0.0, abs=1e-6)
    assert mean["a"][0] > 2 * se["a"][0]  # a alone predicts y on these rows
    assert drop_idle_chunks({"a": [0, 1]}, mean, se, 2.0) == {"a": [0]}
    # Through the tower itself (one ablated copy per call, or all in one), the values are
    # those of the numpy shortcut through the Dense layers.
    for max_floats in (1, 10**8):
        mean_t, se_t = ablation_values(model, sample, "y", 4, max_floats, shortcut=False)
        for name in mean:
            np.testing.assert_allclose(mean_t[name], mean[name], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(se_t[name], se[name], rtol=1e-4, atol=1e-6)
    assert float(layer.hard_mask.numpy()) == 0.0  # the gates are as they were


def test_a_width_cut_keeps_the_chunks_ranked_most_valuable():
    _, layer, _ = _small_model()
    layer.feature_attention.force_select([0, 1])
    layer.set_chunk_counts({"a": 2, "b": 2})
    # Chunk 1 of a was worth more than chunk 0: cut to one chunk, a keeps chunk 1.
    rank_selected_chunks(layer, {"a": [1], "b": [0, 1]})
    layer.set_chunk_counts({"a": 1, "b": 2})
    assert layer.selected_chunks() == {"a": [1], "b": [0, 1]}


# ------------------------------------------------------------- end-to-end selections
@pytest.mark.slow
def test_planted_widths_are_ranked_by_need_on_a_fixed_seed():
    data = make_planted_widths(n_rows=200_000, seed=0)
    train, valid, features = _prepared(data.frame, data.label, embedding_dim=16)
    config = SelectionConfig(
        num_features=len(features), dim_fraction=0.3, chunk_size=1, dim_multiple=1, min_dim=1
    )
    result = select(train, valid, features, config, progress=False)
    names = sorted(data.needed_width)
    rho = spearmanr([data.needed_width[n] for n in names], [result.dims[n] for n in names])
    # Measured 0.911 at this seed (0.911 and 0.914 on seeds 1 and 2) with chunks judged on
    # 32,000 validation rows; 0.91 on each with 5,000; 0.91, 0.77, 0.81 when a chunk's value
    # was its first-layer energy, and -0.73 before principal axes.
    assert rho.correlation >= 0.9
    need = {r: [result.dims[n] for n in names if data.needed_width[n] == r] for r in (1, 2, 8, 32)}
    # Widths follow need: every rank-32 table is wider than every rank-8 table, and these
    # are wider than every table that needs 1 or 2 (at width 1, the minimum).
    assert min(need[32]) > max(need[8]) and min(need[8]) > max(need[1] + need[2]) == 1


@pytest.mark.slow
def test_memory_budget_shrinks_the_huge_table_before_dropping_small_ones(tmp_path):
    # One huge table and four small ones, every one an additive term of equal strength.
    data = make_planted_widths(
        n_rows=20_000, seed=0, pairs=(), additive=(5_000, 12, 16, 20, 24), additive_scale=1.0
    )
    train, valid, features = _prepared(data.frame, data.label, embedding_dim=32, min_count=1)
    rows = {s.name: s.vocabulary_size for s in features}
    huge = max(rows, key=rows.get)
    assert rows[huge] > 50 * max(r for n, r in rows.items() if n != huge)
    # Room for the huge table at its minimum width (8) and the small ones at full width.
    # Before issue 15 the widths ignored the budget, rounds went over it, and the result
    # fell back to a round with 2 of the 5 features (measured on this seed).
    budget = (rows[huge] * 8 + sum(r for n, r in rows.items() if n != huge) * 32) * 4
    config = SelectionConfig(
        memory_budget_bytes=budget, features_per_round=1, batch_size=128, finetune_steps=10
    )
    result = select(train, valid, features, config, progress=False)
    assert sorted(result.selected) == sorted(features.names)  # no small table lost
    assert result.dims[huge] == 8
    out = write_outputs(result, features, str(tmp_path / "out"), report=False)
    with open(os.path.join(out, "embedding_config.json")) as handle:
        tables = json.load(handle)["features"]
    used = sum(t["vocabulary_size"] * t["embedding_dim"] * 4 for t in tables)
    assert used <= budget
    assert {t["name"] for t in tables} == set(features.names)


def test_feature_selection_runs_drop_chunks_by_energy_share_not_by_ablation():
    """Unrotated chunks of one feature share directions, so ablating one alone costs little:
    the significance rule is for widths-only runs, and feature selection keeps a chunk
    that holds at least ENERGY_TOLERANCE of the selected first-layer energy."""
    from recsel.selection.widths import ENERGY_TOLERANCE, drop_low_energy_chunks

    energy = {"a": np.array([1.0, 0.5, 1e-6]), "b": np.array([1e-7, 0.0])}
    kept = drop_low_energy_chunks({"a": [0, 1, 2], "b": [0, 1]}, energy)
    assert kept == {"a": [0, 1], "b": [0]}  # b keeps its strongest chunk, however weak
    above = {"a": np.array([1.0, 2 * ENERGY_TOLERANCE])}  # just over the share of the total
    assert drop_low_energy_chunks({"a": [0, 1]}, above) == {"a": [0, 1]}
    below = {"a": np.array([1.0, 0.5 * ENERGY_TOLERANCE])}
    assert drop_low_energy_chunks({"a": [0, 1]}, below) == {"a": [0]}


def test_ablation_embeds_the_sample_in_blocks_as_in_one_call():
    from recsel.selection.width_value import _embedded

    model, layer, _ = _small_model()
    layer.feature_attention.force_select([0, 1])
    layer.set_chunk_counts({"a": 1, "b": 2})
    frame = pd.DataFrame({"a": list("pqrst") * 21, "b": list("xyz") * 35, "y": [1, 0, 1] * 35})
    sample = validate_frame(frame, layer.features, "y")
    whole = _embedded(model, sample)
    assert whole.shape[0] == len(sample)
    np.testing.assert_array_equal(_embedded(model, sample, rows=7), whole)  # 105 = 15 x 7
    np.testing.assert_array_equal(_embedded(model, sample, rows=50), whole)  # ragged last block
    assert float(layer.hard_mask.numpy()) == 0.0


def test_widths_only_runs_ablate_on_more_validation_rows(monkeypatch):
    """Widths-only runs draw width_value.SAMPLE_ROWS validation rows (tail chunks of a wide
    table are each worth little, so they need the power); feature runs keep 5000."""
    from recsel.selection import explain, width_value

    drawn = []
    original = explain.validation_sample

    def spy(valid, seed=0, rows=explain.SAMPLE_ROWS, head=None):
        drawn.append(rows)
        return original(valid, seed, rows, head=head)

    monkeypatch.setattr(explain, "validation_sample", spy)
    data = make_planted_widths(n_rows=20_000, seed=1, pairs=((8, 200, 100),), additive=(50,))
    train, valid, features = _prepared(data.frame, data.label, embedding_dim=8)
    for k, rows in ((len(features), width_value.SAMPLE_ROWS), (1, explain.SAMPLE_ROWS)):
        config = SelectionConfig(num_features=k, chunk_size=2, batch_size=128, finetune_steps=10)
        select(train, valid, features, config, progress=False)
        assert drawn[-1] == rows
    assert width_value.SAMPLE_ROWS > explain.SAMPLE_ROWS


def test_dim_fraction_one_keeps_every_chunk_unjudged():
    """An ensemble refits its consensus with dim_fraction=1 to keep the consensus widths;
    the widths-only ablation cut idle chunks anyway, so the refit 'changed' the widths."""
    data = make_planted_widths(n_rows=6_000, seed=1, pairs=((2, 40, 20),))
    train, valid, features = _prepared(data.frame, "label", embedding_dim=8)
    config = SelectionConfig(
        num_features=len(features), dim_fraction=1.0, chunk_size=2, dim_multiple=2, min_dim=2
    )
    result = select(train, valid, features, config, progress=False)
    assert result.dims == {n: 8 for n in features.names}
    judged = dataclasses.replace(config, dim_fraction=0.9)
    cut = select(train, valid, features, judged, progress=False).dims
    assert min(cut.values()) < 8  # the same data does have chunks the ablation cuts
