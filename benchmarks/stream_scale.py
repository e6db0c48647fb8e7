"""Streaming selection at x1, x4 and x16 rows: flat memory, linear time, plain-fit speed.

Data: ``make_synthetic`` chunks of ``chunk_rows`` rows (40 candidates, no ID traps, so
every size has the same vocabularies and model), written once as TFRecord and Parquet
shards, one shard per chunk, and cached (``benchmarks/_stream_data.py``); each chunk has
its own row seed, so no row repeats, and all share one concept seed, so every shard and the
validation file are rows of one problem (the AUC and the selection mean something). Every point (format x rows) runs in a fresh subprocess,
as a user's job would, and measures:

- ``select()`` on a ``FileStream`` (one pass, k = 8, checkpoints every 500 steps and
  the rounds' evaluation, validation curve and serving sample included): wall time,
  examples/s, the time of each phase, peak RSS (``VmHWM``) and the size of the largest
  checkpoint against the model's and optimizer's variables;
- beside it, in the same process after it, a plain tf_keras ``fit`` of the same shape
  (``Ranker(PrunedEmbedding(all candidates))``) on the same stream for the same steps,
  with the same steps per compiled call.

Load from other jobs drifts within a point, and even on an idle box one side's time
varies by a third from run to run. So the two sides alternate, plain, select, plain,
select, ..., ``RUNS_PER_SIDE`` times each at points of at most ``REPEAT_MAX_ROWS`` rows
(once each above), and the ratio is the median plain time over the median select() time.
Both are whole runs: select() with its build, checkpoints, evaluation and the drop of its
training iterator; the plain fit with its model build, compile, trace and the drop of its
iterator (each side ends with a ``gc.collect()`` inside its timer, so neither leaves its
input pipeline's teardown to the other). Both read the same pipeline, ended at the same
planned steps. Each side's process CPU time is recorded too (``time.process_time``, all
threads), as a second, load-insensitive view; the peak RSS (``VmHWM``, reset before it) and
the phases are the first select()'s.

Targets (issue 13): peak RSS at x16 <= 1.2 x peak RSS at x1; wall-time growth exponent
in rows <= 1.05; select() throughput >= 0.9 x the plain fit; checkpoint <= 2 x model
plus optimizer.

    python -m benchmarks.stream_scale [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._common import machine, write_json
from benchmarks._stream_data import CONCEPT_SEED, cache_root, write_chunks

PRESETS = {
    "full": {"chunk_rows": 250_000, "factors": (1, 4, 16)},
    "quick": {"chunk_rows": 20_000, "factors": (1, 4, 16)},
}
SHAPE = {"n_informative": 8, "n_duplicates": 6, "n_noise": 26, "n_traps": 0}
BATCH, K, SEED = 256, 8, 0
# Points this small run each side RUNS_PER_SIDE times, alternating: see the docstring.
REPEAT_MAX_ROWS = 1_000_000
RUNS_PER_SIDE = 3


def _reset_peak_rss() -> None:
    """Sets this process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5), so the
    next reading is the peak of what runs from now on."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the reading is then the process's peak
        pass


