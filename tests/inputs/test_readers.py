"""FileStream: every row once, deterministic order, resumable by a batch count, shards
per worker, the same rows from TFRecord, Parquet and CSV, and errors that name the shard."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from recsel.inputs import FileStream, StreamOptions
from recsel.inputs.frame_dataset import to_dataset
from recsel.inputs.readers import READ_ROWS
from recsel.inputs.source import first_labels
from recsel.inputs.tabular import validate_frame
from recsel.spec.features import FeatureSet, FeatureSpec

ROWS_PER_SHARD = 300
SHARDS = 3


def _rows(start: int, stop: int) -> pd.DataFrame:
    i = np.arange(start, stop)
    return pd.DataFrame(
        {
            "user": [f"u{v % 7}" for v in i],
            "price": (i * 0.5).astype(np.float32),
            "tags": [list(range(v % 3)) for v in i],
            "clicked": (i % 2).astype(np.int64),
        }
    )


def _example(row, skip: tuple[str, ...] = ()) -> bytes:
    feature = {
        "user": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row.user.encode()])),
        "price": tf.train.Feature(float_list=tf.train.FloatList(value=[row.price])),
        "tags": tf.train.Feature(int64_list=tf.train.Int64List(value=list(row.tags))),
        "clicked": tf.train.Feature(int64_list=tf.train.Int64List(value=[row.clicked])),
    }
    for name in skip:
        feature.pop(name)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_tfrecord(path: str, frame: pd.DataFrame, gzip: bool = False, skip=()) -> None:
    with tf.io.TFRecordWriter(path, options="GZIP" if gzip else None) as writer:
        for row in frame.itertuples():
            writer.write(_example(row, skip))


FEATURES = FeatureSet(
    (
        FeatureSpec("user", "categorical", vocabulary=tuple(f"u{i}" for i in range(7))),
        FeatureSpec("price", "numeric", dtype="float32"),
        FeatureSpec("tags", "multi_categorical", dtype="int64", vocabulary=(0, 1), max_valency=2),
    ),
    label="clicked",
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("shards")
    for s in range(SHARDS):
        frame = _rows(s * ROWS_PER_SHARD, (s + 1) * ROWS_PER_SHARD)
        _write_tfrecord(str(root / f"train-{s:05d}-of-{SHARDS:05d}.tfrecord.gz"), frame, gzip=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, root / f"part-{s}.parquet")
        text = frame.assign(tags=frame.tags.map(lambda t: "|".join(map(str, t))))
        text.to_csv(root / f"part-{s}.csv", index=False)
        text.to_csv(root / f"part-{s}.csv.gz", index=False)  # pandas compresses by name
    return str(root)


def _prices(stream: FileStream, skip: int = 0) -> np.ndarray:
    batches = stream.dataset(skip_batches=skip)
    inputs = (b[0] if isinstance(b, tuple) else b for b in batches)
    return np.concatenate([b["price"].numpy() for b in inputs])


def test_tfrecord_stream_yields_every_row_once_in_model_forms(shards):
    stream = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, StreamOptions(64), "clicked")
    inputs, labels = next(iter(stream.dataset()))
    assert isinstance(inputs["tags"], tf.SparseTensor)
    assert inputs["user"].dtype == tf.string and inputs["user"].shape.rank == 1
    assert labels.dtype == tf.float32
    prices = _prices(stream)
    expected = _rows(0, SHARDS * ROWS_PER_SHARD).price.to_numpy()
    np.testing.assert_array_equal(np.sort(prices), np.sort(expected))


def test_order_is_a_function_of_the_seed_and_resumes_by_batch_count(shards):
    options = StreamOptions(50, shuffle_buffer=128, seed=3)
    stream = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, options, "clicked")
    first, again = _prices(stream), _prices(stream)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(_prices(stream, skip=5), first[5 * 50 :])
    other = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, StreamOptions(50, seed=4))
    assert not np.array_equal(_prices(other), first)
    assert not np.array_equal(first, np.sort(first))  # rows were shuffled at all


def test_workers_read_disjoint_shards_that_cover_the_data(shards):
    pattern = f"{shards}/train-*.tfrecord.gz"
    parts = [
        _prices(FileStream(pattern, FEATURES, StreamOptions(64, num_workers=2, worker_index=w)))
        for w in range(2)
    ]
    assert not set(parts[0]) & set(parts[1])
    assert len(parts[0]) + len(parts[1]) == SHARDS * ROWS_PER_SHARD
    with pytest.raises(ValueError, match="3 shard\\(s\\) for 4 workers"):
        FileStream(pattern, FEATURES, StreamOptions(64, num_workers=4, worker_index=0))


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv.gz"])
def test_parquet_and_csv_give_the_tfrecord_rows(shards, fmt):
    options = StreamOptions(64, shuffle_buffer=0, shuffle_files=False, cycle_length=1)
    stream = FileStream(f"{shards}/part-*.{fmt}", FEATURES, options, "clicked")
    reference = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, options, "clicked")
    pairs = zip(stream.dataset(), reference.dataset(), strict=True)
    for (got, got_label), (want, want_label) in pairs:
        assert isinstance(got["tags"], tf.RaggedTensor)
        np.testing.assert_array_equal(got["user"].numpy(), want["user"].numpy())
        np.testing.assert_allclose(got["price"].numpy(), want["price"].numpy())
        assert got["tags"].to_list() == tf.RaggedTensor.from_sparse(want["tags"]).to_list()
        np.testing.assert_array_equal(got_label.numpy(), want_label.numpy())


def test_one_shard_stream_matches_the_frame_pipeline_row_for_row(tmp_path):
    """Same rows, same order, same seed: the stream feeds exactly the frame's batches."""
    frame = _rows(0, 500)
    _write_tfrecord(str(tmp_path / "all.tfrecord"), frame)
    options = StreamOptions(64, shuffle_buffer=len(frame), seed=7, shuffle_files=False)
    stream = FileStream(str(tmp_path / "all.tfrecord"), FEATURES, options, "clicked")
    framed = to_dataset(frame, FEATURES, "clicked", 64, shuffle=True, seed=7)
    for (got, got_label), (want, want_label) in zip(stream.dataset(), framed, strict=True):
        np.testing.assert_array_equal(got["price"].numpy(), want["price"].numpy())
        np.testing.assert_array_equal(got["user"].numpy(), want["user"].numpy())
        assert tf.RaggedTensor.from_sparse(got["tags"]).to_list() == want["tags"].to_list()
        np.testing.assert_array_equal(got_label.numpy(), want_label.numpy())


