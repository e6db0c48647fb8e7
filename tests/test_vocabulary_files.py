"""Vocabulary files in the output contract: written, referenced, read back, TPU-ready."""

from __future__ import annotations

import json
import os

import pytest

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.outputs import embedding_config as tpu
from recsel.outputs.vocabulary_files import read_vocabulary_file, vocabulary_files
from recsel.outputs.write import EMBEDDING_CONFIG_FILE, FEATURE_SPEC_FILE, write_outputs
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.result import RoundRecord, SelectionResult

FEATURES = FeatureSet(
    (
        FeatureSpec("country", "categorical", vocabulary=("de", "fr", "", "us")),
        FeatureSpec("item id", "categorical", dtype="int64", vocabulary=(7, -3, 12)),
        FeatureSpec("tags", "multi_categorical", vocabulary=("a", "b"), max_valency=3),
        FeatureSpec("user", "categorical", dtype="int64", hash_buckets=100),
        FeatureSpec("price", "numeric", numeric_transform="bucketize", boundaries=(1.0, 2.0)),
    ),
    label="clicked",
)


def _result(features: FeatureSet, selected: list[str]) -> SelectionResult:
    dims = {n: 8 for n in selected}
    record = RoundRecord(index=0, selected=selected, dims=dims, auc=0.7, log_loss=0.6, steps=10)
    return SelectionResult(
        label="clicked",
        candidates=features.names,
        selected=selected,
        dims=dims,
        full_dims={s.name: s.embedding_dim for s in features},
        selection_weights={n: 0.5 for n in selected},
        final_weights={n: 1.0 if n in selected else 0.1 for n in features.names},
        rounds=[record],
        metrics={"auc": 0.7, "log_loss": 0.6},
        trajectory={"steps": [10], "weights": {n: [1.0] for n in features.names}},
        config={"chunk_size": 8, "dim_multiple": 8},
        provenance={"seed": 0},
    )


@pytest.fixture
def out(tmp_path) -> str:
    path = str(tmp_path / "out")
    write_outputs(_result(FEATURES, ["country", "item id", "user"]), FEATURES, path, report=False)
    return path


def test_every_vocabulary_is_a_referenced_file_that_matches_the_feature_set(out):
    spec = json.load(open(os.path.join(out, FEATURE_SPEC_FILE)))
    refs = {f["name"]: f.get("vocabulary_file") for f in spec["features"]}
    # Vocabularies (strings and ints, kept or dropped) get files; hashed and numeric do not.
    assert refs == {
        "country": "vocabularies/country.txt",
        "item id": "vocabularies/item_id.txt",
        "tags": "vocabularies/tags.txt",
        "user": None,
        "price": None,
    }
    for name, relative in refs.items():
        if relative is None:
            continue
        assert not os.path.isabs(relative)
        path = os.path.join(out, relative)
        assert read_vocabulary_file(path, FEATURES[name].dtype) == FEATURES[name].vocabulary
    # One value per line, in lookup-id order (tft's layout); the empty string is a line.
    assert open(os.path.join(out, refs["country"])).read() == "de\nfr\n\nus\n"
    assert open(os.path.join(out, refs["item id"])).read() == "7\n-3\n12\n"
    assert not [f for f in os.listdir(os.path.dirname(out)) if ".staging-" in f]


def test_embedding_config_references_the_kept_features_files_and_builds_tpu_configs(out):
    config = json.load(open(os.path.join(out, EMBEDDING_CONFIG_FILE)))
    refs = {f["name"]: f.get("vocabulary_file") for f in config["features"]}
    assert refs == {
        "country": "vocabularies/country.txt",
        "item id": "vocabularies/item_id.txt",
        "user": None,
    }
    for entry in config["features"]:
        if entry.get("vocabulary_file"):
            values = read_vocabulary_file(
                os.path.join(out, entry["vocabulary_file"]), entry["dtype"]
            )
            assert entry["vocabulary_size"] == len(values) + FEATURES[entry["name"]].num_oov_buckets
    path = os.path.join(out, EMBEDDING_CONFIG_FILE)
    assert tpu.read_embedding_config(path) == config  # the schema accepts the references
    krs = tpu.to_keras_rs_config(path, batch_size=32)
    assert set(krs["features"]) == {"country", "item id", "user"}
    assert krs["tables"]["country_table"]["vocabulary_size"] == 5
    assert set(tpu.to_tpu_feature_configs(path)) == {"country", "item id", "user"}


def test_a_spec_whose_vocabularies_live_only_in_files_reads_back_the_same(out):
    path = os.path.join(out, FEATURE_SPEC_FILE)
    assert FeatureSet.from_json(path) == FEATURES
    spec = json.load(open(path))
    for entry in spec["features"]:
        if "vocabulary_file" in entry:
            del entry["vocabulary"]
    slim = os.path.join(out, "slim_spec.json")
    json.dump(spec, open(slim, "w"))
    assert FeatureSet.from_json(slim) == FEATURES
    os.remove(os.path.join(out, "vocabularies", "tags.txt"))
    with pytest.raises(FileNotFoundError, match="'tags' references vocabulary file .*tags.txt"):
        FeatureSet.from_json(slim)


def test_colliding_names_and_line_breaks():
    features = FeatureSet(
        (
            FeatureSpec("a/b", "categorical", vocabulary=("x",)),
            FeatureSpec("a_b", "categorical", vocabulary=("y",)),
            FeatureSpec("note", "categorical", vocabulary=("one\ntwo", "three")),
        )
    )
    with pytest.warns(UserWarning, match="'note' has vocabulary values with line breaks"):
        files = vocabulary_files(features)
    assert files == {"a/b": "vocabularies/a_b.txt", "a_b": "vocabularies/a_b-1.txt"}


def test_a_non_integer_line_in_an_int64_vocabulary_names_file_and_line(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("1\n2\nthree\n")
    with pytest.raises(ValueError, match="ids.txt: line 3 \\('three'\\) is not an integer"):
        read_vocabulary_file(str(path), "int64")
