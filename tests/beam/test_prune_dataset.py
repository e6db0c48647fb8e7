"""The dataset pruning Beam job: 200k-row TFRecord and Parquet round trips, and bad input.

The 200k-row tests run the DirectRunner in multi_processing mode with 2 workers (slow); the
bad-input tests use small files and, where a pipeline must run, the in-memory DirectRunner.
"""

import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.prune_dataset_job import main as prune_main
from recsel.beam.prune_dataset import SUCCESS_FILE, PruneJob, plan_prune, run_prune
from recsel.data.shards import write_shards
from recsel.data.synthetic import make_synthetic
from recsel.inputs.tabular import MissingColumnError
from recsel.spec.result import RoundRecord, SelectionResult

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
IN_MEMORY = PipelineOptions(["--direct_running_mode=in_memory"])
BIG_ROWS = 200_000


def _write_selection(path, label, candidates, selected):
    dims = {s: 8 for s in selected}
    SelectionResult(
        label=label,
        candidates=list(candidates),
        selected=list(selected),
        dims=dims,
        full_dims={c: 16 for c in candidates},
        selection_weights={s: 0.5 for s in selected},
        final_weights={},
        rounds=[RoundRecord(0, list(selected), dims, 0.8, 0.5)],
        metrics={"auc": 0.8, "log_loss": 0.5},
        trajectory={"steps": [], "weights": {}},
    ).to_json(str(path))
    return str(path)


def _data(n_rows, seed=0):
    data = make_synthetic(
        n_rows=n_rows, n_informative=4, n_duplicates=2, n_noise=4, n_traps=1, seed=seed
    )
    frame = data.frame
    frame["row_id"] = np.random.default_rng(seed).permutation(n_rows).astype(np.int64)
    return data, frame


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """200k rows as 4 GZIP TFRecord shards and 4 Parquet shards, plus a selection of 3."""
    root = tmp_path_factory.mktemp("big")
    data, frame = _data(BIG_ROWS)
    selected = data.informative[:3]  # a string, a float and a list-of-strings feature
    return {
        "frame": frame,
        "selected": selected,
        "tfrecord": write_shards(frame, str(root / "tfrecord"), "tfrecord", compressed=True),
        "parquet": write_shards(frame, str(root / "parquet"), "parquet"),
        "selection": _write_selection(
            root / "selection.json", data.label, data.feature_columns(), selected
        ),
    }


def _output_records(directory):
    files = sorted(f for f in os.listdir(directory) if f.startswith("part-"))
    assert files and all(f.endswith(".tfrecord.gz") for f in files), files
    for name in files:
        path = os.path.join(directory, name)
        dataset = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(1024)
        for batch in dataset.as_numpy_iterator():  # per-record eager iteration is ~15x slower
            for record in batch:
                yield tf.train.Example.FromString(record)


def _feature_values(feature):
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value)
    return [v.decode() for v in values] if kind == "bytes_list" else values


@pytest.mark.slow
def test_tfrecord_200k_rows_keep_exactly_the_kept_features(big, tmp_path):
    out = tmp_path / "pruned"
    code = prune_main(
        ["--input", os.path.dirname(big["tfrecord"][0]), "--selection", big["selection"],
         "--output-dir", str(out), "--keep-columns", "row_id", *MULTI]
    )  # fmt: skip
    assert code == 0
    manifest = (out / SUCCESS_FILE).read_text()
    kept = {*big["selected"], "label", "row_id"}
    frame = big["frame"].set_index("row_id")
    rng = np.random.default_rng(0)
    sample = set(rng.choice(BIG_ROWS, size=300, replace=False).tolist())
    rows, checked = 0, 0
    for example in _output_records(out):
        features = example.features.feature
        assert set(features) == kept
        rows += 1
        row_id = features["row_id"].int64_list.value[0]
        if row_id in sample:
            checked += 1
            for name in kept - {"row_id"}:
                expected = frame.at[row_id, name]
                expected = list(expected) if isinstance(expected, list) else [expected]
                assert _feature_values(features[name]) == expected, (row_id, name)
    assert rows == BIG_ROWS and checked == len(sample)
    assert f'"records_in": {BIG_ROWS}' in manifest and f'"records_out": {BIG_ROWS}' in manifest


@pytest.mark.slow
def test_parquet_200k_rows_same_schema_rows_and_values(big, tmp_path):
    out = tmp_path / "pruned"
    job = PruneJob(
        os.path.dirname(big["parquet"][0]), big["selection"], str(out), keep_columns=("row_id",)
    )
    manifest = run_prune(job, PipelineOptions(MULTI))
    # The counters come from the pipeline result's metrics().query(...).
    assert manifest["counters"]["records_in"] == manifest["counters"]["records_out"] == BIG_ROWS
    files = sorted(str(p) for p in out.glob("part-*.parquet"))
    assert files and (out / SUCCESS_FILE).exists()
    table = pa.concat_tables([pq.read_table(f) for f in files])
    source = pq.read_schema(big["parquet"][0])
    kept = [n for n in source.names if n in {*big["selected"], "label", "row_id"}]
    assert table.column_names == kept  # exactly the kept columns, in input order
    assert all(table.schema.field(n).type == source.field(n).type for n in kept)
    assert table.num_rows == BIG_ROWS
    got = table.to_pandas().set_index("row_id").sort_index()
    want = big["frame"][kept].set_index("row_id").sort_index()
    rows = np.random.default_rng(1).choice(BIG_ROWS, size=2000, replace=False)
    for name in got.columns:
        if pa.types.is_list(table.schema.field(name).type):  # compare a sample of list cells
            for r in rows:
                assert list(got[name].iat[r]) == list(want[name].iat[r]), (r, name)
        else:
            np.testing.assert_array_equal(got[name].to_numpy(), want[name].to_numpy())


