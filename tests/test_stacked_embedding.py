"""Fused (stacked) embedding tables versus one ``FeatureEmbedding`` per feature."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from recsel.inputs.frame_dataset import to_numpy_inputs
from recsel.model.embedding import FeatureEmbedding, StackedEmbedding, stack_key
from recsel.model.layer import PrunedEmbedding, SequentialAttentionEmbedding
from recsel.spec.features import FeatureSet, FeatureSpec

SPECS = (
    FeatureSpec("country", "categorical", vocabulary=("de", "fr", "us"), embedding_dim=8),
    FeatureSpec("city", "categorical", vocabulary=("berlin", "paris"), embedding_dim=8),
    FeatureSpec(
        "item", "categorical", dtype="int64", vocabulary=(3, 5, 7), num_oov_buckets=3,
        embedding_dim=8,
    ),
    FeatureSpec(
        "shop", "categorical", dtype="int64", vocabulary=(1, 2), num_oov_buckets=3,
        embedding_dim=8,
    ),
    FeatureSpec(
        "brand", "categorical", vocabulary=("x", "y"), num_oov_buckets=2, embedding_dim=8
    ),
    FeatureSpec("user_id", "categorical", hash_buckets=97, embedding_dim=8),
    FeatureSpec("session_id", "categorical", hash_buckets=97, embedding_dim=8),
    FeatureSpec("device_id", "categorical", dtype="int64", hash_buckets=97, embedding_dim=8),
    FeatureSpec(
        "tags", "multi_categorical", vocabulary=("a", "b", "c"), combiner="sqrtn",
        max_valency=3, embedding_dim=8,
    ),
    FeatureSpec(
        "topics", "multi_categorical", vocabulary=("a", "t", "u"), combiner="sqrtn",
        max_valency=3, embedding_dim=8,
    ),
    FeatureSpec(
        "labels", "multi_categorical", dtype="int64", vocabulary=(1, 2, 3), combiner="sum",
        max_valency=3, embedding_dim=16,
    ),
    FeatureSpec("price", "numeric", dtype="float32", mean=2.0, std=1.5, embedding_dim=8),
    FeatureSpec("weight", "numeric", dtype="float32", mean=-1.0, std=0.5, embedding_dim=8),
    FeatureSpec(
        "age", "numeric", dtype="float32", numeric_transform="bucketize",
        boundaries=(20.0, 30.0, 40.0), embedding_dim=8,
    ),
    FeatureSpec(
        "income", "numeric", dtype="float32", numeric_transform="bucketize",
        boundaries=(1.5,), embedding_dim=8,
    ),
)  # fmt: skip
FEATURES = FeatureSet(SPECS, label="clicked")


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def lists(tokens):
        return [list(rng.choice(tokens, rng.integers(0, 4), replace=False)) for _ in range(n)]

    return pd.DataFrame(
        {
            # Every categorical feature sees unseen values, so OOV rows are compared too.
            "country": rng.choice(["de", "fr", "us", "xx", "zz"], n),
            "city": rng.choice(["berlin", "paris", "rome", "de"], n),
            "item": rng.choice([3, 5, 7, 11, 13, 14, -4], n).astype(np.int64),
            "shop": rng.choice([1, 2, 8, 9, 10], n).astype(np.int64),
            "brand": rng.choice(["x", "y", "q", "r", "s"], n),
            "user_id": rng.choice([f"u{i}" for i in range(300)], n),
            "session_id": rng.choice([f"u{i}" for i in range(300)], n),
            "device_id": rng.integers(-(2**40), 2**40, n).astype(np.int64),
            "tags": lists(list("abcd")),
            "topics": lists(list("atuv")),
            "labels": [[int(v) for v in row] for row in lists([1, 2, 3, 4])],
            "price": rng.normal(2.0, 1.5, n).astype(np.float32),
            "weight": rng.normal(-1.0, 0.5, n).astype(np.float32),
            # Values on the boundaries check the bucket edges (upper bound).
            "age": rng.choice([15.0, 20.0, 25.0, 30.0, 40.0, 55.0], n).astype(np.float32),
            "income": rng.choice([1.0, 1.5, 2.0], n).astype(np.float32),
        }
    )


def _reference(layer) -> dict[str, FeatureEmbedding]:
    """One FeatureEmbedding per feature holding the fused layer's weights."""
    reference = {}
    for spec in layer.features:
        embedding = FeatureEmbedding(spec)
        embedding.table.assign(layer.feature_table(spec.name))
        reference[spec.name] = embedding
    return reference


def _reference_output(reference, inputs) -> np.ndarray:
    return tf.concat([reference[n](inputs[n]) for n in FEATURES.names], axis=1).numpy()


def test_features_share_stacks_by_width_and_kind():
    layer = PrunedEmbedding(FEATURES)
    groups = [[s.name for s in stack.specs] for stack in layer.stacks]
    assert ["country", "city"] in groups and ["item", "shop"] in groups
    assert ["user_id", "session_id"] in groups and ["device_id"] in groups
    assert ["tags", "topics"] in groups and ["price", "weight"] in groups
    assert ["age", "income"] in groups and ["brand"] in groups
    assert len(layer.stacks) == 9
    assert all(len({stack_key(s) for s in stack.specs}) == 1 for stack in layer.stacks)