# ---------------------------------------------------------------------- bad input
def test_a_pattern_that_matches_no_file_names_the_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-\\*.tfrecord: no files match"):
        FileStream(str(tmp_path / "nothing-*.tfrecord"), FEATURES, StreamOptions(8), "clicked")


def test_a_corrupt_shard_is_named(tmp_path):
    _write_tfrecord(str(tmp_path / "a.tfrecord"), _rows(0, 100))
    good = (tmp_path / "a.tfrecord").read_bytes()
    (tmp_path / "b.tfrecord").write_bytes(good[: len(good) // 2] + b"\x00garbage" * 8)
    stream = FileStream(str(tmp_path / "*.tfrecord"), FEATURES, StreamOptions(16), "clicked")
    with pytest.raises(tf.errors.OpError) as raised:
        for _ in stream.dataset():
            pass
    explained = stream.explain_error(raised.value)
    assert isinstance(explained, ValueError)
    assert "b.tfrecord: corrupt TFRecord shard" in str(explained)


def test_a_feature_missing_from_some_shards_names_the_shard(tmp_path):
    _write_tfrecord(str(tmp_path / "a.tfrecord"), _rows(0, 50))
    _write_tfrecord(str(tmp_path / "b.tfrecord"), _rows(50, 100), skip=("user",))
    stream = FileStream(str(tmp_path / "*.tfrecord"), FEATURES, StreamOptions(16), "clicked")
    with pytest.raises(tf.errors.OpError) as raised:
        for _ in stream.dataset():
            pass
    message = str(stream.explain_error(raised.value))
    assert "b.tfrecord" in message and "user" in message


def test_a_parquet_shard_missing_a_column_is_named(tmp_path):
    pq.write_table(pa.Table.from_pandas(_rows(0, 40), preserve_index=False), tmp_path / "a.parquet")
    partial = _rows(40, 80).drop(columns=["price"])
    pq.write_table(pa.Table.from_pandas(partial, preserve_index=False), tmp_path / "b.parquet")
    stream = FileStream(str(tmp_path / "*.parquet"), FEATURES, StreamOptions(16), "clicked")
    with pytest.raises(Exception) as raised:
        for _ in stream.dataset():
            pass
    message = str(stream.explain_error(raised.value))
    assert "b.parquet" in message and "price" in message


def test_a_missing_category_in_a_parquet_shard_reads_as_in_a_frame(tmp_path):
    frame = _rows(0, 60)
    frame["user"] = frame.user.where(frame.index % 4 != 1, None)  # 15 null cells
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "a.parquet")
    options = StreamOptions(20, shuffle_buffer=0, shuffle_files=False)
    stream = FileStream(str(tmp_path / "a.parquet"), FEATURES, options, "clicked")
    users = np.concatenate([inputs["user"].numpy() for inputs, _ in stream.dataset()])
    cleaned = validate_frame(frame, FEATURES, "clicked")  # the frame path's missing category
    assert (cleaned.user == "").sum() == 15
    np.testing.assert_array_equal(users, cleaned.user.str.encode("utf-8").to_numpy())
    # A missing number has no such reading: the shard and the column are named.
    frame["price"] = frame.price.where(frame.index != 7, None)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "a.parquet")
    with pytest.raises(Exception) as raised:
        for _ in stream.dataset():
            pass
    message = str(stream.explain_error(raised.value))
    assert "a.parquet: column 'price' has 1 missing value(s)" in message


