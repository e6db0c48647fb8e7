"""Streaming selection at x1, x4 and x16 rows: flat memory, linear time, plain-fit speed.

Data: ``make_synthetic`` chunks of ``chunk_rows`` rows (40 candidates, no ID traps, so
every size has the same vocabularies and model), written once as TFRecord and Parquet
shards, one shard per chunk; each chunk has its own seed, so no row repeats. Every
point (format x rows) runs in a fresh subprocess, as a user's job would, and measures:

- ``select()`` on a ``FileStream`` (one pass, k = 8, checkpoints every 500 steps and
  the round's evaluation included): wall time, examples/s, peak RSS (``ru_maxrss``) and
  the size of one checkpoint against the model's and optimizer's variables;
- beside it, in the same process after it, a plain tf_keras ``fit`` of the same shape
  (``Ranker(PrunedEmbedding(all candidates))``) on the same stream for the same steps.

Targets (issue 13): peak RSS at x16 <= 1.2 x peak RSS at x1; wall-time growth exponent
in rows <= 1.05; select() throughput >= 0.9 x the plain fit; checkpoint <= 2 x model
plus optimizer.

    python -m benchmarks.stream_scale [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import machine, write_json

PRESETS = {
    "full": {"chunk_rows": 250_000, "factors": (1, 4, 16)},
    "quick": {"chunk_rows": 20_000, "factors": (1, 4, 16)},
}
SHAPE = {"n_informative": 8, "n_duplicates": 6, "n_noise": 26, "n_traps": 0}
BATCH, K, SEED = 256, 8, 0


def _canonical(data):
    """Renames columns (and the name prefix of their values) by role, so every chunk has
    the same columns, kinds and vocabularies (``make_synthetic`` permutes names per seed;
    the kind of each role is fixed)."""
    roles = {n: f"inf{i}" for i, n in enumerate(data.informative)}
    roles.update({n: f"dup{i}" for i, n in enumerate(data.duplicates)})  # generation order
    roles.update({n: f"noise{i}" for i, n in enumerate(data.noise)})
    frame = {}
    for old, new in roles.items():
        column = data.frame[old]
        if column.dtype == object and isinstance(column.iloc[0], list):
            column = column.map(lambda cell, o=old, n=new: [v.replace(o, n, 1) for v in cell])
        elif column.dtype == object:
            column = column.str.replace(old, new, n=1, regex=False)
        frame[new] = column
    import pandas as pd

    out = pd.DataFrame(dict(sorted(frame.items())))
    out[data.label] = data.frame[data.label].to_numpy()
    return out


def _write_chunks(root: Path, chunk_rows: int, chunks: int) -> dict:
    """Writes ``chunks`` TFRecord and Parquet shards; returns the feature spec path."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf

    from recsel.data.synthetic import make_synthetic
    from recsel.inference import infer_feature_set
    from recsel.serving import serialize_examples
    from recsel.tabular import validate_frame

    features = None
    for chunk in range(chunks):
        data = make_synthetic(n_rows=chunk_rows, seed=1000 + chunk, **SHAPE)
        frame = _canonical(data)
        if features is None:
            features = infer_feature_set(frame, data.label, embedding_dim=16)
            features.to_json(str(root / "features.json"))
        frame = validate_frame(frame, features, data.label)
        with tf.io.TFRecordWriter(str(root / f"part-{chunk:05d}.tfrecord")) as writer:
            for record in serialize_examples(frame, features, data.label):
                writer.write(record)
        table = pa.Table.from_pandas(frame[[*features.names, data.label]], preserve_index=False)
        pq.write_table(table, root / f"part-{chunk:05d}.parquet")
        if chunk == 0:  # a held-out chunk for validation
            valid = make_synthetic(n_rows=min(chunk_rows, 20_000), seed=999, **SHAPE)
            vframe = validate_frame(_canonical(valid), features, valid.label)
            with tf.io.TFRecordWriter(str(root / "valid.tfrecord")) as writer:
                for record in serialize_examples(vframe, features, valid.label):
                    writer.write(record)
    return {"features": str(root / "features.json"), "label": data.label}


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("ckpt-*")) if path.exists() else 0


