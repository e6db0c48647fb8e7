"""Custom selection towers: loading by spec, checks, exact pruning, and select() with one."""

import os

import numpy as np
import pandas as pd
import pytest
import tf_keras

from recsel.data.synthetic import make_synthetic
from recsel.inputs.frame_dataset import to_dataset, to_numpy_inputs
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import SequentialAttentionEmbedding
from recsel.model.ranker import Ranker, prune_ranker
from recsel.model.tower import ExpandColumns, build_tower, load_tower_fn, tower_name
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet, FeatureSpec

TOWERS = os.path.join(os.path.dirname(__file__), "testdata", "towers.py")

FEATURES = FeatureSet(
    (
        FeatureSpec("country", "categorical", vocabulary=("de", "fr", "us"), embedding_dim=16),
        FeatureSpec("user_id", "categorical", hash_buckets=97, embedding_dim=16),
        FeatureSpec("price", "numeric", dtype="float32", mean=2.0, std=1.5, embedding_dim=8),
        FeatureSpec("age", "numeric", dtype="float32", mean=40.0, std=12.0, embedding_dim=16),
    ),
    label="clicked",
)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "country": rng.choice(["de", "fr", "us"], n),
            "user_id": rng.choice([f"u{i}" for i in range(200)], n),
            "price": rng.normal(2.0, 1.5, n).astype(np.float32),
            "age": rng.uniform(15, 65, n).astype(np.float32),
        }
    )
    signal = (frame.country == "us") * 1.5 + (frame.age > 40) * 1.0
    frame["clicked"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(signal - 1.0)))).astype(np.int64)
    return frame


def _trained(tower_spec: str) -> tuple[Ranker, SequentialAttentionEmbedding]:
    tf_keras.utils.set_random_seed(0)
    layer = SequentialAttentionEmbedding(FEATURES, chunk_size=8, l2=1e-4)
    model = Ranker(layer, tower=tower_spec)
    layer.schedule_selection(2, 2, 1024 // 64, warmup_fraction=0.1)
    model.compile(
        tf_keras.optimizers.Adam(1e-2), tf_keras.losses.BinaryCrossentropy(from_logits=True)
    )
    model.fit(to_dataset(_frame(1024), FEATURES, "clicked", 64, shuffle=True), epochs=1, verbose=0)
    layer.set_chunk_counts({n: max(1, len(c)) for n, c in layer.selected_chunks().items()})
    return model, layer


def test_load_tower_fn_from_file_and_module():
    fn = load_tower_fn(f"{TOWERS}:build_tower")
    assert fn().layers[0].units == 24
    assert load_tower_fn("tf_keras.layers:Dense") is tf_keras.layers.Dense
    assert load_tower_fn("tf_keras.layers.Dense") is tf_keras.layers.Dense
    assert tower_name(f"{TOWERS}:build_tower") == f"{TOWERS}:build_tower"
    assert tower_name(_frame) == f"{__name__}:_frame"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no/such/towers.py:build", "does not exist"),
        (f"{TOWERS}:missing_fn", "has no function 'missing_fn'"),
        ("recsel_no_such_package:build", "Cannot import tower module 'recsel_no_such_package'"),
        ("build_tower", "names no function"),
    ],
)
def test_bad_tower_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        load_tower_fn(spec)


def test_tower_shape_and_type_are_checked():
    with pytest.raises(ValueError, match=r"one logit \[batch, 1\].*\(2, 2\)"):
        build_tower(load_tower_fn(f"{TOWERS}:build_two_logits"), 24)
    with pytest.raises(ValueError, match="returned str"):
        build_tower(load_tower_fn(f"{TOWERS}:build_not_a_layer"), 24)
    with pytest.raises(ValueError, match="tower must be a factory"):
        SelectionConfig(tower=3)


@pytest.mark.parametrize("name", ["build_tower", "build_normalised_tower"])
def test_pruned_custom_tower_matches_masked_gated_model(name):
    model, layer = _trained(f"{TOWERS}:{name}")
    pruned = prune_ranker(model)
    inputs = to_numpy_inputs(_frame(300, seed=1), FEATURES)
    layer.freeze()
    try:
        masked = model(inputs, training=False).numpy()
    finally:
        layer.hard_mask.assign(0.0)
    np.testing.assert_allclose(pruned(inputs).numpy(), masked, atol=1e-5)
    assert not np.allclose(model(inputs, training=False).numpy(), masked, atol=1e-5)
    kept_width = len(layer.selected_output_columns())
    if name == "build_tower":  # Dense-first: the first kernel lost the dropped rows
        assert pruned.custom_tower.layers[0].kernel.shape == (kept_width, 24)
        assert not isinstance(pruned.embedding, ExpandColumns)
    else:  # other towers read zeros in the dropped columns
        assert isinstance(pruned.embedding, ExpandColumns)
        assert pruned.embedding.output_width == layer.output_width > kept_width


def test_select_trains_and_prunes_with_a_custom_tower():
    data = make_synthetic(
        n_rows=4000, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=1
    )
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    spec = f"{TOWERS}:build_normalised_tower"
    config = SelectionConfig(num_features=3, batch_size=64, seed=0, tower=spec)
    result = select(train, valid, features, config, progress=False)
    assert result.config["tower"] == spec
    assert len(result.selected) == 3
    assert result.metrics["auc"] > 0.7, result.metrics
    with pytest.raises(ValueError, match="has no function 'nope'"):
        select(train, valid, features, SelectionConfig(num_features=3, tower=f"{TOWERS}:nope"))