def test_a_spec_that_does_not_match_the_data_names_feature_and_file(shards):
    wrong = FeatureSet(
        (FeatureSpec("user", "categorical", dtype="int64", vocabulary=(1, 2)),), label="clicked"
    )
    with pytest.raises(ValueError, match="feature 'user' is stored as bytes_list.*statistics"):
        FileStream(f"{shards}/train-*.tfrecord.gz", wrong, StreamOptions(8), "clicked")
    absent = FeatureSet((FeatureSpec("country", "categorical", vocabulary=("de",)),), "clicked")
    with pytest.raises(KeyError, match="'country'.*not found"):
        FileStream(f"{shards}/part-*.parquet", absent, StreamOptions(8), "clicked")


def test_stream_options_reject_nonsense():
    with pytest.raises(ValueError, match="batch_size"):
        StreamOptions(0)
    with pytest.raises(ValueError, match="worker_index 2"):
        StreamOptions(8, num_workers=2, worker_index=2)


def test_python_cells_decodes_strings_at_any_rank():
    # TFXIO gives scalar string features as [batch, 1]; bytes left inside the rows made
    # every sampled value miss its vocabulary (the budget then skipped 24 of 34 demo
    # columns as all-OOV).
    from recsel.inputs.readers import python_cells

    assert python_cells(tf.constant([[b"a"], [b"b"]])) == [["a"], ["b"]]
    assert python_cells(tf.constant([b"a", b"b"])) == ["a", "b"]
    assert python_cells(tf.ragged.constant([[b"a"], []])) == [["a"], []]
    assert python_cells(tf.constant([[1], [2]], tf.int64)) == [[1], [2]]


_COUNT_OPEN_SHARDS = """
import sys
import numpy as np
from recsel.inputs import FileStream, StreamOptions
from recsel.spec.features import FeatureSet

open_now, most = [0], [0]
read = FileStream.arrow_batches


def counted(self, path, columns=None):
    open_now[0] += 1
    most[0] = max(most[0], open_now[0])
    try:
        yield from read(self, path, columns)
    finally:
        open_now[0] -= 1


FileStream.arrow_batches = counted
features = FeatureSet.from_json(sys.argv[2])
options = StreamOptions(32, shuffle_buffer=50, seed=3, cycle_length=2)
stream = FileStream(sys.argv[1] + "/*.parquet", features, options, "clicked")
rows = sum(len(labels) for _, labels in stream.dataset())
print(most[0], rows)
"""


def test_parquet_keeps_only_cycle_length_shards_open_in_the_tfrecord_order(tmp_path):
    """A parallel interleave also opened shards ahead of ``cycle_length`` (each holding
    its reader and a decoded batch: +350 MiB at 16 shards of 250k rows); the sequential
    one must not, and must give the rows in the order of the (parallel) TFRecord one."""
    rows = 2 * READ_ROWS + 500  # three record batches: a shard stays open a while
    for s in range(6):
        frame = _rows(s * rows, (s + 1) * rows)
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), tmp_path / f"p{s}.parquet"
        )
        _write_tfrecord(str(tmp_path / f"p{s}.tfrecord"), frame)
    options = StreamOptions(32, shuffle_buffer=50, seed=3, cycle_length=2)
    parquet = FileStream(str(tmp_path / "*.parquet"), FEATURES, options, "clicked")
    tfrecord = FileStream(str(tmp_path / "*.tfrecord"), FEATURES, options, "clicked")
    got = _prices(parquet)
    assert sorted(got) == sorted(np.arange(6 * rows) * 0.5)
    np.testing.assert_array_equal(got, _prices(tfrecord))
    # Counted in a fresh process without the suite's TF_DETERMINISTIC_OPS, under which
    # tf.data opens no shard ahead and a parallel interleave would pass too.
    FEATURES.to_json(str(tmp_path / "features.json"))
    env = {k: v for k, v in os.environ.items() if k != "TF_DETERMINISTIC_OPS"}
    script = [
        sys.executable,
        "-c",
        _COUNT_OPEN_SHARDS,
        str(tmp_path),
        str(tmp_path / "features.json"),
    ]
    out = subprocess.run(script, env=env, capture_output=True, text=True, check=True, timeout=300)
    most, seen = map(int, out.stdout.split()[-2:])
    assert (most, seen) == (2, 6 * rows)


