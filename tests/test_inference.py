"""Tests for recsel.inputs.inference: column kinds, vocabularies, numeric statistics, widths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.inputs.frame_dataset import to_dataset
from recsel.inputs.inference import DEFAULT_MIN_COUNT, heuristic_dim, infer_feature_set
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import PrunedEmbedding
from recsel.spec.features import FeatureSet


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "country": ["de", "fr", "de", "us", None, "fr", "de", ""],
            "premium": [True, False, True, True, False, False, True, False],
            "visits": [3, 1, 4, 1, 5, 9, 2, 6],
            "user_id": [7, 8, 7, 9, 7, 8, 10, 11],
            "ItemID": [1, 2, 3, 4, 5, 6, 7, 8],
            "price": [9.5, 1.25, np.nan, 3.0, 7.75, np.inf, 2.0, 4.5],
            "tags": [["a", "b"], [], ["b"], ["c", "a", "b"], None, ["a"], ["b"], ["a", None]],
            "items": [[1, 2], [2], [], [3, 2, 1, 2], [1], [2], [], [3]],
            "clicked": [1, 0, 1, 0, 0, 1, 1, 0],
        }
    )


def test_kinds_and_dtypes():
    features = infer_feature_set(_frame(), "clicked", min_count=1)
    kinds = {s.name: (s.kind, s.dtype) for s in features}
    assert kinds == {
        "country": ("categorical", "string"),
        "premium": ("categorical", "string"),
        "visits": ("numeric", "float32"),
        "user_id": ("categorical", "int64"),
        "ItemID": ("categorical", "int64"),
        "price": ("numeric", "float32"),
        "tags": ("multi_categorical", "string"),
        "items": ("multi_categorical", "int64"),
    }
    assert features.label == "clicked" and "clicked" not in features.names
    assert features["tags"].max_valency == 3 and features["items"].max_valency == 4
    assert features["tags"].combiner == "mean" and features["country"].max_valency == 1


def test_overrides_and_exclude():
    features = infer_feature_set(
        _frame(),
        "clicked",
        min_count=1,
        categorical=["visits"],
        numeric=["user_id"],
        exclude=["tags"],
    )
    assert features["visits"].kind == "categorical" and features["visits"].dtype == "int64"
    assert features["user_id"].kind == "numeric"
    assert "tags" not in features.names
    # An int column with missing values arrives as float; as an ID it stays int64 categorical.
    frame = _frame().assign(user_id=[7.0, 8.0, np.nan, 9.0, 7.0, 8.0, 10.0, 11.0])
    spec = infer_feature_set(frame, "clicked", min_count=1)["user_id"]
    assert (spec.kind, spec.dtype, spec.vocabulary) == ("categorical", "int64", (7, 8, 9, 10, 11))


def test_a_row_index_pandas_wrote_is_not_a_candidate(tmp_path):
    frame = _frame().set_axis([3, 1, 4, 15, 9, 2, 6, 5])  # not a RangeIndex: pandas writes it
    frame.to_parquet(tmp_path / "rows.parquet")
    frame.to_csv(tmp_path / "rows.csv")
    table = pa.parquet.read_table(tmp_path / "rows.parquet")
    assert "__index_level_0__" in table.column_names
    from_csv = pd.read_csv(tmp_path / "rows.csv")
    assert from_csv.columns[0] == "Unnamed: 0"
    for rows, written in ((table, "__index_level_0__"), (from_csv, "Unnamed: 0")):
        with pytest.warns(UserWarning, match=f"'{written}' is the row index pandas wrote"):
            features = infer_feature_set(rows, "clicked", min_count=1)
        assert features.names == infer_feature_set(_frame(), "clicked", min_count=1).names
    # A nameless column elsewhere is data with a missing header, and stays.
    unnamed = from_csv.rename(columns={"visits": "Unnamed: 3"})
    with pytest.warns(UserWarning, match="'Unnamed: 0'"):
        assert "Unnamed: 3" in infer_feature_set(unnamed, "clicked", min_count=1).names


def test_bad_overrides():
    with pytest.raises(
        ValueError,
        match=r"categorical= \(--categorical on the command line\) names unknown column\(s\) \['colour'\].*country",
    ):
        infer_feature_set(_frame(), "clicked", min_count=1, categorical=["colour"])
    with pytest.raises(
        ValueError,
        match=r"exclude= \(--exclude on the command line\) names unknown column\(s\) \['nope'\]",
    ):
        infer_feature_set(_frame(), "clicked", min_count=1, exclude=["nope"])
    with pytest.raises(ValueError, match=r"both categorical= and numeric="):
        infer_feature_set(
            _frame(), "clicked", min_count=1, categorical=["visits"], numeric=["visits"]
        )
    with pytest.raises(ValueError, match="label 'clicked' cannot be a candidate"):
        infer_feature_set(_frame(), "clicked", min_count=1, numeric=["clicked"])
    with pytest.raises(ValueError, match="label column 'target' not found"):
        infer_feature_set(_frame(), "target")
    with pytest.raises(ValueError, match="'tags' holds lists and cannot be numeric"):
        infer_feature_set(_frame(), "clicked", min_count=1, numeric=["tags"])


def test_unsupported_columns_say_to_exclude():
    with pytest.raises(ValueError, match=r"'vec' holds lists of floats.*exclude=\['vec'\]"):
        infer_feature_set(_frame().assign(vec=[[0.5, 1.5]] * 8), "clicked")
    with pytest.raises(ValueError, match=r"'ts' has unsupported type datetime64.*exclude=\['ts'\]"):
        infer_feature_set(_frame().assign(ts=pd.date_range("2024-01-01", periods=8)), "clicked")
    # The hint names the CLI flag too, quoted for a shell.
    with pytest.raises(ValueError, match=r"--exclude 'seen at' on the command line"):
        infer_feature_set(
            _frame().assign(**{"seen at": pd.date_range("2024", periods=8)}), "clicked"
        )
    with pytest.raises(ValueError, match="No candidate features"):
        infer_feature_set(_frame()[["country", "clicked"]], "clicked", exclude=["country"])


def test_vocabulary_order_min_count_and_missing_values():
    features = infer_feature_set(_frame(), "clicked", min_count=1)
    # Most frequent first, ties broken by value; None and "" are missing (they map to OOV).
    assert features["country"].vocabulary == ("de", "fr", "us")
    assert features["tags"].vocabulary == ("a", "b", "c")  # a and b tie at 4
    assert features["items"].vocabulary == (2, 1, 3)
    assert features["user_id"].vocabulary == (7, 8, 9, 10, 11)
    assert features["premium"].vocabulary == ("False", "True")
    assert features["country"].vocabulary_size == 4  # plus one OOV bucket
    frequent = infer_feature_set(_frame(), "clicked", min_count=2, exclude=["ItemID"])
    assert frequent["country"].vocabulary == ("de", "fr") and frequent["user_id"].vocabulary == (
        7,
        8,
    )
    # A column with no value that frequent keeps only its most frequent one, and says so.
    with pytest.warns(UserWarning, match=r"no value of column 'ItemID' occurs min_count=2"):
        spec = infer_feature_set(_frame(), "clicked", min_count=2)["ItemID"]
    assert spec.vocabulary == (1,)


def test_default_frequency_threshold_maps_rare_values_to_oov():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "session": [f"s{i}" for i in rng.integers(0, 3000, 6000)],  # ~2 rows a value
            "colour": rng.choice(["red", "blue", "green"], 6000),
            "clicked": rng.integers(0, 2, 6000),
        }
    )
    counts = frame["session"].value_counts()
    features = infer_feature_set(frame, "clicked")
    assert DEFAULT_MIN_COUNT == 5
    assert set(features["session"].vocabulary) == set(counts.index[counts >= 5])
    assert len(features["session"].vocabulary) < 0.1 * len(counts)
    assert features["colour"].vocabulary_size == 4  # frequent values are all kept
    every = infer_feature_set(frame, "clicked", min_count=1)
    assert len(every["session"].vocabulary) == len(counts)


def test_hash_fallback_for_id_like_columns():
    frame = pd.DataFrame({"item_id": np.arange(50), "clicked": np.arange(50) % 2})
    spec = infer_feature_set(frame, "clicked", min_count=1, max_vocab_size=10)["item_id"]
    assert spec.hash_buckets == 10 and spec.vocabulary is None and spec.vocabulary_size == 10
    spec = infer_feature_set(frame, "clicked", min_count=1, max_vocab_size=50)["item_id"]
    assert spec.hash_buckets is None and len(spec.vocabulary) == 50


def test_deterministic_under_row_order():
    frame = _frame()
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = infer_feature_set(frame, "clicked", min_count=1, num_buckets=4)
    b = infer_feature_set(shuffled, "clicked", min_count=1, num_buckets=4)
    assert a.to_dict() == b.to_dict()


def test_numeric_statistics_ignore_non_finite_values():
    features = infer_feature_set(_frame(), "clicked", min_count=1, numeric_transform="normalize")
    finite = np.array([9.5, 1.25, 3.0, 7.75, 2.0, 4.5])
    spec = features["price"]
    assert spec.numeric_transform == "normalize" and spec.boundaries is None
    assert spec.mean == pytest.approx(finite.mean()) and spec.std == pytest.approx(finite.std())


def test_bucketize_boundaries_are_unique_quantiles():
    values = np.arange(1.0, 101.0)
    frame = pd.DataFrame({"x": values, "few": [0.0, 1.0] * 50, "flat": 3.0, "y": [0, 1] * 50})
    features = infer_feature_set(frame, "y", num_buckets=4)
    assert features["x"].boundaries == tuple(np.quantile(values, [0.25, 0.5, 0.75]))
    assert features["few"].boundaries == (0.0, 0.5, 1.0)
    assert features["few"].vocabulary_size == 4
    flat = features["flat"]  # a constant column has no boundary: normalize, with std 1
    assert flat.numeric_transform == "normalize" and flat.mean == 3.0 and flat.std == 1.0


def test_embedding_dim_int_or_callable():
    assert [heuristic_dim(v) for v in (1, 3, 81, 10_000, 10**9)] == [8, 8, 24, 64, 64]
    assert heuristic_dim(81, multiple=4, max_dim=20) == 20
    with pytest.raises(ValueError, match="vocab_size=0"):
        heuristic_dim(0)
    fixed = infer_feature_set(_frame(), "clicked", min_count=1, embedding_dim=12)
    assert {s.embedding_dim for s in fixed} == {12}
    sized = infer_feature_set(_frame(), "clicked", min_count=1, embedding_dim=heuristic_dim)
    assert all(s.embedding_dim == heuristic_dim(s.vocabulary_size) for s in sized)
    with pytest.raises(ValueError, match="width 0 for 'country'"):
        infer_feature_set(_frame(), "clicked", min_count=1, embedding_dim=lambda v: 0)


def test_arrow_table_input_matches_pandas():
    table = pa.Table.from_pandas(_frame().drop(columns=["price"]), preserve_index=False)
    assert (
        infer_feature_set(table, "clicked", min_count=1).to_dict()
        == infer_feature_set(_frame().drop(columns=["price"]), "clicked", min_count=1).to_dict()
    )


def test_inferred_set_survives_json_and_feeds_the_layer(tmp_path):
    frame = _frame()
    features = infer_feature_set(frame, "clicked", min_count=1, embedding_dim=4)
    features.to_json(str(tmp_path / "features.json"))  # checked against the JSON schema on load
    loaded = FeatureSet.from_json(str(tmp_path / "features.json"))
    assert loaded == features
    clean = validate_frame(frame, loaded, "clicked", nan_policy="impute")
    inputs, labels = next(iter(to_dataset(clean, loaded, "clicked", batch_size=8)))
    out = PrunedEmbedding(loaded)(inputs)
    assert out.shape == (8, 4 * len(loaded)) and np.isfinite(out.numpy()).all()


def test_pandas_nullable_dtypes_read_as_their_numpy_forms():
    # read_csv(dtype_backend="numpy_nullable") and convert_dtypes() give Int64, Float64,
    # boolean and string columns; with a missing value, Int64 failed inference with
    # pandas' own "cannot convert to float64 ... with missing values".

    rng = np.random.default_rng(0)
    n = 600
    missing = rng.random(n) < 0.1
    nullable = pd.DataFrame(
        {
            "y": pd.array(rng.integers(0, 2, n), dtype="Int64"),
            "count": pd.array(np.where(missing, None, rng.integers(0, 5, n)), dtype="Int64"),
            "flag": pd.array(np.where(missing, None, rng.random(n) < 0.5), dtype="boolean"),
            "score": pd.array(np.where(missing, None, rng.random(n)), dtype="Float64"),
            "user_id": pd.array(np.where(missing, None, rng.integers(0, 50, n)), dtype="Int64"),
            "full": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "s": pd.Series(np.where(missing, None, rng.choice(list("abc"), n))).astype("string"),
        }
    )
    classic = nullable.astype(
        {"y": "int64", "count": "float64", "flag": object, "score": "float64",
         "user_id": "float64", "full": "int64", "s": object}
    )  # fmt: skip
    classic["flag"] = classic["flag"].where(nullable["flag"].notna(), None)
    classic["s"] = classic["s"].where(nullable["s"].notna(), None)
    features = infer_feature_set(nullable, "y")
    assert features.to_dict() == infer_feature_set(classic, "y").to_dict()
    kinds = {s.name: (s.kind, s.dtype) for s in features}
    assert kinds["user_id"] == ("categorical", "int64") and kinds["score"][0] == "numeric"
    clean = validate_frame(nullable, features, "y", nan_policy="impute")
    expected = validate_frame(classic, features, "y", nan_policy="impute")
    pd.testing.assert_frame_equal(clean[expected.columns], expected)
    assert (clean["user_id"] == -1).sum() == missing.sum()  # a missing ID is OOV
