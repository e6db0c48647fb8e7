"""Tests for recsel.inputs.schema_io on real TFDV schemas/statistics and real TFMD protos."""

from __future__ import annotations

# recsel pins tf_keras (TF_USE_LEGACY_KERAS) before TensorFlow loads.
import recsel  # noqa: F401 # isort: skip
import pathlib

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils

from recsel.inputs import schema_io
from recsel.outputs import schema as pruned_schema
from recsel.spec.features import FeatureSet, FeatureSpec

EXAMPLE = str(pathlib.Path(__file__).resolve().parent.parent / "schemas" / "example_schema.pbtxt")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    return pd.DataFrame(
        {
            "country": rng.choice(["de", "fr", "us"], n),
            "user": [f"u{i}" for i in range(n)],  # one value per row: high cardinality
            "item_id": rng.integers(0, 50, n),
            "price": rng.normal(10.0, 2.0, n),
            "tags": [list(rng.choice(["a", "b", "c", "d"], rng.integers(1, 4))) for _ in range(n)],
            "clicked": rng.integers(0, 2, n),
        }
    )


@pytest.fixture(scope="module")
def tfdv_schema_and_stats(frame):
    # A small max_string_domain_size leaves "user" (80 values) without a domain, as
    # SchemaGen does for high-cardinality columns.
    schema = tfdv.infer_schema(
        tfdv.generate_statistics_from_dataframe(frame), max_string_domain_size=10
    )
    # These statistics list at most 10 values per feature, so "user" is truncated.
    options = tfdv.StatsOptions(num_top_values=10, num_rank_histogram_buckets=10)
    return schema, tfdv.generate_statistics_from_dataframe(frame, options)


def test_tfdv_schema_maps_to_feature_kinds(tfdv_schema_and_stats, frame):
    schema, stats = tfdv_schema_and_stats
    features = schema_io.feature_set_from_schema(schema, "clicked", stats, embedding_dim=24)
    assert features.label == "clicked"
    assert features.names == ["country", "user", "item_id", "price", "tags"]
    assert all(s.embedding_dim == 24 for s in features)

    country = features["country"]  # global string_domain referenced by feature.domain
    assert (country.kind, country.dtype) == ("categorical", "string")
    assert sorted(country.vocabulary) == ["de", "fr", "us"]

    user = features["user"]  # no domain, statistics list only the top values: hashed
    assert user.vocabulary is None and user.hash_buckets == frame["user"].nunique()

    tags = features["tags"]  # value_count {min: 1} without max: valency from statistics
    assert tags.kind == "multi_categorical"
    assert tags.max_valency == max(len(t) for t in frame["tags"])
    assert sorted(tags.vocabulary) == ["a", "b", "c", "d"]

    for name in ("item_id", "price"):  # INT without a categorical domain, FLOAT: numeric
        spec = features[name]
        assert spec.kind == "numeric" and spec.numeric_transform == "bucketize"
        assert spec.mean == pytest.approx(frame[name].mean())
        assert spec.std == pytest.approx(frame[name].std(ddof=0), rel=1e-6)
        bounds = np.asarray(spec.boundaries)
        assert np.all(np.diff(bounds) > 0)
        assert frame[name].min() <= bounds[0] and bounds[-1] <= frame[name].max()
        # Bucketized on quantiles: every one of the 4 buckets holds about a quarter of rows.
    price = schema_io.feature_set_from_schema(schema, "clicked", stats, num_buckets=4)["price"]
    counts = np.bincount(np.searchsorted(price.boundaries, frame["price"]), minlength=4)
    assert len(price.boundaries) == 3 and counts.min() >= 0.15 * len(frame)
    assert features["item_id"].dtype == "int64" and features["price"].dtype == "float32"


def test_without_statistics(tfdv_schema_and_stats):
    schema, _ = tfdv_schema_and_stats
    features = schema_io.feature_set_from_schema(schema, "clicked", max_vocab_size=1000)
    price = features["price"]
    assert (price.numeric_transform, price.mean, price.std) == ("normalize", 0.0, 1.0)
    assert features["user"].hash_buckets == 1000  # unique count unknown
    assert features["tags"].kind == "multi_categorical"  # no shape: parsed as a list