# --------------------------------------------------------------------------- bad input
@pytest.fixture()
def small(tmp_path):
    data, frame = _data(1200, seed=3)
    selected = data.informative[:2]
    return {
        "data": data,
        "frame": frame,
        "selected": selected,
        "tfrecord": write_shards(frame, str(tmp_path / "tfrecord"), "tfrecord", num_shards=2),
        "parquet": write_shards(frame, str(tmp_path / "parquet"), "parquet", num_shards=2),
        "selection": _write_selection(
            tmp_path / "selection.json", data.label, data.feature_columns(), selected
        ),
        "bad_selection": _write_selection(
            tmp_path / "bad.json", data.label, [*data.feature_columns(), "ghost"], ["ghost"]
        ),
    }


def _nothing_written(tmp_path, name="out"):
    return not any(p.name.startswith(name) for p in tmp_path.iterdir())


def test_missing_input_path_is_a_clear_error(small, tmp_path):
    job = PruneJob(str(tmp_path / "nope"), small["selection"], str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="nope: no such file or directory"):
        run_prune(job, IN_MEMORY)
    assert _nothing_written(tmp_path)


def test_missing_selection_and_csv_input_are_clear_errors(small, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such selection file"):
        plan_prune(PruneJob(small["parquet"][0], str(tmp_path / "x.json"), str(tmp_path / "o")))
    csv = tmp_path / "data.csv"
    small["frame"][["label"]].to_csv(csv, index=False)
    with pytest.raises(ValueError, match="TFRecord .* or Parquet, not csv"):
        plan_prune(PruneJob(str(csv), small["selection"], str(tmp_path / "o")))


@pytest.mark.parametrize("fmt", ["parquet", "tfrecord"])
def test_selected_feature_absent_from_data_is_named_up_front(small, tmp_path, fmt):
    job = PruneJob(small[fmt][0], small["bad_selection"], str(tmp_path / "out"))
    with pytest.raises(MissingColumnError, match=r"selected feature 'ghost' not found") as err:
        run_prune(job, IN_MEMORY)
    assert os.path.basename(small[fmt][0]) in str(err.value)
    assert _nothing_written(tmp_path)


def test_missing_keep_column_is_named(small, tmp_path):
    job = PruneJob(small["parquet"][0], small["selection"], str(tmp_path / "o"), ("user_idd",))
    with pytest.raises(MissingColumnError, match=r"--keep-columns column 'user_idd'"):
        plan_prune(job)


def test_tfrecord_feature_never_seen_fails_at_the_end_and_leaves_nothing(small, tmp_path):
    # With the up-front sample switched off, the presence counters catch it after the run.
    directory = os.path.dirname(small["tfrecord"][0])
    job = PruneJob(directory, small["bad_selection"], str(tmp_path / "out"), sample_records=0)
    with pytest.raises(MissingColumnError, match="selected feature 'ghost' appears in none of"):
        run_prune(job, IN_MEMORY)
    assert _nothing_written(tmp_path)


def test_corrupt_tfrecord_names_the_file_and_leaves_nothing(small, tmp_path):
    bad = small["tfrecord"][1]
    data = bytearray(open(bad, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(bad, "wb").write(bytes(data))
    directory = os.path.dirname(bad)
    job = PruneJob(directory, small["selection"], str(tmp_path / "out"), sample_records=10)
    with pytest.raises(ValueError, match="corrupt TFRecord file") as err:
        run_prune(job, IN_MEMORY)
    assert bad in str(err.value)
    assert _nothing_written(tmp_path)


def test_corrupt_tfrecord_in_the_sample_fails_before_launching(small, tmp_path):
    bad = small["tfrecord"][0]
    with gzip.open(bad + ".gz", "wb") as f:  # a gzip file under the plain-TFRecord name
        f.write(open(bad, "rb").read())
    os.replace(bad + ".gz", bad)
    job = PruneJob(bad, small["selection"], str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"corrupt TFRecord file, or not one \(if it is gzip"):
        plan_prune(job)


def test_mixed_schema_parquet_names_both_files(small, tmp_path):
    first, second = small["parquet"]
    noise = small["data"].noise[0]  # not kept: the shards must agree on every column anyway
    pq.write_table(pq.read_table(second).drop([noise]), second)
    job = PruneJob(os.path.dirname(first), small["selection"], str(tmp_path / "out"))
    with pytest.raises(ValueError, match="different schemas") as err:
        run_prune(job, IN_MEMORY)
    assert first in str(err.value) and second in str(err.value) and noise in str(err.value)
    assert _nothing_written(tmp_path)


def test_non_empty_output_dir_is_refused_before_launching(small, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        run_prune(PruneJob(small["parquet"][0], small["selection"], str(out)), IN_MEMORY)
    assert (out / "keep.txt").read_text() == "mine"


def test_small_parquet_round_trip_in_memory_runner(small, tmp_path):
    out = tmp_path / "out"
    job = PruneJob(os.path.dirname(small["parquet"][0]), small["selection"], str(out))
    manifest = run_prune(job, IN_MEMORY)
    table = pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])
    assert sorted(table.column_names) == sorted([*small["selected"], "label"])
    assert table.num_rows == 1200 == manifest["counters"]["records_out"]
    assert manifest["files"] == sorted(p.name for p in out.glob("part-*"))
