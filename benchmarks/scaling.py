"""How recsel's selection time and peak memory grow with rows and with candidates.

Two sweeps on synthetic data (``make_synthetic``, noise columns scaled with the candidate
count, k = the informative count): rows x1, x4, x16 at the base candidate count, and
candidates 50, 200, 800 (quick: 12, 24, 48) at the base rows. Every point runs in its own
subprocess, as a user's ``recsel select`` would, so its time includes the one-off graph
building of a fresh process and its memory is its own. Per point: ``select()`` wall time
split into setup until the first training step finished (input pipeline, AutoGraph,
tracing), the remaining training steps and the rest (fine-tuning, evaluation); and the
peak RSS sampled every 50 ms during ``select()``. Growth exponents are least-squares
log-log slopes.

    python -m benchmarks.scaling [--quick]

Wide sweep (``--wide``, issue 18): 40, 160, 400 and 800 candidates at 100k rows. The
parent writes each table to Parquet once; then, per count, three fresh processes read
it: ``gated`` runs ``recsel select`` itself, ``plain`` prepares it as the CLI does and
trains a gate-free model of the same shape for the same steps, ``steps`` times both models' steps in
interleaved blocks (the step ratio). Per process: time from process start to the first
step done, tracing time and op count of the train step, median step, peak RSS
(``VmHWM``: the process's own high-water mark). See ``benchmarks/_scaling_wide.py``.

    python -m benchmarks.scaling --wide [--wide-candidates 40 160 400 800] [--wide-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil

from benchmarks._common import machine, write_json

PRESETS = {
    "full": {"rows": 5_000, "candidates": 50, "candidate_sweep": (50, 200, 800)},
    "quick": {"rows": 4_000, "candidates": 12, "candidate_sweep": (12, 24, 48)},
}
ROW_FACTORS = (1, 4, 16)


class PeakRss:
    """Samples this process's RSS in a thread; ``peak_mib`` is the largest sample.

    Args:
        interval: Seconds between samples.

    Example:
        >>> with PeakRss() as peak:
        ...     run_something()
        >>> peak.peak_mib
    """

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20


def measure_point(rows: int, candidates: int, seed: int = 0) -> dict:
    """One selection on fresh synthetic data, timed and memory-sampled (run in a subprocess).

    Args:
        rows: Rows of the synthetic table (80% train, 20% validation).
        candidates: Candidate columns (see ``datasets.synthetic_shape``).
        seed: Seed of the data and the selection.

    Example:
        >>> measure_point(1_000, 12)["select_seconds"]
    """
    import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
    from benchmarks.datasets import synthetic_shape
    from recsel.data.synthetic import make_synthetic
    from recsel.inputs.inference import infer_feature_set
    from recsel.inputs.splits import split_frame
    from recsel.inputs.tabular import validate_frame
    from recsel.selection.driver import select
    from recsel.spec.config import SelectionConfig

    shape = synthetic_shape(candidates)
    data = make_synthetic(n_rows=rows, seed=seed, **shape)
    train, valid = split_frame(data.frame, 0.2, seed=seed)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    rss_before = psutil.Process().memory_info().rss / 2**20
    marks: dict[str, float] = {}

    def on_step(step: int) -> None:
        now = time.perf_counter()
        marks.setdefault("first", now)
        marks["last"], marks["steps"] = now, step

    config = SelectionConfig(num_features=shape["n_informative"], seed=seed)
    with PeakRss() as peak:
        started = time.perf_counter()
        select(train, valid, features, config, progress=False, step_callback=on_step)
        ended = time.perf_counter()
    return {
        "rows": rows,
        "candidates": candidates,
        "train_rows": len(train),
        "k": shape["n_informative"],
        "steps": int(marks["steps"]),
        "select_seconds": ended - started,
        "first_step_seconds": marks["first"] - started,
        "steps_seconds": marks["last"] - marks["first"],
        "rest_seconds": ended - marks["last"],
        "peak_rss_mib": peak.peak_mib,
        "rss_before_mib": rss_before,
    }


def run_point(rows: int, candidates: int, seed: int = 0) -> dict:
    """``measure_point`` in a fresh Python process; returns its JSON line.

    Args:
        rows: Rows of the synthetic table.
        candidates: Candidate columns.
        seed: Seed of the data and the selection.

    Raises:
        RuntimeError: The subprocess failed (with the tail of its stderr).

    Example:
        >>> run_point(4_000, 12)["peak_rss_mib"]
    """
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--point", str(rows), str(candidates),
           "--seed", str(seed)]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"Scaling point rows={rows}, candidates={candidates} failed "
            f"(exit {done.returncode}):\n{tail}"
        )
    return json.loads(lines[-1])


def slope(x: list[float], y: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): the growth exponent.

    Args:
        x: Sizes (positive).
        y: Measurements (positive).

    Returns:
        The slope, or None for fewer than two distinct sizes.

    Example:
        >>> slope([1, 4, 16], [1, 16, 256])
        2.0
    """
    if len(set(x)) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def exponents(points: list[dict], sweep: str) -> dict[str, float | None]:
    """Growth exponents of select() time, training-step time and peak RSS along a sweep.

    Args:
        points: Measured points, each with its ``sweep`` (``rows`` or ``candidates``).
        sweep: Which sweep.

    Example:
        >>> exponents(points, "rows")["time"]
    """
    chosen = [p for p in points if p["sweep"] == sweep]
    x = [p["rows" if sweep == "rows" else "candidates"] for p in chosen]
    return {
        "time": slope(x, [p["select_seconds"] for p in chosen]),
        "steps_time": slope(x, [max(p["steps_seconds"], 1e-6) for p in chosen]),
        "memory": slope(x, [p["peak_rss_mib"] for p in chosen]),
    }