@pytest.mark.parametrize("pattern", ["train-*.tfrecord.gz", "part-*.parquet"])
def test_first_labels_are_the_sample_frames_labels_without_the_frame(shards, pattern):
    """The base rate reads only labels; they must be the rows sample_frame would give."""
    stream = FileStream(f"{shards}/{pattern}", FEATURES, StreamOptions(64, seed=5), "clicked")
    for rows in (250, 5000):  # within the first shard's interleave, and more than all rows
        labels = first_labels(stream, rows)
        want = stream.sample_frame(rows)["clicked"].to_numpy(np.float64)
        assert labels.dtype == np.float64 and len(labels) == min(rows, SHARDS * ROWS_PER_SHARD)
        np.testing.assert_array_equal(labels, want)
    unlabelled = FileStream(f"{shards}/{pattern}", FEATURES, StreamOptions(64))
    with pytest.raises(ValueError, match="no label"):
        first_labels(unlabelled, 10)


def test_autotune_is_off_by_default_and_the_order_does_not_depend_on_it(shards):
    # Dropping an iterator joins tf.data's autotuning thread, which may first sleep out
    # its optimisation period (select() waited 9-33 s to drop its training stream).
    pattern = f"{shards}/train-*.tfrecord.gz"
    plain = FileStream(pattern, FEATURES, StreamOptions(50, shuffle_buffer=128, seed=3))
    tuned = FileStream(
        pattern, FEATURES, StreamOptions(50, shuffle_buffer=128, seed=3, autotune=True)
    )
    assert plain.dataset().options().autotune.enabled is False
    assert tuned.dataset().options().autotune.enabled is True
    np.testing.assert_array_equal(_prices(plain), _prices(tuned))


@pytest.mark.parametrize("pattern", ["train-*.tfrecord.gz", "part-*.parquet", "part-*.csv"])
def test_a_read_of_some_columns_gives_those_columns_of_the_same_rows(shards, pattern):
    """Evaluation parses only the features a pruned model reads: the rows, their order and
    their values must be those of a full read."""
    stream = FileStream(f"{shards}/{pattern}", FEATURES, StreamOptions(64, seed=5), "clicked")
    full = list(stream.dataset(shuffle=True))
    narrow = list(stream.dataset(shuffle=True, columns=["tags"]))
    assert len(narrow) == len(full)
    for (inputs, labels), (kept, kept_labels) in zip(full, narrow):
        assert set(kept) == {"tags"}
        np.testing.assert_array_equal(kept_labels.numpy(), labels.numpy())
        want = (
            tf.RaggedTensor.from_sparse(inputs["tags"])
            if isinstance(inputs["tags"], tf.SparseTensor)
            else inputs["tags"]
        )
        got = kept["tags"]
        got = tf.RaggedTensor.from_sparse(got) if isinstance(got, tf.SparseTensor) else got
        assert got.to_list() == want.to_list()
    with pytest.raises(KeyError, match="no_such"):
        stream.dataset(columns=["no_such"])


def test_remote_shards_read_in_parallel_in_the_local_order(shards):
    """Local shards are interleaved sequentially (the parallel interleave cost more CPU
    than it saved), remote ones in parallel; the rows' order must not depend on which."""
    options = StreamOptions(50, shuffle_buffer=128, seed=3, cycle_length=2)
    local = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, options, "clicked")
    remote = FileStream(f"{shards}/train-*.tfrecord.gz", FEATURES, options, "clicked")
    remote._remote = True  # as for gs:// paths, which this test cannot reach
    assert not local._remote
    np.testing.assert_array_equal(_prices(local), _prices(remote))


def test_parquet_category_columns_and_one_value_lists_read_as_their_values(tmp_path):
    """pandas' category dtype (an Arrow dictionary) reads as its values; a multi-valent
    feature stored as a Parquet scalar column (a feature absent from some rows) holds one
    value per row, never split at the CSV list separator."""
    frame = pd.DataFrame({
        "user": pd.Categorical(["u1", "u2", "u1", "u3"]),
        "coupon": ["a|b", None, "c", "a|b"],
        "clicked": [1, 0, 1, 0],
    })  # fmt: skip
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    features = FeatureSet(
        (
            FeatureSpec("user", "categorical", vocabulary=("u1", "u2", "u3")),
            FeatureSpec("coupon", "multi_categorical", vocabulary=("a|b", "c"), max_valency=1),
        ),
        label="clicked",
    )
    options = StreamOptions(4, shuffle_buffer=0, shuffle_files=False)
    stream = FileStream(str(tmp_path / "a.parquet"), features, options, "clicked")
    inputs, _ = next(iter(stream.dataset()))
    assert inputs["user"].numpy().tolist() == [b"u1", b"u2", b"u1", b"u3"]
    assert inputs["coupon"].to_list() == [[b"a|b"], [], [b"c"], [b"a|b"]]