def _peak_rss_mib() -> float:
    """This process's own peak RSS (``VmHWM``). ``ru_maxrss`` is not: Linux carries it
    across ``exec``, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _CheckpointWatcher(threading.Thread):
    """Records the largest checkpoint written to ``directory`` (polled off the hot path:
    a ``step_callback`` would make ``select()`` run one step per compiled call)."""

    def __init__(self, directory: Path):
        super().__init__(daemon=True)
        self.directory, self.largest, self._done = directory, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            sizes: dict[str, int] = {}
            try:
                for path in self.directory.glob("ckpt-*"):
                    number = path.name.split(".")[0]
                    sizes[number] = sizes.get(number, 0) + path.stat().st_size
            except OSError:  # a file removed between listing and stat (max_to_keep)
                continue
            self.largest = max([self.largest, *sizes.values()])

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.largest


class _Phases:
    """Wall time per phase of ``select()``, by wrapping the functions that make it up."""

    TARGETS = (
        ("recsel.selection.driver", None, "prepare_run", "prepare"),
        ("recsel.selection.trainer", "SelectionTrainer", "__init__", "build"),
        ("recsel.selection.trainer", "SelectionTrainer", "restore", "restore"),
        ("recsel.selection.trainer", "SelectionTrainer", "clear_checkpoints", "clear_checkpoints"),
        ("recsel.selection.trainer", "SelectionTrainer", "close", "close"),
        ("recsel.selection.rounds", None, "prune_ranker", "prune"),
        ("recsel.selection.trainer", "SelectionTrainer", "train", "train"),
        ("recsel.selection.trainer", "SelectionTrainer", "save", "checkpoint"),
        ("recsel.selection.trainer", "SelectionTrainer", "evaluate", "evaluate"),
        ("recsel.selection.explain", None, "validation_sample", "validation_sample"),
        ("recsel.selection.explain", None, "prefix_curve", "feature_curve"),
        ("recsel.selection.explain", None, "dropped_reasons", "dropped_reasons"),
    )

    def __init__(self):
        import importlib

        self.seconds: dict[str, float] = {}
        for module_name, owner_name, attr, phase in self.TARGETS:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            setattr(owner, attr, self._timed(getattr(owner, attr), phase))
        import recsel.selection.driver as selection  # it imported _explain's functions by module

        assert selection._explain is importlib.import_module("recsel.selection.explain")

    def _timed(self, function, phase: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                self.seconds[phase] = self.seconds.get(phase, 0.0) + spent

        return timed


def _plain_fit(train, features, config, steps: int, batch: int) -> dict:
    """A plain tf_keras fit of the same shape on the same stream: same batch, seed, steps
    and steps per compiled call as ``select()``, its stream ended at the same step; its wall
    and CPU seconds include the model build and the drop of its iterator, as ``select()``'s
    do. Returns ``{"s", "cpu_s", "state_bytes"}``."""
    import tf_keras

    from recsel.model.layer import PrunedEmbedding
    from recsel.model.ranker import Ranker
    from recsel.selection.train_loop import MAX_STEPS_PER_CALL

    started, cpu = time.perf_counter(), time.process_time()  # building counts, as in select()
    tf_keras.utils.set_random_seed(SEED)
    plain = Ranker(PrunedEmbedding(features), config.hidden_units, seed=SEED)
    plain.compile(
        tf_keras.optimizers.Adam(config.learning_rate),
        tf_keras.losses.BinaryCrossentropy(from_logits=True),
        steps_per_execution=MAX_STEPS_PER_CALL,
    )
    plain.optimizer.build(plain.trainable_variables)
    stream = train.dataset(batch, seed=SEED, shuffle=True, num_epochs=None).take(steps)
    plain.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    state_bytes = sum(
        int(np.prod(v.shape)) * v.dtype.size for v in [*plain.variables, *plain.optimizer.variables]
    )
    del plain, stream
    gc.collect()  # the fit's iterator (held by cycles in Keras' data handler) goes now
    return {
        "s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "state_bytes": state_bytes,
    }


def _select_once(train, valid, features, config) -> dict:
    """One timed ``select()`` with its own checkpoint directory (polled for the size)."""
    from recsel.selection.driver import select

    checkpoints = Path(tempfile.mkdtemp(prefix="stream-ckpt-"))
    watcher = _CheckpointWatcher(checkpoints)
    watcher.start()
    started, cpu = time.perf_counter(), time.process_time()
    result = select(
        train,
        valid,
        features,
        config,
        progress=False,
        checkpoint_dir=str(checkpoints),
        checkpoint_every=500,
    )
    gc.collect()  # anything select() left to the collector is torn down on its clock
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"result": result, "s": seconds, "cpu_s": cpu, "checkpoint_bytes": watcher.stop()}


def _alternate(train, valid, features, config, runs: int, phases: _Phases) -> dict:
    """Plain fit, select(), plain fit, select(), ... ``runs`` times each. The plain fit
    runs the steps select()'s schedule plans (as ``prepare_run`` plans it: no budget
    here), so it can go first; each select() is checked to have run exactly those."""
    from recsel.selection.round_plan import fit_schedule

    mean_chunks = sum(s.embedding_dim for s in features) / config.chunk_size / len(features)
    k = config.resolve_num_features(len(features))
    schedule = fit_schedule(train.num_rows, k, len(features), mean_chunks, config)
    # Small points lower the batch so the selections fit one pass: the plain fit follows.
    steps, batch = schedule.total_steps, schedule.batch_size
    plains, selects, loads, first_phases, rss = [], [], [], None, None
    for _ in range(runs):
        loads.append(round(os.getloadavg()[0], 2))
        plains.append(_plain_fit(train, features, config, steps, batch))
        if not selects:
            phases.seconds.clear()
            _reset_peak_rss()  # the first select()'s own peak, not the plain fit's
        selects.append(_select_once(train, valid, features, config))
        if first_phases is None:
            first_phases, rss = dict(phases.seconds), _peak_rss_mib()
        ran = selects[-1]["result"].provenance["steps"]
        if ran != steps:
            raise RuntimeError(f"select() ran {ran} steps, the plain fit {steps}: not one shape.")
        if selects[-1]["result"].selected != selects[0]["result"].selected:
            raise RuntimeError("a repeated select() chose other features.")
    return {"plains": plains, "selects": selects, "loads": loads, "phases": first_phases,
            "rss": rss, "steps": steps, "batch": batch}  # fmt: skip


def run_point(root: str, fmt: str, chunks: int, chunk_rows: int) -> dict:
    """One point, in this (fresh) process: the plain fit and select() alternating on the
    same stream (``RUNS_PER_SIDE`` times each for points of at most ``REPEAT_MAX_ROWS``)."""
    from recsel.inputs import FileStream, StreamOptions
    from recsel.spec.config import SelectionConfig
    from recsel.spec.features import FeatureSet

    phases = _Phases()
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
    config = SelectionConfig(num_features=K, batch_size=BATCH, seed=SEED)
    runs = RUNS_PER_SIDE if rows <= REPEAT_MAX_ROWS else 1
    ran = _alternate(train, valid, features, config, runs, phases)
    plains, selects, steps, batch = ran["plains"], ran["selects"], ran["steps"], ran["batch"]
    result = selects[0]["result"]
    select_s = float(np.median([r["s"] for r in selects]))
    plain_s = float(np.median([p["s"] for p in plains]))
    select_cpu = float(np.median([r["cpu_s"] for r in selects]))
    plain_cpu = float(np.median([p["cpu_s"] for p in plains]))
    state_bytes = plains[0]["state_bytes"]
    checkpoint = selects[0]["checkpoint_bytes"]
    return {
        "format": fmt,
        "rows": rows,
        "steps": steps,
        "batch_size": batch,
        "runs_per_side": runs,
        "order": "plain, select() alternating, plain first",
        "select_s": round(select_s, 2),  # the median over the runs
        "select_s_runs": [round(r["s"], 2) for r in selects],
        # select()'s own clock stops before its last step and its return (locals freed):
        # the difference to the first run's time is that tail.
        "select_inner_s": result.provenance["wall_seconds"],
        "plain_fit_s": round(plain_s, 2),
        "plain_fit_s_runs": [round(p["s"], 2) for p in plains],
        "select_examples_per_s": round(steps * batch / select_s),
        "plain_examples_per_s": round(steps * batch / plain_s),
        "throughput_ratio": round(plain_s / select_s, 3),
        "select_cpu_s": round(select_cpu, 2),
        "select_cpu_s_runs": [round(r["cpu_s"], 2) for r in selects],
        "plain_fit_cpu_s": round(plain_cpu, 2),
        "plain_fit_cpu_s_runs": [round(p["cpu_s"], 2) for p in plains],
        "cpu_ratio": round(plain_cpu / select_cpu, 3),
        "load_average_1m_runs": ran["loads"],
        "select_phases_s": {k: round(v, 2) for k, v in ran["phases"].items()},
        "peak_rss_mib_select": round(ran["rss"], 1),
        "checkpoint_bytes": checkpoint,
        "model_and_optimizer_bytes": state_bytes,
        "checkpoint_ratio": round(checkpoint / state_bytes, 3) if checkpoint else None,
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
    root = cache_root(chunk_rows, SHAPE)
    started = time.perf_counter()
    generated = write_chunks(root, chunk_rows, max(factors), SHAPE)["generated"]
    write_s = time.perf_counter() - started
    points = []
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for fmt in args.formats:
        for factor in factors:
            argv = [str(root), fmt, str(factor), str(chunk_rows)]
            load_before = round(os.getloadavg()[0], 2)
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.stream_scale", "--point", *argv],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if proc.returncode:
                raise RuntimeError(f"point {argv} failed:\n{proc.stderr[-3000:]}")
            point = json.loads(proc.stdout.strip().splitlines()[-1])
            point["load_average_1m_before"] = load_before
            point["load_average_1m"] = round(os.getloadavg()[0], 2)
            points.append(point)
            print(json.dumps(point), flush=True)
    command = "python -m benchmarks.stream_scale" + (" --quick" if args.quick else "")
    if args.formats != ["tfrecord", "parquet"]:
        command += " --formats " + " ".join(args.formats)
    written = {"seconds": round(write_s, 1), "chunks_generated": generated, "cache": str(root)}
    record(points, command, "quick" if args.quick else "full", chunk_rows, written, root)


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
    points: list[dict], command: str, mode: str, chunk_rows: int, written: dict, root: Path
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
            "concept_seed": CONCEPT_SEED,
            "candidates": len(json.loads((root / "features.json").read_text())["features"]),
            "data_write": written,
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