def test_stats_vocabulary_and_categorical_ints(frame):
    stats = tfdv.generate_statistics_from_dataframe(frame)
    schema = tfdv.infer_schema(stats, max_string_domain_size=2)  # no domain for country
    tfdv.get_feature(schema, "item_id").int_domain.is_categorical = True
    # With the categorical hint TFDV computes string statistics (top values) for item_id.
    stats = tfdv.generate_statistics_from_dataframe(frame, tfdv.StatsOptions(schema=schema))
    features = schema_io.feature_set_from_schema(schema, "clicked", stats)
    country = features["country"]
    assert set(country.vocabulary) == {"de", "fr", "us"}
    counts = frame["country"].value_counts()
    assert country.vocabulary[0] == counts.index[0]  # most frequent first (rank order)
    item = features["item_id"]
    assert (item.kind, item.dtype) == ("categorical", "int64")
    assert sorted(item.vocabulary) == sorted(frame["item_id"].unique().tolist())
    small = schema_io.feature_set_from_schema(schema, "clicked", stats, max_vocab_size=10)
    assert small["item_id"].hash_buckets == 10  # more unique values than max_vocab_size
    # The frequency threshold drops the values the statistics count fewer times.
    threshold = int(counts.iloc[-1]) + 1  # above the rarest country's count
    frequent = schema_io.feature_set_from_schema(schema, "clicked", stats, min_count=threshold)
    assert set(frequent["country"].vocabulary) == set(counts.index[counts >= threshold])
    assert len(frequent["country"].vocabulary) < len(counts)


def test_example_schema(tmp_path):
    schema = schema_io.read_schema(EXAMPLE)
    with pytest.warns(UserWarning, match="coupon_index.*sparse_feature 'coupon'"):
        features = schema_io.feature_set_from_schema(schema, "clicked")
    assert "legacy_score" not in features.names  # DEPRECATED
    assert "coupon_value" not in features.names
    assert features["device"].vocabulary == ("android", "ios", "web")  # inline domain
    assert features["genres"].kind == "multi_categorical" and features["genres"].max_valency == 4
    assert features["item_id"].dtype == "int64" and features["item_id"].hash_buckets == 100_000
    assert features["hour"].kind == "numeric"  # int_domain without is_categorical

    out = str(tmp_path / "sub" / "schema.pbtxt")
    pruned_schema.write_schema(schema, out)
    assert schema_io.read_schema(out) == schema


def test_disabled_and_unsupported_features_are_skipped():
    schema = text_format.Parse(
        """
        feature { name: "a" type: BYTES shape { dim { size: 1 } } }
        feature { name: "b" type: BYTES lifecycle_stage: DISABLED }
        feature { name: "scores" type: FLOAT value_count { max: 3 } }
        feature { name: "y" type: INT }
        """,
        schema_pb2.Schema(),
    )
    with pytest.warns(UserWarning, match="'scores'.*numeric lists"):
        features = schema_io.feature_set_from_schema(schema, "y")
    assert features.names == ["a"]


def test_a_row_index_pandas_wrote_is_not_a_candidate(frame):
    # Parquet shards that pandas wrote with their index, read by TFDV: the statistics (and
    # so the schema) hold "__index_level_0__", one distinct value per row.
    written = frame.set_axis(np.arange(len(frame)) * 7).reset_index(names="__index_level_0__")
    stats = tfdv.generate_statistics_from_dataframe(written)
    with pytest.warns(UserWarning, match="'__index_level_0__' is the row index pandas wrote"):
        features = schema_io.feature_set_from_schema(tfdv.infer_schema(stats), "clicked", stats)
    assert "__index_level_0__" not in features.names
    assert sorted(features.names) == ["country", "item_id", "price", "tags", "user"]


def test_missing_label_names_it_and_the_features():
    schema = schema_io.read_schema(EXAMPLE)
    with pytest.raises(ValueError, match=r"Label 'purchased'.*country.*clicked"):
        schema_io.feature_set_from_schema(schema, "purchased")


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pbtxt"):
        schema_io.read_schema(str(tmp_path / "nope.pbtxt"))
    bad = tmp_path / "bad.pbtxt"
    bad.write_text("feature { name: 'x' typo: BYTES }")
    with pytest.raises(ValueError, match=r"bad\.pbtxt: not a text-format"):
        schema_io.read_schema(str(bad))
    with pytest.raises(FileNotFoundError, match="FeatureStats.pb"):
        schema_io.read_statistics(str(tmp_path / "FeatureStats.pb"))
    for content in (b"\xff\xfe garbage", b""):  # undecodable, and empty
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=r"bad\.pbtxt: not a DatasetFeatureStatisticsList"):
            schema_io.read_statistics(str(bad))