def test_fused_layer_equals_per_feature_reference():
    layer = PrunedEmbedding(FEATURES)
    inputs = to_numpy_inputs(_frame(257), FEATURES)
    fused = layer(inputs).numpy()
    reference = _reference(layer)
    np.testing.assert_allclose(fused, _reference_output(reference, inputs), rtol=1e-6, atol=1e-6)
    # Not vacuous: features differ, and the tables are not all equal.
    assert np.std(fused) > 0.01


def test_fused_layer_matches_reference_on_ragged_sparse_and_column_inputs():
    layer = PrunedEmbedding(FEATURES)
    inputs = to_numpy_inputs(_frame(64, seed=1), FEATURES)
    mixed = dict(inputs)
    mixed["country"] = tf.sparse.from_dense(tf.reshape(inputs["country"], [-1, 1]))
    mixed["item"] = tf.RaggedTensor.from_tensor(tf.reshape(inputs["item"], [-1, 1]))
    mixed["tags"] = inputs["tags"].to_sparse()
    mixed["price"] = tf.reshape(inputs["price"], [-1, 1])
    mixed["age"] = tf.RaggedTensor.from_tensor(tf.reshape(inputs["age"], [-1, 1]))
    reference = _reference(layer)
    expected = _reference_output(reference, mixed)
    np.testing.assert_allclose(layer(mixed).numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_bucket_edges_and_non_finite_values_match_discretization():
    specs = [s for s in SPECS if s.name in ("age", "income")]
    stack = StackedEmbedding(specs, seeds=[0, 1])
    values = np.asarray([-np.inf, 19.999, 20.0, 40.0, np.inf, np.nan, 1.5], np.float32)
    inputs = {"age": tf.constant(values), "income": tf.constant(values[::-1].copy())}
    out = stack(inputs).numpy()
    for j, spec in enumerate(specs):
        embedding = FeatureEmbedding(spec)
        embedding.table.assign(stack.feature_table(spec.name))
        np.testing.assert_array_equal(out[:, 8 * j : 8 * (j + 1)], embedding(inputs[spec.name]))


def test_initial_blocks_equal_per_feature_initialisation():
    layer = PrunedEmbedding(FEATURES, seed=7)
    for i, spec in enumerate(FEATURES):
        expected = FeatureEmbedding(spec, seed=7 + i).table.numpy()
        np.testing.assert_array_equal(layer.feature_table(spec.name), expected)


def test_set_feature_tables_writes_only_the_named_blocks():
    layer = PrunedEmbedding(FEATURES)
    before = {n: layer.feature_table(n) for n in FEATURES.names}
    new = np.full_like(before["city"], 0.5)
    layer.set_feature_tables({"city": new})
    np.testing.assert_array_equal(layer.feature_table("city"), new)
    np.testing.assert_array_equal(layer.feature_table("country"), before["country"])
    with pytest.raises(ValueError):
        layer.set_feature_tables({"city": new[:, :4]})


def test_gated_layer_output_keeps_feature_column_order():
    layer = SequentialAttentionEmbedding(FEATURES, l2=0.0)
    inputs = to_numpy_inputs(_frame(32, seed=2), FEATURES)
    gates = layer._gates(False).numpy()
    expected = _reference_output(_reference(layer), inputs) * gates
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_l2_penalty_is_that_of_the_concatenated_embeddings():
    """The penalty acts in the gradient (``row_penalty``): the tables' gradient is the
    one of ``l2 * mean_b(sum(concat ** 2))`` added to the loss, bit for bit."""
    layer = PrunedEmbedding(FEATURES, l2=1e-2)
    inputs = to_numpy_inputs(_frame(40, seed=3), FEATURES)
    weights = tf.random.stateless_normal([40, layer.output_width], seed=[3, 4])
    with tf.GradientTape() as tape:
        data_loss = tf.reduce_sum(layer(inputs) * weights)
    penalised = tape.gradient(data_loss, layer.trainable_variables)
    assert layer.losses == []  # the reported loss is the data loss alone
    layer.l2 = 0.0
    with tf.GradientTape() as tape:
        concat = layer(inputs)
        loss = tf.reduce_sum(concat * weights)
        loss += 1e-2 * tf.reduce_mean(tf.reduce_sum(tf.square(concat), axis=1))
    expected = tape.gradient(loss, layer.trainable_variables)
    for got, want in zip(penalised, expected):
        np.testing.assert_array_equal(tf.convert_to_tensor(got), tf.convert_to_tensor(want))


def test_vocabulary_without_oov_rows_is_rejected_with_the_feature_named():
    spec = FeatureSpec("shop", "categorical", vocabulary=("a",), num_oov_buckets=0)
    with pytest.raises(ValueError, match="shop.*num_oov_buckets"):
        PrunedEmbedding(FeatureSet((spec,)))


def test_interleaved_stacks_come_back_in_feature_order():
    # country/city share a stack, as do price/weight; interleaving them makes the layer
    # split each stack's output and reassemble the columns in feature order.
    names = ["country", "price", "city", "weight", "tags"]
    features = FeatureSet(tuple(FEATURES[n] for n in names), label="clicked")
    layer = PrunedEmbedding(features)
    assert len(layer.stacks) == 3 and len(layer._pieces) == 5
    inputs = to_numpy_inputs(_frame(33, seed=4), features)
    reference = _reference(layer)
    expected = tf.concat([reference[n](inputs[n]) for n in names], axis=1).numpy()
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-6, atol=1e-6)
