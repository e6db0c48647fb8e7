"""`recsel select` on a pattern of TFRecord shards streams them: no frame of the data."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from recsel.cli import main
from recsel.data.synthetic import make_synthetic
from recsel.inputs import table_io as _table_io
from recsel.inputs import tabular
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.tabular import validate_frame
from recsel.model.serving import serialize_examples


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    data = make_synthetic(
        n_rows=6000, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=2
    )
    features = infer_feature_set(data.frame, data.label, embedding_dim=16)
    frame = validate_frame(data.frame, features, data.label)
    root = tmp_path_factory.mktemp("cli_shards")
    for s in range(4):
        part = frame.iloc[s * 1500 : (s + 1) * 1500]
        path = root / f"data-{s:05d}-of-00004.tfrecord.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for record in serialize_examples(part, features, data.label):
                writer.write(record)
    return root, data


def _forbid_frames(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a DataFrame of the data was built")

    for module, name in [
        (tabular, "read_table"),
        (_table_io, "read_tfrecord"),
        (_table_io, "read_parquet"),
        (_table_io, "arrow_to_frame"),
    ]:
        monkeypatch.setattr(module, name, refuse)


def test_select_streams_tfrecord_shards_without_a_frame(shards, tmp_path, monkeypatch, capsys):
    root, data = shards
    _forbid_frames(monkeypatch)
    out = tmp_path / "out"
    code = main(
        ["select", str(root / "data-*.tfrecord.gz"), "--label", data.label]
        + ["--num-features", "3", "--batch-size", "64", "--output-dir", str(out), "--quiet"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Streaming 3 training and 1 validation shard(s); 4500 training rows" in captured.out
    selection = json.loads((out / "selection.json").read_text())
    assert len(selection["selected"]) == 3
    assert (out / "embedding_config.json").exists()
    assert not (tmp_path / "out.checkpoint").exists()
    # The vocabularies came from the streaming statistics pass; each is a file the spec
    # references, holding exactly the spec's values in lookup-id order.
    spec = json.loads((out / "feature_spec.json").read_text())
    with_vocabulary = [f for f in spec["features"] if "vocabulary" in f]
    assert with_vocabulary
    for entry in with_vocabulary:
        lines = (out / entry["vocabulary_file"]).read_text().split("\n")[:-1]
        assert lines == [str(v) for v in entry["vocabulary"]], entry["name"]


def test_a_pattern_that_matches_nothing_is_a_clear_error(tmp_path, capsys):
    code = main(
        ["select", str(tmp_path / "none-*.tfrecord"), "--label", "y", "--output-dir",
         str(tmp_path / "o"), "--stream", "on"]
    )  # fmt: skip
    assert code == 2
    assert "none-*.tfrecord: no files match this pattern" in capsys.readouterr().err


def test_frame_only_flags_are_refused_while_streaming(shards, tmp_path, capsys):
    root, data = shards
    code = main(
        ["select", str(root), "--label", data.label, "--time-column", "ts", "--output-dir",
         str(tmp_path / "o")]
    )  # fmt: skip
    assert code == 2
    assert "--time-column needs the whole table in memory" in capsys.readouterr().err


def test_statistics_that_do_not_match_the_data_name_the_feature(shards, tmp_path, capsys):
    root, data = shards
    spec = infer_feature_set(data.frame, data.label, embedding_dim=16).to_dict()
    spec["features"].append({"name": "country", "kind": "categorical", "dtype": "string",
                             "vocabulary": ["de"], "embedding_dim": 16})  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code = main(
        ["select", str(root), "--label", data.label, "--features", str(tmp_path / "spec.json"),
         "--output-dir", str(tmp_path / "o")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "['country'] not found" in err and "data-00000-of-00004.tfrecord.gz" in err


def test_a_shard_that_breaks_the_validation_read_is_named_without_a_traceback(tmp_path, capsys):
    # Two Parquet shards (training, validation); the validation head holds a null number.
    data = make_synthetic(n_rows=800, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    numeric = data.frame.select_dtypes("number").columns.drop(data.label)[0]
    broken = data.frame.iloc[400:].copy()
    broken.loc[broken.index[3], numeric] = None
    data.frame.iloc[:400].to_parquet(tmp_path / "part-0.parquet", index=False)
    broken.to_parquet(tmp_path / "part-1.parquet", index=False)
    code = main(
        ["select", str(tmp_path / "part-*.parquet"), "--label", data.label, "--quiet"]
        + ["--num-features", "1", "--output-dir", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"recsel: error: {tmp_path / 'part-1.parquet'}: column {numeric!r} has 1 missing" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_multi_worker_without_tf_config_says_what_to_set(shards, tmp_path, capsys, monkeypatch):
    root, data = shards
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(
        ["select", str(root), "--label", data.label, "--strategy", "multi-worker",
         "--output-dir", str(tmp_path / "o")]
    )  # fmt: skip
    assert code == 2
    assert "reads the cluster from TF_CONFIG, which is not set" in capsys.readouterr().err


def test_select_under_the_mirrored_strategy_flag(shards, tmp_path, capsys):
    root, data = shards
    out = tmp_path / "out"
    code = main(
        ["select", str(root), "--label", data.label, "--num-features", "2", "--batch-size",
         "64", "--strategy", "mirrored", "--output-dir", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert len(json.loads((out / "selection.json").read_text())["selected"]) == 2


@pytest.mark.parametrize("suffix", ["csv", "csv.gz"])
def test_csv_shards_stream_with_integer_ids_as_categories(tmp_path, capsys, suffix):
    # CsvTFXIO takes one pattern, not a list of files: a multi-shard CSV stream failed in
    # the statistics pass; and an integer ID column was numeric, not a category. Gzipped
    # CSV shards were refused ("unsupported file extension").
    data = make_synthetic(n_rows=1800, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    frame = data.frame.select_dtypes(exclude="object").copy()  # CSV holds no list cells
    frame["item_id"] = [i % 40 for i in range(len(frame))]
    for s in range(3):
        frame.iloc[s::3].to_csv(tmp_path / f"part-{s}.{suffix}", index=False)
    out = tmp_path / "out"
    code = main(
        ["select", str(tmp_path / f"part-*.{suffix}"), "--stream", "on", "--label", data.label]
        + ["--num-features", "1", "--output-dir", str(out), "--quiet"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Streaming 2 training and 1 validation shard(s)" in captured.out
    spec = json.loads((out / "feature_spec.json").read_text())
    (item,) = [f for f in spec["features"] if f["name"] == "item_id"]
    assert (item["kind"], item["dtype"]) == ("categorical", "int64")
    assert sorted(item["vocabulary"]) == list(range(40))