WIDE_CANDIDATES = (40, 160, 400, 800)
WIDE_TARGETS = {"first_step_seconds": 30.0, "peak_rss_mib": 2.5 * 1024, "step_ratio": 1.1,
                "setup_exponent": 0.7, "at": 400}  # fmt: skip


def _wide_table(rows: int, candidates: int, seed: int, cache: str) -> tuple[str, str, int]:
    """Writes (once) the synthetic table for a wide point; returns (path, label, k)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import recsel  # noqa: F401
    from benchmarks.datasets import synthetic_shape
    from recsel.data.synthetic import make_synthetic

    shape = synthetic_shape(candidates)
    path = os.path.join(cache, f"wide_{rows}_{candidates}_{seed}.parquet")
    if not os.path.exists(path):
        data = make_synthetic(n_rows=rows, seed=seed, **shape)
        tmp = path + ".tmp"
        pq.write_table(pa.Table.from_pandas(data.frame, preserve_index=False), tmp)
        with open(path + ".label", "w") as f:
            f.write(data.label)
        os.replace(tmp, path)
    with open(path + ".label") as f:
        return path, f.read(), shape["n_informative"]


def _run_wide(kind: str, path: str, label: str, k: int, seed: int) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--wide-point", kind, path, label, str(k),
           "--seed", str(seed)]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"Wide point {kind} {path} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def wide_sweep(candidates: list[int], rows: int, seed: int, cache: str) -> dict:
    """Gated vs plain at each candidate count (fresh processes); see the module docstring.

    Example:
        >>> wide_sweep([40, 160], 20_000, 0, "/tmp")["points"][0]["gated"]["median_step_ms"]
    """
    points = []
    for count in candidates:
        path, label, k = _wide_table(rows, count, seed, cache)
        point = {"candidates": count, "rows": rows, "k": k}
        for kind in ("gated", "plain", "steps"):
            point[kind] = _run_wide(kind, path, label, k, seed)
        gated, plain = point["gated"], point["plain"]
        point["step_ratio_interleaved"] = point["steps"]["ratio"]
        point["step_ratio_separate"] = gated["median_step_ms"] / plain["median_step_ms"]
        print(f"{count} candidates: gated first step at {gated['first_step_done_since_start']:.1f} s, "
              f"trace {gated['tracing_seconds']:.1f} s, {gated['graph_ops']} ops, step "
              f"{gated['median_step_ms']:.1f} ms, RSS {gated['peak_rss_mib']:.0f} MiB; plain step "
              f"{plain['median_step_ms']:.1f} ms; interleaved ratio {point['steps']['ratio']:.3f}",
              flush=True)  # fmt: skip
        points.append(point)
    x = [p["candidates"] for p in points]
    exps = {
        "first_step": slope(x, [p["gated"]["first_step_done_since_start"] for p in points]),
        "setup_after_import": slope(
            x,
            [
                p["gated"]["first_step_done_since_start"] - p["gated"]["import_seconds"]
                for p in points
            ],
        ),  # fmt: skip
        "tracing": slope(x, [p["gated"]["tracing_seconds"] for p in points]),
        "graph_ops": slope(x, [p["gated"]["graph_ops"] for p in points]),
        "peak_rss": slope(x, [p["gated"]["peak_rss_mib"] for p in points]),
    }
    return {"points": points, "exponents": exps, "targets": wide_targets(points, exps)}


def wide_targets(points: list[dict], exps: dict) -> list[dict]:
    """Issue 18's targets at 400 candidates, with ``met`` flags (missing point: not met).

    Example:
        >>> [t["target"] for t in wide_targets(points, exps) if not t["met"]]
    """
    at = [p for p in points if p["candidates"] == WIDE_TARGETS["at"]]
    p = at[0] if at else None
    rows = [
        ("start -> first step done, s (400 candidates)", "first_step_seconds",
         p and p["gated"]["first_step_done_since_start"]),
        ("peak RSS, MiB (400 candidates)", "peak_rss_mib", p and p["gated"]["peak_rss_mib"]),
        ("gated / plain step, interleaved (400 candidates)", "step_ratio",
         p and p["step_ratio_interleaved"]),
        ("growth exponent of start -> first step in candidates", "setup_exponent",
         exps.get("first_step")),
    ]  # fmt: skip
    return [
        {"target": name, "value": value, "threshold": WIDE_TARGETS[key],
         "met": value is not None and value <= WIDE_TARGETS[key]}
        for name, key, value in rows
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller bases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--point", nargs=2, type=int, metavar=("ROWS", "CANDIDATES"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--wide", action="store_true", help="the 100k-row candidate sweep")
    parser.add_argument("--wide-candidates", type=int, nargs="+", default=list(WIDE_CANDIDATES))
    parser.add_argument("--wide-rows", type=int, default=100_000)
    parser.add_argument("--cache", default="/tmp/recsel_scaling", help="where wide tables go")
    parser.add_argument("--wide-point", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.wide_point:
        from benchmarks import _scaling_wide as wide

        kind, path, label, k = args.wide_point
        fn = {"gated": wide.gated_point, "plain": wide.plain_point, "steps": wide.steps_point}[kind]
        print(json.dumps(fn(path, label, int(k), seed=args.seed)), flush=True)
        return
    if args.wide:
        os.makedirs(args.cache, exist_ok=True)
        load_before = [round(x, 2) for x in os.getloadavg()]
        result = wide_sweep(args.wide_candidates, args.wide_rows, args.seed, args.cache)
        _merge_wide(result, load_before, args)
        return
    if args.point:
        print(json.dumps(measure_point(*args.point, seed=args.seed)), flush=True)
        return
    mode = "quick" if args.quick else "full"
    preset = PRESETS[mode]
    plan = [("rows", preset["rows"] * f, preset["candidates"]) for f in ROW_FACTORS]
    plan += [("candidates", preset["rows"], c) for c in preset["candidate_sweep"]]
    points, done = [], {}
    for sweep, rows, candidates in plan:
        if (rows, candidates) not in done:  # the base point belongs to both sweeps
            done[(rows, candidates)] = run_point(rows, candidates, args.seed)
            p = done[(rows, candidates)]
            print(f"rows {rows}, candidates {candidates}: {p['select_seconds']:.1f} s, "
                  f"peak RSS {p['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
        points.append({"sweep": sweep, **done[(rows, candidates)]})
    write_json("scaling", {
        "machine": machine(),
        "command": "python -m benchmarks.scaling" + (" --quick" if args.quick else "")
        + (f" --seed {args.seed}" if args.seed else ""),
        "mode": mode, "seeds": [args.seed],
        "base": {"rows": preset["rows"], "candidates": preset["candidates"]},
        "description": (
            f"Synthetic data; rows x{', x'.join(map(str, ROW_FACTORS))} of {preset['rows']} at "
            f"{preset['candidates']} candidates, and {', '.join(map(str, preset['candidate_sweep']))} "
            f"candidates at {preset['rows']} rows; k = the planted informative count; default "
            "SelectionConfig (1 epoch, batch 256, but at least recsel's minimum steps per "
            "selection event, which set the step count at small row counts; 50 hard-gated fine-tuning "
            "steps). One fresh subprocess per point: select() time includes its "
            "one-off graph building; 'Setup to 1st step' isolates it. Peak RSS is sampled "
            "every 50 ms during select()."
        ),
        "points": points,
        "exponents": {s: exponents(points, s) for s in ("rows", "candidates")},
    })  # fmt: skip


def _merge_wide(result: dict, load_before: list[float], args) -> None:
    """Adds the wide sweep to scaling.json, keeping the rows/candidates sweeps there."""
    from benchmarks._common import RESULTS

    path = RESULTS / "scaling.json"
    payload = json.loads(path.read_text()) if path.exists() else {}
    payload["wide"] = {
        "machine": machine(),
        "command": "python -m benchmarks.scaling --wide --wide-candidates "
        + " ".join(map(str, args.wide_candidates)) + f" --wide-rows {args.wide_rows}",
        "load_average_at_start": load_before,
        **result,
    }  # fmt: skip
    write_json("scaling", payload)


if __name__ == "__main__":
    main()