def test_read_statistics_binary_text_and_tfrecord(tfdv_schema_and_stats, tmp_path):
    _, stats = tfdv_schema_and_stats
    binary = tmp_path / "FeatureStats.pb"
    binary.write_bytes(stats.SerializeToString())
    text = tmp_path / "stats.pbtxt"
    text.write_text(text_format.MessageToString(stats))
    record = str(tmp_path / "stats_tfrecord")
    with tf.io.TFRecordWriter(record) as writer:
        writer.write(stats.SerializeToString())
    for path in (str(binary), str(text), record):
        assert schema_io.read_statistics(path) == stats


def _spec_keys(schema: schema_pb2.Schema) -> set[str]:
    return set(schema_utils.schema_as_feature_spec(schema).feature_spec)


def test_prune_schema(tfdv_schema_and_stats):
    schema = schema_io.read_schema(EXAMPLE)
    before = schema.SerializeToString(deterministic=True)
    kept = ["country", "price"]
    pruned = pruned_schema.prune_schema(schema, kept, "clicked")
    assert schema.SerializeToString(deterministic=True) == before  # input untouched
    assert _spec_keys(pruned) == {"country", "price", "clicked"}
    old = {f.name: f for f in schema.feature}
    for feature in pruned.feature:
        if feature.name in ("country", "price", "clicked"):
            assert feature.SerializeToString(deterministic=True) == old[
                feature.name
            ].SerializeToString(deterministic=True)
        else:
            assert feature.lifecycle_stage == schema_pb2.DEPRECATED
    # "genres" left the default group, the emptied "coupons" group is gone.
    assert set(pruned.tensor_representation_group) == {""}
    assert set(pruned.tensor_representation_group[""].tensor_representation) == {"price"}
    assert pruned.sparse_feature[0].lifecycle_stage == schema_pb2.DEPRECATED
    assert pruned.string_domain == schema.string_domain

    # A SchemaGen schema without representation groups.
    tfdv_schema, _ = tfdv_schema_and_stats
    pruned = pruned_schema.prune_schema(tfdv_schema, ["tags", "item_id"], "clicked")
    assert _spec_keys(pruned) == {"tags", "item_id", "clicked"}


def test_prune_schema_keeps_groups_of_kept_features():
    schema = schema_io.read_schema(EXAMPLE)
    pruned = pruned_schema.prune_schema(
        schema, ["genres", "coupon_index", "coupon_value"], "clicked"
    )
    assert set(pruned.tensor_representation_group) == {"", "coupons"}
    assert set(pruned.tensor_representation_group[""].tensor_representation) == {"genres"}
    assert pruned.sparse_feature[0].lifecycle_stage == schema.sparse_feature[0].lifecycle_stage
    # TFXIO parses the index/value pair as the sparse feature "coupon".
    assert _spec_keys(pruned) == {"genres", "coupon", "clicked"}


def test_prune_schema_unknown_or_retired_feature():
    schema = schema_io.read_schema(EXAMPLE)
    with pytest.raises(ValueError, match=r"\['colour'\] are not in the schema.*country"):
        pruned_schema.prune_schema(schema, ["country", "colour"], "clicked")
    with pytest.raises(ValueError, match=r"\['legacy_score'\] are kept but not in production"):
        pruned_schema.prune_schema(schema, ["country", "legacy_score"], "clicked")


def test_schema_for_features_round_trip(tfdv_schema_and_stats):
    schema, stats = tfdv_schema_and_stats
    features = schema_io.feature_set_from_schema(schema, "clicked", stats)
    features = FeatureSet(
        (*features.features, FeatureSpec("shop", "categorical", dtype="int64", vocabulary=(3, 7))),
        features.label,
    )
    fresh = pruned_schema.schema_for_features(features)
    spec = schema_utils.schema_as_feature_spec(fresh).feature_spec
    assert set(spec) == {*features.names, "clicked"}
    assert isinstance(spec["tags"], tf.io.VarLenFeature) and spec["tags"].dtype == tf.string
    for name, dtype in [("country", tf.string), ("price", tf.float32), ("clicked", tf.int64)]:
        assert spec[name] == tf.io.FixedLenFeature([1], dtype)
    again = schema_io.feature_set_from_schema(fresh, "clicked")
    assert again["country"].vocabulary == features["country"].vocabulary
    assert again["tags"].kind == "multi_categorical"
    assert again["tags"].max_valency == features["tags"].max_valency
    assert again["shop"].dtype == "int64" and again["shop"].kind == "categorical"
    assert again["item_id"].kind == again["price"].kind == "numeric"