def run_point(root: str, fmt: str, chunks: int, chunk_rows: int) -> dict:
    """One point, in this (fresh) process: select() then the plain fit, same stream."""
    import tf_keras

    from recsel.config import SelectionConfig
    from recsel.features import FeatureSet
    from recsel.inputs import FileStream, StreamOptions
    from recsel.layer import PrunedEmbedding
    from recsel.model import Ranker
    from recsel.selection import select

    base = Path(root)
    features = FeatureSet.from_json(str(base / "features.json"))
    files = [str(base / f"part-{c:05d}.{fmt}") for c in range(chunks)]
    rows = chunks * chunk_rows
    options = StreamOptions(BATCH, shuffle_buffer=10_000, seed=SEED)
    train = FileStream(files, features, options, features.label, num_rows=rows)
    valid = FileStream(
        str(base / "valid.tfrecord"),
        features,
        StreamOptions(4096, shuffle_buffer=0, shuffle_files=False),
        features.label,
    )
    checkpoints = Path(tempfile.mkdtemp(prefix="stream-ckpt-"))
    seen = {"bytes": 0}

    def after_step(step: int) -> None:
        if step == 501:  # just after the save at step 500: one checkpoint on disk
            seen["bytes"] = _dir_bytes(checkpoints)

    config = SelectionConfig(num_features=K, batch_size=BATCH, seed=SEED)
    started = time.perf_counter()
    result = select(
        train,
        valid,
        features,
        config,
        progress=False,
        checkpoint_dir=str(checkpoints),
        checkpoint_every=500,
        step_callback=after_step,
    )
    select_s = time.perf_counter() - started
    steps = result.provenance["steps"]
    rss_after_select = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    tf_keras.utils.set_random_seed(SEED)
    plain = Ranker(PrunedEmbedding(features), config.hidden_units, seed=SEED)
    plain.compile(
        tf_keras.optimizers.Adam(config.learning_rate),
        tf_keras.losses.BinaryCrossentropy(from_logits=True),
    )
    plain.optimizer.build(plain.trainable_variables)
    stream = train.dataset(BATCH, seed=SEED, shuffle=True, num_epochs=None)
    started = time.perf_counter()
    plain.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    plain_s = time.perf_counter() - started
    state_bytes = sum(
        int(np.prod(v.shape)) * v.dtype.size for v in [*plain.variables, *plain.optimizer.variables]
    )
    return {
        "format": fmt,
        "rows": rows,
        "steps": steps,
        "select_s": round(select_s, 2),
        "plain_fit_s": round(plain_s, 2),
        "select_examples_per_s": round(steps * BATCH / select_s),
        "plain_examples_per_s": round(steps * BATCH / plain_s),
        "throughput_ratio": round(plain_s / select_s, 3),
        "peak_rss_mib_select": round(rss_after_select, 1),
        "checkpoint_bytes": seen["bytes"],
        "model_and_optimizer_bytes": state_bytes,
        "checkpoint_ratio": round(seen["bytes"] / state_bytes, 3) if seen["bytes"] else None,
        "selected": result.selected,
        "valid_auc": round(result.metrics["auc"], 4),
    }


def _exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--formats", nargs="+", default=["tfrecord", "parquet"])
    parser.add_argument("--point", nargs=4, metavar=("ROOT", "FMT", "CHUNKS", "CHUNK_ROWS"))
    args = parser.parse_args(argv)
    if args.point:
        root, fmt, chunks, chunk_rows = args.point
        print(json.dumps(run_point(root, fmt, int(chunks), int(chunk_rows))))
        return
    preset = PRESETS["quick" if args.quick else "full"]
    chunk_rows, factors = preset["chunk_rows"], preset["factors"]
    root = Path(tempfile.mkdtemp(prefix="stream-scale-"))
    started = time.perf_counter()
    _write_chunks(root, chunk_rows, max(factors))
    write_s = time.perf_counter() - started
    points = []
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for fmt in args.formats:
        for factor in factors:
            argv = [str(root), fmt, str(factor), str(chunk_rows)]
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.stream_scale", "--point", *argv],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if proc.returncode:
                raise RuntimeError(f"point {argv} failed:\n{proc.stderr[-3000:]}")
            point = json.loads(proc.stdout.strip().splitlines()[-1])
            point["load_average_1m"] = round(os.getloadavg()[0], 2)
            points.append(point)
            print(json.dumps(point), flush=True)
    command = "python -m benchmarks.stream_scale" + (" --quick" if args.quick else "")
    if args.formats != ["tfrecord", "parquet"]:
        command += " --formats " + " ".join(args.formats)
    record(points, command, "quick" if args.quick else "full", chunk_rows, write_s, root)


def summarise(points: list[dict]) -> dict:
    """Per format: the targets' measures over the points that were run."""
    summary = {}
    for fmt in dict.fromkeys(p["format"] for p in points):
        mine = [p for p in points if p["format"] == fmt]
        rows = [p["rows"] for p in mine]
        complete = len(mine) >= 2
        summary[fmt] = {
            "points": len(mine),
            "rss_ratio_largest_vs_x1": (
                round(mine[-1]["peak_rss_mib_select"] / mine[0]["peak_rss_mib_select"], 3)
                if complete
                else None
            ),
            "wall_time_exponent": (
                round(_exponent(rows, [p["select_s"] for p in mine]), 3) if complete else None
            ),
            "min_throughput_ratio": min(p["throughput_ratio"] for p in mine),
            "max_checkpoint_ratio": max(p["checkpoint_ratio"] or 0 for p in mine),
        }
    return summary


def record(
    points: list[dict], command: str, mode: str, chunk_rows: int, write_s: float, root: Path
) -> None:
    """Writes ``benchmarks/results/stream_scale.json`` for the measured points."""
    summary = summarise(points)
    write_json(
        "stream_scale",
        {
            "machine": machine(),
            "command": command,
            "mode": mode,
            "chunk_rows": chunk_rows,
            "candidates": len(json.loads((root / "features.json").read_text())["features"]),
            "data_write_s": round(write_s, 1),
            "points": points,
            "summary": summary,
            "targets": {
                "rss_ratio_largest_vs_x1": "<= 1.2 (x16 vs x1)",
                "wall_time_exponent": "<= 1.05",
                "min_throughput_ratio": ">= 0.9",
                "max_checkpoint_ratio": "<= 2",
            },
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
