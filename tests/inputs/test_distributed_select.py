"""select() under tf.distribute: replicas of one machine, and two workers on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.serving import serialize_examples

SCRIPTS = Path(__file__).parent.parent / "scripts"
ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_select_under_mirrored_strategy_ends_with_identical_replicas():
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_select.py")],
        capture_output=True, text=True, env=ENV, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["num_replicas"] == 2 and len(out["selected"]) == 4
    for key in ("feature_selected", "feature_order", "feature_logits", "chunk_selected"):
        first, second = out[key]
        assert first == second, f"replicas disagree on {key}"
    assert sum(out["feature_selected"][0]) == 4


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _write(path: Path, frame, features, label) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in serialize_examples(frame, features, label):
            writer.write(record)


@pytest.mark.slow
def test_two_workers_on_loopback_reach_the_same_selection(tmp_path):
    data = make_synthetic(
        n_rows=6000, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=5
    )
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    shards = tmp_path / "train"
    shards.mkdir()
    for s in range(4):  # two shards per worker
        _write(shards / f"part-{s}.tfrecord", train.iloc[s::4], features, data.label)
    _write(tmp_path / "valid.tfrecord", valid, features, data.label)
    features.to_json(str(tmp_path / "features.json"))
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        argv = [str(shards), str(tmp_path / "valid.tfrecord"), str(tmp_path / "features.json")]
        workers.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPTS / "multi_worker_select.py"), *argv, str(len(train))],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**ENV, "TF_CONFIG": tf_config},
            )  # fmt: skip
        )
    outputs = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=900)
            assert worker.returncode == 0, stderr[-3000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            worker.kill()
    assert sorted(o["task"] for o in outputs) == [0, 1]
    assert len(outputs[0]["selected"]) == 3
    assert outputs[0]["selected"] == outputs[1]["selected"]
    assert outputs[0]["dims"] == outputs[1]["dims"]
