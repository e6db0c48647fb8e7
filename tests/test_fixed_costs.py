"""The cheaper paths behind select()'s fixed costs compute what the slower ones did.

Each test pins one shortcut against the computation it replaced: the gates' closed-form
softmax gradient against autodiff of the same forward ops, the reduced SVD of the
principal-axis rotation against the full one, the blocked chunk ablation against one
block, the sliced validation batches against the ``tf.data`` pipeline, and the array
vocabulary of string lookups against a list.
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow)
from recsel.inputs.frame_dataset import FrameBatches, to_dataset
from recsel.model.embedding import StackedEmbedding
from recsel.selection import width_value
from recsel.selection.widths import principal_rotation
from recsel.sequential_attention import SequentialAttention
from recsel.spec.features import FeatureSet, FeatureSpec


def _autodiff_gates(sa: SequentialAttention) -> tf.Tensor:
    """``attention_weights`` as it was written before its custom gradient (autodiff)."""
    pending = sa.active * (1.0 - sa.selected)
    logits = sa.logits * sa.logit_scale
    masked = tf.where(pending > 0, logits, tf.fill(tf.shape(logits), -np.inf))
    top = tf.reduce_max(tf.where(pending > 0, logits, tf.fill(tf.shape(logits), -1e30)))
    exp = tf.exp(masked - top) * pending
    weights = sa.unselected_mass * tf.math.divide_no_nan(exp, tf.reduce_sum(exp))
    gated = sa.selected + weights + (1.0 - sa.active)
    return tf.where(sa.step < sa.attention_start, tf.ones_like(gated), gated)


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("mass, scale", [(1.0, 1.0), (3.0, 10.0)])
def test_gate_gradient_matches_autodiff_of_the_forward_ops(warm, mass, scale):
    rng = np.random.default_rng(7)
    n = 23
    sa = SequentialAttention(n, unselected_mass=mass, logit_scale=scale)
    sa.logits.assign(rng.normal(size=n).astype(np.float32))
    sa.selected.assign((rng.random(n) < 0.3).astype(np.float32))
    sa.active.assign((rng.random(n) < 0.8).astype(np.float32))
    sa.attention_start.assign(10 if warm else 0)
    upstream = tf.constant(rng.normal(size=n).astype(np.float32))
    results = []
    for gates in (sa.attention_weights, lambda: _autodiff_gates(sa)):
        with tf.GradientTape() as tape:
            values = gates()
            loss = tf.reduce_sum(values * upstream)
        results.append((values.numpy(), tape.gradient(loss, sa.logits).numpy()))
    (values, gradient), (expected_values, expected_gradient) = results
    np.testing.assert_array_equal(values, expected_values)  # the forward is unchanged
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)
    if warm:
        np.testing.assert_array_equal(gradient, np.zeros(n))
    else:
        assert np.abs(gradient).max() > 1e-3  # pending logits do learn


@pytest.mark.parametrize("rows", [3, 40])
def test_principal_rotation_is_square_and_matches_the_full_svd(rows):
    rng = np.random.default_rng(1)
    table = rng.normal(size=(rows, 8)).astype(np.float32)
    usage = rng.random(rows)
    kernel = rng.normal(size=(8, 5)).astype(np.float32)
    rotation, contribution = principal_rotation(table, usage, kernel)
    assert rotation.shape == (8, 8) and contribution.shape == (8,)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(8), atol=1e-10)
    weighted = np.sqrt(usage)[:, None] * table.astype(np.float64)
    _, singular, vt = np.linalg.svd(weighted, full_matrices=True)
    strength = np.zeros(8)
    strength[: singular.size] = singular**2
    full = strength * np.sum((vt @ kernel.astype(np.float64)) ** 2, axis=1)
    order = np.argsort(-full, kind="stable")
    np.testing.assert_array_equal(contribution, full[order])
    if rows >= 8:
        np.testing.assert_array_equal(rotation, vt.T[:, order])


def test_blocked_ablation_matches_one_block(monkeypatch):
    rng = np.random.default_rng(3)
    rows, width = 2500, 12
    embedded = rng.normal(size=(rows, width)).astype(np.float32)
    labels = (rng.random(rows) < 0.3).astype(np.float64)
    stack = [
        (rng.normal(size=(width, 6)), rng.normal(size=6).astype(np.float32), True),
        (rng.normal(size=(6, 1)), rng.normal(size=1).astype(np.float32), False),
    ]
    monkeypatch.setattr(width_value, "_dense_stack", lambda model: stack)
    jobs = [np.arange(c, c + 3) for c in range(0, width, 3)] + [np.array([5])]
    results = []
    for block in (rows, 1024, 7):
        monkeypatch.setattr(width_value, "ABLATE_BLOCK_ROWS", block)
        results.append(width_value._ablate(None, embedded, labels, jobs, 8_000_000))
    # To rounding, not bitwise: BLAS may take another kernel for another row count
    # (2.8e-17 apart on an AMD EPYC box, bitwise equal on an Intel Xeon one).
    for mean, se in results[1:]:
        np.testing.assert_allclose(mean, results[0][0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(se, results[0][1], rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(results[0][0])) and np.all(results[0][1] > 0)


def _frame_and_features() -> tuple[pd.DataFrame, FeatureSet]:
    rng = np.random.default_rng(5)
    rows = 1000
    frame = pd.DataFrame(
        {
            "city": rng.choice(["a", "b", "c"], rows),
            "count": rng.integers(0, 9, rows).astype(np.int64),
            "price": rng.normal(size=rows).astype(np.float32),
            "tags": [list(rng.integers(0, 5, rng.integers(0, 4))) for _ in range(rows)],
            "y": (rng.random(rows) < 0.4).astype(np.float32),
        }
    )
    features = FeatureSet(
        (
            FeatureSpec("city", "categorical", vocabulary=("a", "b", "c")),
            FeatureSpec("count", "categorical", dtype="int64", vocabulary=tuple(range(9))),
            FeatureSpec("price", "numeric", mean=0.0, std=1.0),
            FeatureSpec("tags", "multi_categorical", dtype="int64", vocabulary=tuple(range(5))),
        ),
        label="y",
    )
    return frame, features


def test_frame_batches_equal_the_unshuffled_pipeline_and_reiterate():
    frame, features = _frame_and_features()
    batches = FrameBatches(frame, features, "y", 384)
    expected = list(to_dataset(frame, features, "y", 384, shuffle=False))
    for _ in range(2):  # re-iterable, as evaluations of successive rounds need
        got = list(batches)
        assert len(got) == len(expected) == 3
        for (inputs, labels), (want_inputs, want_labels) in zip(got, expected):
            np.testing.assert_array_equal(labels.numpy(), want_labels.numpy())
            for name in features.names:
                value, want = inputs[name], want_inputs[name]
                if isinstance(want, tf.RaggedTensor):
                    np.testing.assert_array_equal(value.flat_values, want.flat_values)
                    np.testing.assert_array_equal(value.row_splits, want.row_splits)
                else:
                    np.testing.assert_array_equal(value.numpy(), want.numpy())


def test_frame_batches_name_a_missing_label():
    frame, features = _frame_and_features()
    with pytest.raises(KeyError, match="'clicked' not in the frame"):
        FrameBatches(frame, features, "clicked", 100)


def test_string_vocabulary_is_an_array_and_looks_up_as_a_list_would():
    specs = [
        FeatureSpec("a", "categorical", vocabulary=("x", "y", "z"), embedding_dim=4),
        FeatureSpec("b", "categorical", vocabulary=("y", "w"), embedding_dim=4),
    ]
    stack = StackedEmbedding(specs, seeds=[0, 1])
    assert isinstance(stack.lookup.input_vocabulary, np.ndarray)  # not a tracked list
    reference = tf_keras.layers.StringLookup(
        vocabulary=["x", "y", "z", "w"], num_oov_indices=1, mask_token=None
    )
    values = tf.constant(["w", "x", "nope", "z", "y"])
    np.testing.assert_array_equal(stack.lookup(values).numpy(), reference(values).numpy())


def test_chunk_ablation_runs_only_when_a_width_cut_needs_its_order(monkeypatch):
    # Without a cut (rounding, max_dim, memory) the kept chunks are the selected ones in
    # any order, so their held-out values were computed for nothing (0.1-0.2 s a round).
    from recsel import SelectionConfig, select
    from recsel.data.synthetic import make_synthetic
    from recsel.inputs.inference import infer_feature_set
    from recsel.inputs.tabular import validate_frame

    calls = []
    ablate = width_value.ablation_values
    monkeypatch.setattr(
        width_value, "ablation_values", lambda *a, **k: calls.append(1) or ablate(*a, **k)
    )
    data = make_synthetic(n_rows=6000, n_informative=3, n_duplicates=0, n_noise=3, n_traps=0)
    features = infer_feature_set(data.frame, data.label, embedding_dim=32)
    frame = validate_frame(data.frame, features, data.label)
    train, valid = frame.iloc[:4800], frame.iloc[4800:]
    roomy = select(train, valid, features, SelectionConfig(num_features=3), progress=False)
    assert calls == [] and max(roomy.dims.values()) > 8
    clipped = select(
        train, valid, features, SelectionConfig(num_features=3, max_dim=8), progress=False
    )
    assert calls == [1] and set(clipped.dims.values()) == {8}
