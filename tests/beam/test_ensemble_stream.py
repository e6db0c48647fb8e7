"""The ensemble job streams sharded input: no run (nor the refit) builds a frame of its rows."""

from __future__ import annotations

import json

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from recsel.beam.ensemble import EnsembleJob, run_ensemble
from recsel.data.shards import write_shards
from recsel.data.synthetic import make_synthetic
from recsel.inputs import table_io, tabular
from recsel.spec.config import SelectionConfig
from recsel.spec.result import SelectionResult

ROWS, SHARDS = 6000, 6


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    data = make_synthetic(
        n_rows=ROWS, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=2
    )
    root = tmp_path_factory.mktemp("ensemble_shards")
    write_shards(data.frame, str(root), "tfrecord", num_shards=SHARDS, compressed=True)
    return root, data


def _forbid_frames(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a DataFrame of the data was built")

    for module, name in [
        (tabular, "read_table"),
        (table_io, "read_tfrecord"),
        (table_io, "read_parquet"),
        (table_io, "arrow_to_frame"),
    ]:
        monkeypatch.setattr(module, name, refuse)


def _job(root, data, out, **kwargs):
    config = SelectionConfig(num_features=2, batch_size=64, seed=0)
    return EnsembleJob(
        str(root / "data-*.tfrecord.gz"), data.label, str(out), config=config, **kwargs
    )


@pytest.mark.slow
def test_ensemble_runs_stream_their_shards_without_a_frame(shards, tmp_path, monkeypatch):
    root, data = shards
    _forbid_frames(monkeypatch)
    out = tmp_path / "out"
    # in_memory: the DoFns run in this process, so the patched readers are the ones used.
    options = PipelineOptions(["--direct_running_mode=in_memory"])
    record = run_ensemble(_job(root, data, out, num_runs=2, shards=True), options)
    runs = [SelectionResult.from_json(str(out / "runs" / f"run-{i}.json")) for i in range(2)]
    # 6 shards of 1,000 rows: the last 2 validate (validation_fraction 0.2, rounded up),
    # and each run streams every other one of the 4 training shards: 2,000 rows, counted.
    assert [r.provenance["ensemble_run"]["train_rows"] for r in runs] == [2000, 2000]
    assert [r.config["seed"] for r in runs] == [0, 1]
    assert all(len(r.selected) == 2 for r in runs)
    assert record["refit"] is True
    result = SelectionResult.from_json(str(out / "selection.json"))
    assert result.selected == record["consensus"]["selected"] and "auc" in result.metrics
    assert json.loads((out / "ensemble.json").read_text())["runs"][0]["train_rows"] == 2000
    assert not (tmp_path / "out.checkpoint").exists()  # statistics and checkpoints removed


def test_too_few_training_shards_for_the_runs_fails_before_launching(shards, tmp_path):
    root, data = shards
    with pytest.raises(ValueError, match=r"4 training shard\(s\) for 5 runs"):
        run_ensemble(_job(root, data, tmp_path / "out", num_runs=5, shards=True))
    assert not (tmp_path / "out").exists()
