"""select() on streams: the same selection as the frame path on the same rows in the same
order, and checkpoints whose size does not grow with the rows."""

from __future__ import annotations

import pandas as pd
import pytest
import tensorflow as tf

from recsel.data.synthetic import make_synthetic
from recsel.inputs import FileStream, StreamOptions
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.serving import serialize_examples
from recsel.selection.driver import select
from recsel.selection.trainer import SERVING_SAMPLE_ROWS, VALID_HEAD_ROWS, SelectionTrainer
from recsel.spec.config import SelectionConfig


def _prepared(rows: int, seed: int = 3):
    data = make_synthetic(
        n_rows=rows, n_informative=3, n_duplicates=1, n_noise=3, n_traps=1, seed=seed
    )
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    return train, valid, features, data.label


def _write(path: str, frame, features, label) -> str:
    with tf.io.TFRecordWriter(path) as writer:
        for record in serialize_examples(frame, features, label):
            writer.write(record)
    return path


def test_streamed_selection_equals_the_frame_selection(tmp_path):
    train, valid, features, label = _prepared(5000)
    config = SelectionConfig(num_features=3, batch_size=64, seed=5, finetune_steps=5)
    from_frames = select(train, valid, features, config, progress=False)

    # One shard, no file shuffle, a buffer as large as the frame's: the same row order.
    options = StreamOptions(64, shuffle_buffer=len(train), shuffle_files=False)
    stream = FileStream(
        _write(str(tmp_path / "train.tfrecord"), train, features, label),
        features,
        options,
        label,
        num_rows=len(train),
    )
    valid_stream = FileStream(
        _write(str(tmp_path / "valid.tfrecord"), valid, features, label),
        features,
        StreamOptions(256, shuffle_buffer=0, shuffle_files=False),
        label,
        num_rows=len(valid),
    )
    from_stream = select(stream, valid_stream, features, config, progress=False)
    assert from_stream.selected == from_frames.selected
    assert from_stream.dims == from_frames.dims
    assert from_stream.provenance["steps"] == from_frames.provenance["steps"]
    assert from_stream.metrics["auc"] == pytest.approx(from_frames.metrics["auc"], abs=1e-4)


def _checkpoint_bytes(directory) -> int:
    return sum(p.stat().st_size for p in directory.glob("ckpt-*"))


class _Stop(RuntimeError):
    pass


def _stop_at(step_to_stop: int):
    def callback(step: int) -> None:
        if step == step_to_stop:
            raise _Stop(step)

    return callback


def test_checkpoint_size_does_not_grow_with_the_rows(tmp_path):
    # One feature set (so one model size) for both runs; only the rows differ.
    train, valid, features, _ = _prepared(50_000)
    sizes = {}
    for rows in (10_000, 40_000):
        config = SelectionConfig(num_features=3, batch_size=64, seed=1)
        directory = tmp_path / f"ckpt-{rows}"
        with pytest.raises(_Stop):
            select(
                train.head(rows),
                valid,
                features,
                config,
                progress=False,
                checkpoint_dir=str(directory),
                checkpoint_every=20,
                step_callback=_stop_at(41),
            )
        sizes[rows] = _checkpoint_bytes(directory) / len(list(directory.glob("ckpt-*.index")))
    assert sizes[40_000] <= 1.10 * sizes[10_000], sizes


def test_serving_and_explain_samples_share_one_read_of_the_validation_head(tmp_path):
    train, valid, features, label = _prepared(30000)  # 6000 validation rows
    stream = FileStream(
        _write(str(tmp_path / "valid.tfrecord"), valid, features, label),
        features,
        StreamOptions(256, shuffle_buffer=0, shuffle_files=False),
        label,
    )
    reads = []
    read = stream.sample_frame
    stream.sample_frame = lambda rows: reads.append(rows) or read(rows)
    config = SelectionConfig(num_features=3, batch_size=64, seed=5)
    trainer = SelectionTrainer(features, train, stream, label, config, progress=False)

    serving = trainer.serving_sample
    sample = trainer.valid_head(VALID_HEAD_ROWS)
    assert reads == [VALID_HEAD_ROWS]  # one read for both
    pd.testing.assert_frame_equal(serving, read(SERVING_SAMPLE_ROWS))
    pd.testing.assert_frame_equal(sample, read(VALID_HEAD_ROWS))
    everything = trainer.valid_head(10_000)  # more than was read: read again, all of it
    assert reads == [VALID_HEAD_ROWS, 10_000] and len(everything) == len(valid)


def test_the_training_stream_ends_at_the_runs_last_planned_step(tmp_path, monkeypatch):
    # A stream that repeats forever is, when select() stops, busy on the next pass (a
    # prefetch, the interleave and a shuffle refill), and dropping it waits for them.
    train, valid, features, label = _prepared(4000)
    stream = FileStream(
        _write(str(tmp_path / "train.tfrecord"), train, features, label),
        features,
        StreamOptions(64, shuffle_buffer=500, seed=1),
        label,
        num_rows=len(train),
    )
    seen = {}
    close = SelectionTrainer.close

    def checked_close(self):
        seen["step"], seen["end"] = self.step, self.total_steps
        seen["more"] = bool(self._iterator.get_next_as_optional().has_value())
        close(self)

    monkeypatch.setattr(SelectionTrainer, "close", checked_close)
    config = SelectionConfig(num_features=2, batch_size=64, seed=1)
    select(stream, valid, features, config, progress=False)
    assert seen["step"] == seen["end"] > 0  # the run trained every planned step...
    assert not seen["more"]  # ...and the stream held no batch past them

    trainer = SelectionTrainer(features, stream, valid, label, config, progress=False)
    trainer.end_stream_at(3)
    with pytest.raises(ValueError, match="past the training stream's end at step 3"):
        trainer.train(4)
    trainer.train(3)
    assert not trainer._iterator.get_next_as_optional().has_value()
