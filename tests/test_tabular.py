"""Tests for recsel.inputs.tabular: reading CSV/Parquet/TFRecord, validation, splitting, tf.data."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.inputs.frame_dataset import to_dataset, to_numpy_inputs
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import MissingColumnError, read_table, validate_frame
from recsel.model.layer import PrunedEmbedding
from recsel.spec.features import FeatureSet, FeatureSpec

FEATURES = FeatureSet(
    (
        FeatureSpec("country", "categorical", vocabulary=("de", "fr"), embedding_dim=4),
        FeatureSpec("user_id", "categorical", dtype="int64", hash_buckets=10, embedding_dim=4),
        FeatureSpec("age", "numeric", dtype="float32", embedding_dim=4),
        FeatureSpec(
            "tags", "multi_categorical", vocabulary=("a", "b", "c"), max_valency=3, embedding_dim=4
        ),
        FeatureSpec(
            "items", "multi_categorical", dtype="int64", vocabulary=(1, 2, 3), embedding_dim=4
        ),
    ),
    label="clicked",
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "country": ["de", "fr", "us", "de", "fr"],
            "user_id": [10, 11, 12, 13, 14],
            "age": [31.0, 22.5, 40.0, 19.0, 55.5],
            "tags": [["a", "b"], [], ["c"], ["a", "b", "c"], ["b"]],
            "items": [[1, 2], [3], [], [1], [2, 3]],
            "clicked": [1, 0, 0, 1, 1],
            "extra": ["x", "y", "z", "w", "v"],
        }
    )


def _write_tfrecord(path, rows: list[dict], gzipped: bool = False) -> None:
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzipped else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for row in rows:
            feats = {}
            for name, values in row.items():
                if isinstance(values[0] if values else "", str):
                    feats[name] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[v.encode() for v in values])
                    )
                elif isinstance(values[0], float):
                    feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
                else:
                    feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()
            )


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz"])
def test_csv_round_trip_with_list_columns(tmp_path, name):
    path = tmp_path / name  # pandas gzips a .gz name
    frame = _frame()
    on_disk = frame.assign(
        tags=frame["tags"].map("|".join), items=frame["items"].map(lambda v: "|".join(map(str, v)))
    )
    on_disk.to_csv(path, index=False)
    got = read_table(str(path), label="clicked", list_separator="|", list_columns=["tags", "items"])
    pd.testing.assert_frame_equal(got, frame)
    assert got["items"][0] == [1, 2] and isinstance(got["items"][0][0], int)


def test_a_corrupt_gzipped_csv_is_named(tmp_path):
    path = tmp_path / "data.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"data.csv.gz: not a readable CSV file"):
        read_table(str(path), label="clicked")


def test_csv_list_options_are_checked(tmp_path):
    path = tmp_path / "data.csv"
    _frame().drop(columns=["tags", "items"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="list_separator"):
        read_table(str(path), list_columns=["tags"])
    with pytest.raises(MissingColumnError, match="'tags'"):
        read_table(str(path), list_separator="|", list_columns=["tags"])


@pytest.mark.parametrize(
    "suffix,compression", [(".parquet", "snappy"), (".pq", "none"), (".parquet.brotli", "brotli")]
)
def test_parquet_round_trip_lists_become_python_lists(tmp_path, suffix, compression):
    path = tmp_path / f"data{suffix}"
    frame = _frame()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression=compression)
    got = read_table(str(path), label="clicked")
    pd.testing.assert_frame_equal(got, frame)
    assert type(got["tags"][0]) is list and type(got["items"][4]) is list


@pytest.mark.parametrize(
    "name,gzipped",
    [("data.tfrecord", False), ("data.tfrecords", False), ("data.tfrecord.gz", True)],
)
def test_tfrecord_round_trip(tmp_path, name, gzipped):
    rows = [
        {"country": ["de"], "user_id": [10], "age": [31.5], "tags": ["a", "b"], "clicked": [1]},
        {"country": ["fr"], "user_id": [11], "age": [22.0], "tags": [], "clicked": [0]},
        {"country": ["us"], "user_id": [12], "age": [40.25], "clicked": [0]},  # no "tags" at all
    ]
    _write_tfrecord(tmp_path / name, rows, gzipped)
    got = read_table(str(tmp_path / name), label="clicked")
    assert list(got.columns) == ["age", "clicked", "country", "tags", "user_id"]
    assert got["country"].tolist() == ["de", "fr", "us"]  # bytes decoded to str
    assert got["user_id"].dtype == np.int64 and got["user_id"].tolist() == [10, 11, 12]
    assert got["age"].tolist() == [31.5, 22.0, 40.25]
    assert got["tags"].tolist() == [["a", "b"], [], []]  # not one value per row: a list column


def test_directory_of_parquet_shards_skips_markers(tmp_path):
    frame = _frame()
    for i, part in enumerate((frame.iloc[:2], frame.iloc[2:])):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), tmp_path / f"part-{i}.parquet"
        )
    (tmp_path / "_SUCCESS").write_text("")
    pd.testing.assert_frame_equal(read_table(str(tmp_path)), frame)


def test_a_directory_of_partition_folders_suggests_a_pattern(tmp_path):
    # Spark/Hive partitions (date=.../part-0.parquet): "holds no data files" said nothing
    # of the folders, nor of the glob that reads them.
    frame = _frame()
    for day in ("date=2024-01-01", "date=2024-01-02"):
        (tmp_path / day).mkdir()
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), tmp_path / day / "p.parquet"
        )
    pattern = re.escape(f"'{tmp_path}/*/*.parquet'")
    expected = rf"holds folders \(date=2024-01-01, date=2024-01-02\).*{pattern}"
    with pytest.raises(FileNotFoundError, match=expected):
        read_table(str(tmp_path))
    assert len(read_table(str(tmp_path / "*" / "*.parquet"))) == 2 * len(frame)


def test_glob_of_csv_and_tfrecord_shards(tmp_path):
    _frame().iloc[:3].to_csv(tmp_path / "a.csv", index=False)
    _frame().iloc[3:].to_csv(tmp_path / "b.csv", index=False)
    assert read_table(str(tmp_path / "*.csv"))["user_id"].tolist() == [10, 11, 12, 13, 14]
    _write_tfrecord(tmp_path / "data_tfrecord-00000-of-00002.gz", [{"x": [1]}], gzipped=True)
    _write_tfrecord(
        tmp_path / "data_tfrecord-00001-of-00002.gz", [{"x": [2]}, {"x": [3]}], gzipped=True
    )
    assert read_table(str(tmp_path / "data_tfrecord-*"))["x"].tolist() == [1, 2, 3]


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        read_table(str(tmp_path / "nothere.csv"))
    with pytest.raises(FileNotFoundError, match="no files match"):
        read_table(str(tmp_path / "*.parquet"))


def test_empty_files_have_no_rows(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b\n")
    _write_tfrecord(tmp_path / "empty.tfrecord", [])
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), tmp_path / "empty.parquet")
    for name in ("empty.csv", "header.csv", "empty.tfrecord", "empty.parquet"):
        with pytest.raises(ValueError, match=rf"{name} has no rows"):
            read_table(str(tmp_path / name))


def test_unsupported_extension_lists_supported(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(ValueError, match=r"data\.json: unsupported.*\.parquet.*\.tfrecord\.gz"):
        read_table(str(tmp_path / "data.json"))


def test_corrupt_tfrecord_names_file(tmp_path):
    (tmp_path / "bad.tfrecord").write_bytes(b"this is not a tfrecord file at all" * 3)
    with pytest.raises(ValueError, match=r"bad\.tfrecord: corrupt TFRecord"):
        read_table(str(tmp_path / "bad.tfrecord"))
    (tmp_path / "bad.tfrecord.gz").write_bytes(gzip.compress(b"garbage" * 10))
    with pytest.raises(ValueError, match=r"bad\.tfrecord\.gz: corrupt TFRecord"):
        read_table(str(tmp_path / "bad.tfrecord.gz"))


def test_mixed_parquet_schemas_name_files_and_columns(tmp_path):
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "p0.parquet")
    pq.write_table(pa.table({"a": ["1"], "c": [2.0]}), tmp_path / "p1.parquet")
    with pytest.raises(ValueError, match=r"p0\.parquet and .*p1\.parquet") as err:
        read_table(str(tmp_path))
    assert (
        "['b']" in str(err.value)
        and "['c']" in str(err.value)
        and "a (int64 vs string)" in str(err.value)
    )


def test_read_table_checks_label(tmp_path):
    _frame().to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(MissingColumnError, match="'label'.*country"):
        read_table(str(tmp_path / "d.csv"), label="label")


# ---------------------------------------------------------------- validation


def test_validate_cleans_copy_without_mutating_input():
    frame = _frame()
    frame.loc[1, "country"] = None
    frame["user_id"] = frame["user_id"].astype(float)
    frame.loc[2, "user_id"] = np.nan  # pandas makes an int column float when values are missing
    frame.at[0, "tags"] = ["a", None]
    frame.at[4, "tags"] = None
    before = frame.copy(deep=True)
    clean = validate_frame(frame, FEATURES, "clicked")
    pd.testing.assert_frame_equal(frame, before)
    assert clean["country"].tolist() == ["de", "", "us", "de", "fr"]
    assert clean["user_id"].dtype == np.int64 and clean["user_id"].tolist() == [10, 11, -1, 13, 14]
    assert clean["tags"].tolist() == [["a", ""], [], ["c"], ["a", "b", "c"], []]
    assert clean["clicked"].dtype == np.float32 and "extra" in clean.columns


def test_missing_feature_and_label():
    frame = _frame().drop(columns=["age", "tags"])
    with pytest.raises(
        MissingColumnError, match=r"\['age', 'tags'\].*available columns.*country"
    ) as err:
        validate_frame(frame, FEATURES, "clicked", source="train.csv")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert str(err.value).startswith("train.csv:")
    with pytest.raises(MissingColumnError, match="label column 'target'"):
        validate_frame(_frame(), FEATURES, "target")


@pytest.mark.parametrize(
    "values",
    [
        [True, False, False, True, True],
        [1.0, 0.0, 0.0, 1.0, 1.0],
        ["1", "false", "0", "TRUE", "true"],
        [1, 0, 0, 1, 1],
    ],
)
def test_binary_label_forms(values):
    clean = validate_frame(_frame().assign(clicked=values), FEATURES, "clicked")
    assert clean["clicked"].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]


def test_non_binary_label_shows_values_and_fix():
    with pytest.raises(
        ValueError, match=r"label 'clicked' must be binary.*2 row\(s\).*\[2, 5\].*Binarise"
    ):
        validate_frame(_frame().assign(clicked=[1, 2, 0, 5, 1]), FEATURES, "clicked")
    with pytest.raises(ValueError, match=r"'yes'"):
        validate_frame(_frame().assign(clicked=["yes", "0", "1", "0", "1"]), FEATURES, "clicked")
    # Missing labels only: the fix is to drop (or fill) those rows.
    with pytest.raises(ValueError, match=r"missing in 2 of 5 row\(s\); drop those rows"):
        validate_frame(_frame().assign(clicked=[1, None, 0, None, 1]), FEATURES, "clicked")
    # Text classes: the fix compares with one of them, not with a threshold.
    classes = ["<=50K", ">50K", ">50K", "<=50K", ">50K"]
    with pytest.raises(ValueError, match=r"\(frame\['clicked'\] == '>50K'\)\.astype\(int\)"):
        validate_frame(_frame().assign(clicked=classes), FEATURES, "clicked")
    regression = validate_frame(
        _frame().assign(clicked=[0.5, 2, 0, 5, 1]), FEATURES, "clicked", binary_label=False
    )
    assert regression["clicked"].tolist() == [0.5, 2.0, 0.0, 5.0, 1.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_numeric_raise_and_impute(bad):
    frame = _frame().set_axis([100, 101, 102, 103, 104])
    frame.loc[102, "age"] = bad
    frame.loc[104, "age"] = bad
    with pytest.raises(ValueError, match=r"'age' has 2 .*row index 102.*nan_policy='impute'"):
        validate_frame(frame, FEATURES, "clicked")
    clean = validate_frame(frame, FEATURES, "clicked", nan_policy="impute")
    expected_mean = np.mean([31.0, 22.5, 19.0])
    assert clean["age"].tolist() == [31.0, 22.5, expected_mean, 19.0, expected_mean]
    assert np.isnan(frame.loc[102, "age"]) or np.isinf(frame.loc[102, "age"])  # input untouched


def test_bad_values_for_kind():
    with pytest.raises(ValueError, match="no finite values"):
        validate_frame(_frame().assign(age=np.nan), FEATURES, "clicked", nan_policy="impute")
    with pytest.raises(ValueError, match="'age' has non-numeric values such as \\['old'\\]"):
        validate_frame(_frame().assign(age=["old", 1, 2, 3, 4]), FEATURES, "clicked")
    with pytest.raises(ValueError, match="'country'.*holds lists.*multi_categorical"):
        validate_frame(_frame().assign(country=_frame()["tags"]), FEATURES, "clicked")
    with pytest.raises(ValueError, match="'user_id'.*non-integer"):
        validate_frame(_frame().assign(user_id=[1.5, 2, 3, 4, 5]), FEATURES, "clicked")
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        validate_frame(_frame(), FEATURES, "clicked", nan_policy="drop")


# ---------------------------------------------------------------- splitting


def test_random_split_is_seeded_partition():
    frame = pd.DataFrame({"x": range(100)})
    train, valid = split_frame(frame, 0.2, seed=3)
    assert len(train) == 80 and len(valid) == 20
    assert sorted(train["x"].tolist() + valid["x"].tolist()) == list(range(100))
    assert split_frame(frame, 0.2, seed=3)[1].index.tolist() == valid.index.tolist()
    assert split_frame(frame, 0.2, seed=4)[1].index.tolist() != valid.index.tolist()


def test_time_split_validates_on_latest_rows():
    frame = pd.DataFrame({"ts": np.random.default_rng(0).permutation(50), "x": range(50)})
    train, valid = split_frame(frame, 0.1, time_column="ts")
    assert sorted(valid["ts"]) == [45, 46, 47, 48, 49] and train["ts"].max() == 44
    with pytest.raises(MissingColumnError, match="'when'"):
        split_frame(frame, 0.1, time_column="when")
    with pytest.raises(ValueError, match="validation_fraction"):
        split_frame(frame, 1.0)


def test_time_split_parses_text_times_instead_of_sorting_the_text():
    # US dates sort by month as text: '12/04/1997' came after '01/05/1998'.
    days = pd.date_range("1997-11-01", periods=60, freq="D")
    order = np.random.default_rng(1).permutation(60)
    frame = pd.DataFrame({"when": days[order].strftime("%m/%d/%Y"), "x": order})
    _, valid = split_frame(frame, 0.1, time_column="when")
    assert sorted(valid["x"]) == list(range(54, 60))  # the six latest days
    numbers = pd.DataFrame({"ts": (order * 86400).astype(str), "x": order})  # epochs as text
    assert sorted(split_frame(numbers, 0.1, time_column="ts")[1]["x"]) == list(range(54, 60))
    bad = frame.assign(when=["soon"] * 60)
    with pytest.raises(ValueError, match=r"time_column 'when' holds text that is neither"):
        split_frame(bad, 0.1, time_column="when")


# ---------------------------------------------------------------- tf.data


def test_to_dataset_types_shapes_and_values():
    clean = validate_frame(_frame(), FEATURES, "clicked")
    dataset = to_dataset(clean, FEATURES, "clicked", batch_size=4)
    batches = list(dataset)
    assert [int(b[1].shape[0]) for b in batches] == [4, 1]  # drop_remainder=False
    inputs, labels = batches[0]
    assert set(inputs) == set(FEATURES.names)  # "extra" and the label are left out
    assert inputs["country"].dtype == tf.string and inputs["country"].shape == (4,)
    assert inputs["user_id"].dtype == tf.int64 and inputs["age"].dtype == tf.float32
    assert isinstance(inputs["tags"], tf.RaggedTensor) and inputs["tags"].dtype == tf.string
    assert inputs["tags"].to_list() == [[b"a", b"b"], [], [b"c"], [b"a", b"b", b"c"]]
    assert inputs["items"].dtype == tf.int64 and inputs["items"].to_list() == [[1, 2], [3], [], [1]]
    assert labels.dtype == tf.float32 and labels.numpy().tolist() == [1.0, 0.0, 0.0, 1.0]
    unlabeled = next(iter(to_dataset(clean, FEATURES, None, batch_size=5)))
    assert isinstance(unlabeled, dict) and unlabeled["age"].numpy().tolist() == [
        31.0,
        22.5,
        40.0,
        19.0,
        55.5,
    ]


def test_to_dataset_feeds_the_embedding_layer():
    clean = validate_frame(_frame(), FEATURES, "clicked")
    inputs, _ = next(iter(to_dataset(clean, FEATURES, "clicked", batch_size=5)))
    out = PrunedEmbedding(FEATURES)(inputs)
    assert out.shape == (5, 20) and np.isfinite(out.numpy()).all()
    direct = to_numpy_inputs(clean, FEATURES)
    assert direct["tags"].to_list() == inputs["tags"].to_list()


def test_shuffle_is_seeded_and_repeat_continues():
    frame = pd.DataFrame({"x": np.arange(64, dtype=float), "y": np.zeros(64)})
    feats = FeatureSet((FeatureSpec("x", "numeric", dtype="float32"),), label="y")

    def order(seed):
        return np.concatenate(
            [b["x"].numpy() for b in to_dataset(frame, feats, None, 16, shuffle=True, seed=seed)]
        )

    assert order(1).tolist() == order(1).tolist()
    assert order(1).tolist() != order(2).tolist()
    assert sorted(order(1).tolist()) == list(range(64))
    repeated = to_dataset(frame, feats, "y", 16, repeat=True).take(10)
    assert sum(1 for _ in repeated) == 10


def test_to_dataset_rejects_uncleaned_frames():
    with pytest.raises(ValueError, match="'country'.*validate_frame"):
        to_dataset(_frame().assign(country=["de", None, "fr", "de", "fr"]), FEATURES, "clicked", 2)
    with pytest.raises(ValueError, match="'age'.*NaN or infinite.*validate_frame"):
        to_numpy_inputs(_frame().assign(age=[1.0, np.nan, 2.0, 3.0, 4.0]), FEATURES)
    with pytest.raises(ValueError, match="batch_size"):
        to_dataset(_frame(), FEATURES, "clicked", 0)
    with pytest.raises(MissingColumnError, match="'age'"):
        to_numpy_inputs(_frame().drop(columns=["age"]), FEATURES)


def test_large_frame_with_ragged_columns():
    n = 200_000
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 4, n)
    flat = rng.integers(1, 4, int(lengths.sum()))
    items = np.split(flat, np.cumsum(lengths)[:-1])
    frame = pd.DataFrame(
        {
            "country": rng.choice(["de", "fr", "us"], n),
            "user_id": rng.integers(0, 1000, n),
            "age": rng.normal(30, 5, n),
            "tags": [["a"] * int(k) for k in lengths],
            "items": [a.tolist() for a in items],
            "clicked": rng.integers(0, 2, n),
        }
    )
    clean = validate_frame(frame, FEATURES, "clicked")
    inputs, labels = next(iter(to_dataset(clean, FEATURES, "clicked", batch_size=n)))
    assert labels.shape == (n,)
    assert inputs["items"].row_lengths().numpy().tolist() == lengths.tolist()
    assert inputs["items"].flat_values.numpy().tolist() == flat.tolist()
    assert int(inputs["tags"].flat_values.shape[0]) == int(lengths.sum())


def test_read_table_keeps_an_index_pandas_wrote_as_a_column(tmp_path):
    # It raised KeyError('__index_level_0__'): pandas metadata made it the index again.
    frame = pd.DataFrame({"user": ["a", "b", "c"], "clicked": [1, 0, 1]})
    frame.set_axis([7, 3, 5]).to_parquet(tmp_path / "unnamed.parquet")
    frame.set_index("user").to_parquet(tmp_path / "named.parquet")
    unnamed = read_table(str(tmp_path / "unnamed.parquet"), label="clicked")
    assert list(unnamed.columns) == ["user", "clicked", "__index_level_0__"]
    assert unnamed["__index_level_0__"].tolist() == [7, 3, 5]
    named = read_table(str(tmp_path / "named.parquet"), label="clicked")
    assert sorted(named.columns) == ["clicked", "user"]  # a named index is data
    assert isinstance(named.index, pd.RangeIndex)
