"""Tests of the gated embedding layer, its pruning and its serving form."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras

from recsel.inputs.frame_dataset import to_dataset, to_numpy_inputs
from recsel.model.layer import CUSTOM_OBJECTS, PrunedEmbedding, SequentialAttentionEmbedding
from recsel.model.ranker import Ranker, prune_ranker
from recsel.model.serving import (
    export_saved_model,
    load_serving_fn,
    predict_examples,
    serialize_examples,
)
from recsel.spec.features import FeatureSet, FeatureSpec

FEATURES = FeatureSet(
    (
        FeatureSpec("country", "categorical", vocabulary=("de", "fr", "us"), embedding_dim=16),
        FeatureSpec(
            "item", "categorical", dtype="int64", vocabulary=(3, 5, 7, 11), embedding_dim=16
        ),
        FeatureSpec("user_id", "categorical", hash_buckets=97, embedding_dim=8),
        FeatureSpec(
            "tags",
            "multi_categorical",
            vocabulary=("a", "b", "c", "d"),
            combiner="sqrtn",
            max_valency=3,
            embedding_dim=16,
        ),
        FeatureSpec("price", "numeric", dtype="float32", mean=2.0, std=1.5, embedding_dim=8),
        FeatureSpec(
            "age",
            "numeric",
            dtype="float32",
            numeric_transform="bucketize",
            boundaries=(20.0, 30.0, 40.0),
            embedding_dim=16,
        ),
    ),
    label="clicked",
)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "country": rng.choice(["de", "fr", "us", "xx"], n),
            "item": rng.choice([3, 5, 7, 11, 13], n).astype(np.int64),
            "user_id": rng.choice([f"u{i}" for i in range(300)], n),
            "tags": [
                list(rng.choice(list("abcde"), rng.integers(0, 4), replace=False)) for _ in range(n)
            ],
            "price": rng.normal(2.0, 1.5, n).astype(np.float32),
            "age": rng.uniform(15, 60, n).astype(np.float32),
        }
    )
    signal = (
        (frame.country == "us") * 1.5 + frame.tags.map(lambda t: "a" in t) * 1.0 + (frame.age > 30)
    )
    frame["clicked"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(signal - 1.2)))).astype(np.int64)
    return frame


def _trained_ranker(num_features: int = 3, num_chunks: int = 3, rows: int = 2048):
    tf_keras.utils.set_random_seed(0)
    layer = SequentialAttentionEmbedding(FEATURES, chunk_size=8, l2=1e-4)
    model = Ranker(layer, (16, 8))
    batches = rows // 64
    layer.schedule_selection(num_features, num_chunks, batches, warmup_fraction=0.1)
    model.compile(
        tf_keras.optimizers.Adam(1e-2), tf_keras.losses.BinaryCrossentropy(from_logits=True)
    )
    model.fit(to_dataset(_frame(rows), FEATURES, "clicked", 64, shuffle=True), epochs=1, verbose=0)
    return model, layer


@pytest.fixture(scope="module")
def trained():
    return _trained_ranker()


def test_schedule_selects_requested_features_and_chunks(trained):
    _, layer = trained
    assert len(layer.selected_features()) == 3
    assert len(layer.chunk_attention.selected_indices()) == 3
    # Chunk attention only ever picks chunks of selected features.
    for name, chunks in layer.selected_chunks().items():
        assert name in layer.selected_features()
        assert all(0 <= c < len(layer.chunks_of(name)) for c in chunks)


def test_pruned_model_matches_masked_gated_model(trained):
    model, layer = trained
    counts = {n: max(1, len(c)) for n, c in layer.selected_chunks().items()}
    layer.set_chunk_counts(counts)
    pruned = prune_ranker(model)
    inputs = to_numpy_inputs(_frame(300, seed=1), FEATURES)
    layer.freeze()
    try:
        gated = model(inputs, training=False).numpy()
    finally:
        layer.hard_mask.assign(0.0)
    np.testing.assert_allclose(pruned(inputs).numpy(), gated, atol=1e-5)
    assert pruned.embedding.output_width == sum(8 * c for c in counts.values())
    # Soft gates differ from the mask, so the comparison above is not vacuous.
    assert not np.allclose(model(inputs, training=False).numpy(), gated, atol=1e-5)


def test_pruned_savedmodel_has_no_gates_and_serves_the_same(trained, tmp_path):
    model, layer = trained
    layer.set_chunk_counts({n: max(1, len(c)) for n, c in layer.selected_chunks().items()})
    pruned = prune_ranker(model)
    kept = pruned.embedding.features
    path = export_saved_model(pruned, kept, str(tmp_path / "serving"))
    loaded = tf.saved_model.load(path)
    variable_names = [v.name for v in loaded.variables]
    assert variable_names, "the SavedModel should hold the embedding tables"
    assert not [n for n in variable_names if "attention" in n or "hard_mask" in n or "logits" in n]
    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    nodes = [n.name for n in graph.node] + [
        n.name for f in graph.library.function for n in f.node_def
    ]
    assert not [n for n in nodes if "attention" in n.lower() or "hard_mask" in n.lower()]
    frame = _frame(64, seed=2)
    served = predict_examples(load_serving_fn(path), serialize_examples(frame, kept))
    direct = tf.sigmoid(pruned(to_numpy_inputs(frame, kept))).numpy()[:, 0]
    np.testing.assert_allclose(served, direct, atol=1e-5)
    signature_inputs = loaded.signatures["serving_default"].structured_input_signature[1]
    assert list(signature_inputs) == ["examples"]


def test_dense_sparse_and_ragged_inputs_agree():
    layer = SequentialAttentionEmbedding(FEATURES)
    frame = _frame(16)
    inputs = to_numpy_inputs(frame, FEATURES)
    reference = layer(inputs).numpy()
    as_sparse = dict(inputs)
    as_sparse["country"] = tf.sparse.from_dense(tf.reshape(inputs["country"], [-1, 1]))
    as_sparse["tags"] = inputs["tags"].to_sparse()
    as_sparse["price"] = tf.reshape(inputs["price"], [-1, 1])
    np.testing.assert_allclose(layer(as_sparse).numpy(), reference, atol=1e-6)


def test_unseen_ids_map_to_oov_rows():
    layer = SequentialAttentionEmbedding(FEATURES)
    frame = _frame(4)
    frame["country"] = ["never-seen", "xx", "yy", "zz"]
    frame["item"] = np.array([999, 1000, 1001, 1002], np.int64)
    out = layer(to_numpy_inputs(frame, FEATURES)).numpy()
    assert np.isfinite(out).all()
    # All unseen countries share the single OOV row.
    np.testing.assert_allclose(out[0, :16], out[1, :16])


def test_missing_input_feature_is_named():
    layer = SequentialAttentionEmbedding(FEATURES)
    inputs = to_numpy_inputs(_frame(4), FEATURES)
    del inputs["price"]
    with pytest.raises(KeyError, match="price"):
        layer(inputs)


def test_config_round_trip_and_gated_savedmodel(trained, tmp_path):
    model, layer = trained
    clone = SequentialAttentionEmbedding.from_config(layer.get_config())
    assert clone.features == layer.features and clone.chunk_size == layer.chunk_size
    model.save(str(tmp_path / "gated"), save_format="tf")
    reloaded = tf_keras.models.load_model(
        str(tmp_path / "gated"), custom_objects={**CUSTOM_OBJECTS, "Ranker": Ranker}
    )
    inputs = to_numpy_inputs(_frame(32, seed=3), FEATURES)
    np.testing.assert_allclose(
        reloaded(inputs, training=False).numpy(), model(inputs, training=False).numpy(), atol=1e-5
    )
    assert reloaded.embedding.selected_features() == layer.selected_features()


def test_pruned_embedding_config_round_trip():
    layer = PrunedEmbedding(FEATURES.subset(["country", "tags"], {"country": 8, "tags": 8}))
    clone = PrunedEmbedding.from_config(layer.get_config())
    assert clone.output_width == 16 and clone.features.names == ["country", "tags"]


def test_pruning_before_selection_is_a_clear_error():
    with pytest.raises(ValueError, match="No feature is selected"):
        SequentialAttentionEmbedding(FEATURES).pruned()


def test_a_selected_feature_without_a_chunk_says_how_to_give_it_one():
    # num_chunks below what the selected features need leaves one at width 0: the README's
    # raw-layer flow (schedule_selection, fit, pruned()) then stopped at a bare error.
    layer = SequentialAttentionEmbedding(FEATURES, chunk_size=8)
    layer.feature_attention.force_select([0, 1])  # country, item: 2 chunks each
    layer.chunk_attention.set_selection(layer.chunks_of("country"))
    with pytest.raises(ValueError, match=r"\['item'\] have no selected chunk") as caught:
        layer.pruned()
    assert "kept 2 of the selected features' 4 chunks" in str(caught.value)
    assert "layer.set_chunk_counts({'item': 1})" in str(caught.value)
    layer.set_chunk_counts({"item": 1})
    assert layer.pruned().features.names == ["country", "item"]
    assert layer.selected_widths() == {"country": 16, "item": 8}


@pytest.mark.parametrize("hidden", [(16, 8), ()])
def test_ranker_folds_gates_into_first_kernel_with_the_same_outputs_and_gradients(hidden):
    # The Ranker scales its first kernel's rows by the column gates instead of scaling
    # the embeddings; outputs and every gradient must be those of the gated embeddings
    # fed to the tower (hidden=() folds into the logit layer itself).
    tf_keras.utils.set_random_seed(3)
    layer = SequentialAttentionEmbedding(FEATURES, chunk_size=8, l2=1e-3)
    model = Ranker(layer, hidden)
    layer.schedule_selection(2, 2, 100, warmup_fraction=0.0)
    rng = np.random.default_rng(3)
    layer.feature_attention.logits.assign(rng.normal(size=len(FEATURES)).astype(np.float32))
    layer.feature_attention.force_select([1])  # selected, pending and chunk gates differ
    chunks = layer.chunk_attention  # attend over the selected feature's chunks now
    chunks.set_active(layer.feature_attention.selected.numpy()[layer._chunk_feature])
    chunks.attention_start.assign(0)
    chunks.logits.assign(rng.normal(size=layer.num_chunks).astype(np.float32))
    inputs = to_numpy_inputs(_frame(64, seed=5), FEATURES)
    gates = layer._gates(False)
    assert np.ptp(gates.numpy()) > 0.05  # the check below would not see unscaled rows

    def reference(x):
        for dense in [*model.tower, model.logit]:
            x = dense(x)
        return x

    with tf.GradientTape(persistent=True) as tape:
        folded = model(inputs, training=False)
        unfolded = reference(layer(inputs, training=False))
        folded_loss, unfolded_loss = tf.reduce_sum(folded**2), tf.reduce_sum(unfolded**2)
    np.testing.assert_allclose(folded.numpy(), unfolded.numpy(), rtol=1e-5, atol=1e-6)
    variables = model.trainable_variables
    assert any("logits" in v.name for v in variables)
    for var, a, b in zip(
        variables,
        tape.gradient(folded_loss, variables),
        tape.gradient(unfolded_loss, variables),
        strict=True,
    ):
        assert a is not None and b is not None, f"{var.name}: no gradient"
        a, b = tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy()
        assert np.abs(b).max() > 0, var.name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=var.name)
