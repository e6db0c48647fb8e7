"""Parquet on Arrow buffers (``recsel.inputs.arrow_table``) equals the frame path exactly.

Specs, batches, sample rows and error messages are compared with ``read_table`` ->
``split_frame`` -> ``infer_feature_set`` -> ``validate_frame`` -> ``to_dataset`` on the same
file, including the column types that fall back to the frame path's cleaners.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from recsel.inputs import frame_dataset, splits, tabular
from recsel.inputs.arrow_table import ArrowSource, prepare_table, read_arrow_table
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.table_io import MissingColumnError, arrow_to_frame
from recsel.spec.features import FeatureSet, FeatureSpec

ROWS = 600


def _mixed_table(seed: int = 0) -> pa.Table:
    """Every column type the two paths must agree on, with missing values and ties."""
    rng = np.random.default_rng(seed)
    n = ROWS

    def maybe(values, share=0.1):
        return [None if rng.random() < share else v for v in values]

    tags = [
        None if rng.random() < 0.05 else [f"t{j}" if rng.random() > 0.05 else None
                                          for j in rng.integers(0, 12, rng.integers(0, 4))]
        for _ in range(n)
    ]  # fmt: skip
    return pa.table(
        {
            "city": pa.array(maybe([f"c{i}" for i in rng.integers(0, 30, n)]), pa.string()),
            "big": pa.array(maybe([f"u{i}" for i in rng.integers(0, 400, n)]), pa.large_string()),
            "user_id": pa.array(rng.integers(0, 50, n), pa.int32()),
            "shop_id": pa.array(maybe(rng.integers(0, 20, n).tolist()), pa.int64()),  # nulls
            "count": pa.array(rng.integers(0, 9, n), pa.int64()),
            "price": pa.array(maybe(rng.normal(size=n).tolist()), pa.float64()),
            "ratio": pa.array(rng.random(n), pa.float32()),
            "flag": pa.array(rng.random(n) < 0.3),  # bool: the frame path's cleaner
            "rare": pa.array([f"r{i}" for i in range(n)]),  # no value reaches min_count
            "tags": pa.array(tags, pa.list_(pa.string())),
            "items": pa.array(
                [rng.integers(0, 15, rng.integers(1, 5)).tolist() for _ in range(n)],
                pa.large_list(pa.int64()),
            ),
            "empty_lists": pa.array([[] for _ in range(n)], pa.list_(pa.string())),
            "label": pa.array((rng.random(n) < 0.4).astype(np.int64)),
        }
    )


def _specs_both_ways(table: pa.Table, **kwargs):
    with warnings.catch_warnings(record=True) as arrow_warned:
        warnings.simplefilter("always")
        on_arrow = infer_feature_set(table, "label", **kwargs)
    with warnings.catch_warnings(record=True) as frame_warned:
        warnings.simplefilter("always")
        on_frame = infer_feature_set(arrow_to_frame(table), "label", **kwargs)
    assert [str(w.message) for w in arrow_warned] == [str(w.message) for w in frame_warned]
    return on_arrow, on_frame


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"min_count": 1, "max_vocab_size": 100, "categorical": ["count"]},
        {"numeric": ["user_id"], "numeric_transform": "normalize", "exclude": ["flag"]},
    ],
)
def test_inference_on_arrow_equals_inference_on_the_frame(kwargs):
    table = _mixed_table().drop(["empty_lists"])  # all-empty lists: no values to count
    on_arrow, on_frame = _specs_both_ways(table, **kwargs)
    assert on_arrow == on_frame
    kinds = {s.name: (s.kind, s.dtype) for s in on_arrow}
    assert kinds["tags"] == ("multi_categorical", "string")
    assert kinds["items"] == ("multi_categorical", "int64")


def _assert_batches_equal(left: tf.data.Dataset, right: tf.data.Dataset, batches: int) -> None:
    for (xa, ya), (xb, yb) in zip(left.take(batches), right.take(batches), strict=True):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        assert list(xa) == list(xb)
        for name in xa:
            a, b = xa[name], xb[name]
            assert type(a) is type(b) and a.dtype == b.dtype, name
            if isinstance(a, tf.RaggedTensor):
                assert a.row_splits.dtype == b.row_splits.dtype, name
                np.testing.assert_array_equal(a.row_splits.numpy(), b.row_splits.numpy())
                a, b = a.values, b.values
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_arrow_source_batches_equal_to_dataset_batches():
    table = _mixed_table(1)
    features = infer_feature_set(table.drop(["empty_lists"]), "label", min_count=1)
    # An int64 spec for a string column of digits, scalars in a list spec: frame cleaners.
    extra = FeatureSpec("empty_lists", "multi_categorical", dtype="string",
                                vocabulary=("x",))  # fmt: skip
    features = FeatureSet((*features.features, extra), "label")
    source = ArrowSource.from_table(table, features, "label", nan_policy="impute")
    frame = tabular.validate_frame(arrow_to_frame(table), features, "label", nan_policy="impute")
    for shuffle, seed, skip in ((True, 3, 0), (False, 0, 2), (True, 0, 1)):
        _assert_batches_equal(
            source.dataset(64, shuffle=shuffle, seed=seed, num_epochs=None, skip_batches=skip),
            frame_dataset.to_dataset(frame, features, "label", 64, shuffle=shuffle, seed=seed,
                               repeat=True, skip_batches=skip),
            batches=12,
        )  # fmt: skip
    # Strings are held as int32 codes into their distinct values, not as a string per row.
    assert source._columns["city"].values.dtype == tf.int32
    assert source._columns["tags"].values.dtype == tf.int32
    sample = source.sample_frame(5)
    assert sample["tags"].tolist() == frame["tags"].head(5).tolist()
    assert sample["city"].tolist() == frame["city"].head(5).tolist()
    np.testing.assert_allclose(sample["price"], frame["price"].head(5), rtol=1e-6)


def test_prepare_table_equals_the_frame_path(tmp_path):
    path = str(tmp_path / "train.parquet")
    pq.write_table(_mixed_table(2).drop(["empty_lists"]), path)
    inputs = prepare_table(path, "label", validation_fraction=0.25, seed=4, min_count=3,
                           nan_policy="impute")  # fmt: skip
    frame = tabular.read_table(path, label="label")
    train, valid = splits.split_frame(frame, 0.25, seed=4)
    features = infer_feature_set(train, "label", min_count=3)
    assert inputs.features == features
    train = tabular.validate_frame(train, features, "label", nan_policy="impute")
    valid = tabular.validate_frame(valid, features, "label", nan_policy="impute")
    assert (inputs.train.num_rows, inputs.valid.num_rows) == (len(train), len(valid))
    _assert_batches_equal(
        inputs.train.dataset(50, shuffle=True, seed=7, num_epochs=None),
        frame_dataset.to_dataset(train, features, "label", 50, shuffle=True, seed=7, repeat=True),
        batches=20,
    )
    _assert_batches_equal(
        inputs.valid.dataset(40), frame_dataset.to_dataset(valid, features, "label", 40), batches=4
    )


@pytest.mark.parametrize("text_dates", [False, True])
def test_time_split_and_separate_validation_file(tmp_path, text_dates):
    table = _mixed_table(3).drop(["empty_lists"])
    order = np.random.default_rng(0).permutation(ROWS)
    # US dates as text sort by month: both paths parse them, as the frame path does.
    days = pd.date_range("1997-01-01", periods=ROWS, freq="D")[order].strftime("%m/%d/%Y")
    table = table.append_column("ts", pa.array(list(days) if text_dates else order))
    path, other = str(tmp_path / "train.parquet"), str(tmp_path / "valid.parquet")
    pq.write_table(table, path)
    pq.write_table(table.slice(0, 100), other)
    by_time = prepare_table(path, "label", time_column="ts", nan_policy="impute")
    assert "ts" not in by_time.features.names
    train, valid = splits.split_frame(tabular.read_table(path), 0.2, time_column="ts")
    assert pd.to_datetime(valid["ts"]).min() > pd.to_datetime(train["ts"]).max()  # the latest
    labels = np.concatenate([y.numpy() for _, y in by_time.valid.dataset(1000)])
    np.testing.assert_array_equal(labels, valid["label"].to_numpy(np.float32))
    separate = prepare_table(path, "label", validation_data=other, nan_policy="impute")
    assert (separate.train.num_rows, separate.valid.num_rows) == (ROWS, 100)


def test_errors_are_the_frame_paths(tmp_path):
    table = _mixed_table(4).drop(["empty_lists"])
    features = infer_feature_set(table, "label")
    frame = arrow_to_frame(table)
    # NaN under nan_policy="raise": the same message, naming the same row index.
    with pytest.raises(ValueError) as frame_error:
        tabular.validate_frame(frame, features, "label", source="f.parquet")
    with pytest.raises(ValueError) as arrow_error:
        ArrowSource.from_table(table, features, "label", source="f.parquet")
    assert str(arrow_error.value) == str(frame_error.value)
    assert "'price'" in str(arrow_error.value)
    with pytest.raises(MissingColumnError, match="'city'"):
        ArrowSource.from_table(table.drop(["city"]), features, "label", nan_policy="impute")
    ternary = table.set_column(
        table.column_names.index("label"), "label", pa.array(np.arange(ROWS) % 3)
    )
    with pytest.raises(ValueError, match="must be binary"):
        ArrowSource.from_table(ternary, features, "label", nan_policy="impute")
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": [1], "label": [0]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="reads Parquet"):
        read_arrow_table(str(csv))
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    with pytest.raises(MissingColumnError, match="'clicked' not found"):
        read_arrow_table(str(path), label="clicked")
