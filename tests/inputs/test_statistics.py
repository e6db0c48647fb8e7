"""The streaming statistics pass: TFDV on Beam over shards, a frequency-thresholded
vocabulary, the row count, and nothing published when the pass fails."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.inputs.statistics import (
    compute_statistics,
    feature_set_from_statistics,
    num_rows,
    stats_options,
)


def _example(i: int) -> bytes:
    # "u" has 5 common values (>= 40 rows each) and 20 values seen once.
    user = f"u{i % 5}" if i % 10 else f"rare{i}"
    feature = {
        "user": tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
        "price": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i % 17)])),
        "tags": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(i % 3)))),
        "clicked": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("stats_shards")
    for s in range(2):
        with tf.io.TFRecordWriter(str(root / f"train-{s}.tfrecord.gz"), options="GZIP") as w:
            for i in range(s * 100, (s + 1) * 100):
                w.write(_example(i))
    return str(root)


def test_one_pass_counts_rows_and_cuts_rare_values(shards, tmp_path):
    multi_process = PipelineOptions(
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    output = str(tmp_path / "stats" / "train.pb")
    stats = compute_statistics(
        f"{shards}/train-*", output, frequency_threshold=2, pipeline_options=multi_process
    )
    assert os.path.exists(output)
    assert num_rows(stats) == 200
    features = feature_set_from_statistics(stats, "clicked")
    assert sorted(features.names) == ["price", "tags", "user"]
    assert features["user"].vocabulary is not None
    assert sorted(features["user"].vocabulary) == [f"u{i}" for i in range(5)]
    assert features["tags"].kind == "multi_categorical" and features["tags"].max_valency == 2
    assert features["price"].kind == "numeric"
    assert not [n for n in os.listdir(tmp_path / "stats") if n.startswith(".tmp")]


def test_a_failed_pass_publishes_nothing(tmp_path):
    (tmp_path / "bad.tfrecord").write_bytes(b"\x00not a tfrecord file at all" * 10)
    output = tmp_path / "out" / "stats.pb"
    with pytest.raises(ValueError, match="bad.tfrecord"):
        compute_statistics(str(tmp_path / "bad.tfrecord"), str(output))
    assert not output.exists()
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".tmp")]


def test_options_keep_vocabulary_sized_top_values():
    options = stats_options(frequency_threshold=5, max_vocab_size=1000)
    assert (options.num_top_values, options.frequency_threshold) == (1000, 5)
    with pytest.raises(ValueError, match="frequency_threshold"):
        stats_options(frequency_threshold=0)


def test_parquet_scalar_columns_are_described(tmp_path):
    """TFDV takes list columns only: Parquet scalars are wrapped, a missing one stays missing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsel.inputs.statistics import scalars_as_lists

    rows = range(200)
    table = pa.table({
        "user": [None if i % 50 == 0 else f"u{i % 5}" for i in rows],
        "price": [float(i % 17) for i in rows],
        "tags": [list(range(i % 3)) for i in rows],
        "clicked": [i % 2 for i in rows],
    })  # fmt: skip
    wrapped = scalars_as_lists(table.to_batches()[0])
    assert wrapped.column(0).to_pylist()[:2] == [None, ["u1"]]
    assert wrapped.column(2).to_pylist() == table.column("tags").to_pylist()  # lists unchanged
    path = str(tmp_path / "train.parquet")
    pq.write_table(table, path)
    stats = compute_statistics(path, str(tmp_path / "stats.pb"), frequency_threshold=2)
    assert num_rows(stats) == 200
    features = feature_set_from_statistics(stats, "clicked")
    assert sorted(features["user"].vocabulary) == [f"u{i}" for i in range(5)]
    assert features["price"].kind == "numeric"
    assert features["tags"].kind == "multi_categorical" and features["tags"].max_valency == 2


def test_integer_ids_and_optional_features_as_a_frame_would_have_them(tmp_path):
    """An int64 ``item_id`` is a category with a thresholded vocabulary (as a frame's
    ID-named integers are), and ``coupon``, absent from some records (the first one
    included), is a list of at most one value, which a record without it parses to."""

    def record(i: int) -> bytes:
        feature = {
            "item_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 6 or 1000 + i])),
            "clicked": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
        }
        if i % 3:
            coupon = tf.train.BytesList(value=[f"c{i % 4}".encode()])
            feature["coupon"] = tf.train.Feature(bytes_list=coupon)
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    with tf.io.TFRecordWriter(str(tmp_path / "part-0.tfrecord")) as writer:
        for i in range(240):
            writer.write(record(i))
    stats = compute_statistics(
        str(tmp_path / "part-0.tfrecord"), str(tmp_path / "stats.pb"), frequency_threshold=2
    )
    features = feature_set_from_statistics(stats, "clicked")
    item = features["item_id"]
    assert (item.kind, item.dtype, item.hash_buckets) == ("categorical", "int64", None)
    assert sorted(item.vocabulary) == [1, 2, 3, 4, 5]  # the 40 once-seen 1000+i are OOV
    coupon = features["coupon"]
    assert (coupon.kind, coupon.max_valency) == ("multi_categorical", 1)
    from recsel.inputs import FileStream, StreamOptions

    stream = FileStream(
        str(tmp_path / "part-0.tfrecord"),
        features,
        StreamOptions(8, shuffle_buffer=0, shuffle_files=False),
        "clicked",
    )
    inputs, _ = next(iter(stream.dataset()))
    rows = tf.RaggedTensor.from_sparse(inputs["coupon"]).to_list()
    assert rows[:4] == [[], [b"c1"], [b"c2"], []]


def test_parquet_booleans_timestamps_and_excluded_columns_in_the_pass(tmp_path):
    """TFDV has no boolean, dictionary or timestamp type: a True/False label is described
    as 0/1, a pandas category column by its values, and a timestamp column must be excluded (as for a frame), and then is left out
    of the pass (it failed the whole pass deep in Beam, excluded or not)."""
    import pandas as pd

    rows = range(120)
    frame = pd.DataFrame({
        "user": pd.Categorical([f"u{i % 4}" for i in rows]),  # an Arrow dictionary
        "seen_at": pd.to_datetime([1_700_000_000 + 60 * i for i in rows], unit="s"),
        "when": pd.to_datetime([1_700_000_000 + i for i in rows], unit="s"),
        "clicked": [bool(i % 3) for i in rows],
    })  # fmt: skip
    path = str(tmp_path / "train.parquet")
    frame.to_parquet(path, index=False)
    with pytest.raises(ValueError, match=r"column 'seen_at' has unsupported type timestamp"):
        compute_statistics(path, str(tmp_path / "stats.pb"), exclude=["when"])
    stats = compute_statistics(path, str(tmp_path / "stats.pb"), exclude=["when", "seen_at"])
    described = {f.path.step[0] for f in stats.datasets[0].features}
    assert described == {"user", "clicked"}
    features = feature_set_from_statistics(stats, "clicked")
    assert features.names == ["user"] and features["user"].vocabulary is not None
