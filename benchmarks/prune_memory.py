"""Peak memory of the dataset pruning job at N and 2N rows: it should stay flat.

Writes synthetic data (``recsel.data.synthetic``) as 4 GZIP TFRecord shards and 4 Parquet
shards, runs ``python -m pipelines.prune_dataset_job`` on each as a subprocess (the
multi_processing DirectRunner, 2 workers) and samples the RSS of the whole process tree
(launcher + Beam workers) with psutil. Results go to ``benchmarks/results/prune_memory.json``.

Usage:
    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.prune_memory --rows 200000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.atomic import atomic_write_text
from recsel.data.shards import write_shards
from recsel.data.synthetic import make_synthetic
from recsel.spec.result import RoundRecord, SelectionResult

RESULTS = os.path.join(os.path.dirname(__file__), "results", "prune_memory.json")


class TreeSampler:
    """Samples the summed RSS of a process and all its descendants every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = self.peak_single = self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            sizes = []
            for proc in procs:
                try:
                    sizes.append(proc.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            if sizes:
                self.peak_tree = max(self.peak_tree, sum(sizes))
                self.peak_single = max(self.peak_single, max(sizes))
                self.max_processes = max(self.max_processes, len(sizes))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _selection(path: str, data) -> str:
    selected = data.informative[:3]
    dims = {s: 8 for s in selected}
    SelectionResult(
        label=data.label,
        candidates=data.feature_columns(),
        selected=selected,
        dims=dims,
        full_dims={c: 16 for c in data.feature_columns()},
        selection_weights={s: 0.5 for s in selected},
        final_weights={},
        rounds=[RoundRecord(0, selected, dims, 0.8, 0.5)],
        metrics={"auc": 0.8, "log_loss": 0.5},
        trajectory={"steps": [], "weights": {}},
    ).to_json(path)
    return path


def measure(rows: int, fmt: str, workdir: str) -> dict:
    """Generates ``rows`` rows in ``fmt``, prunes them in a subprocess, returns the peaks."""
    data = make_synthetic(
        n_rows=rows, n_informative=4, n_duplicates=2, n_noise=4, n_traps=1, seed=0
    )
    base = os.path.join(workdir, f"{fmt}-{rows}")
    files = write_shards(data.frame, os.path.join(base, "in"), fmt, compressed=fmt == "tfrecord")
    selection = _selection(os.path.join(base, "selection.json"), data)
    input_bytes = sum(os.path.getsize(f) for f in files)
    del data
    command = [
        sys.executable, "-m", "pipelines.prune_dataset_job", "--input", os.path.join(base, "in"),
        "--selection", selection, "--output-dir", os.path.join(base, "out"),
        "--direct_running_mode=multi_processing", "--direct_num_workers=2",
    ]  # fmt: skip
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    started = time.time()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with TreeSampler(proc.pid) as sampler:
        output, _ = proc.communicate()
    seconds = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode()[-3000:]}")
    with open(os.path.join(base, "out", "_SUCCESS")) as f:
        manifest = json.load(f)
    shutil.rmtree(base)
    return {
        "rows": rows,
        "format": fmt,
        "input_mib": round(input_bytes / 2**20, 1),
        "records_out": manifest["counters"]["records_out"],
        "peak_tree_rss_mib": round(sampler.peak_tree / 2**20, 1),
        "peak_single_process_rss_mib": round(sampler.peak_single / 2**20, 1),
        "max_processes": sampler.max_processes,
        "wall_seconds": round(seconds, 1),
        "command": " ".join(command),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="N (also runs 2N).")
    parser.add_argument("--formats", nargs="+", default=["tfrecord", "parquet"])
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="prune_memory-") as workdir:
        for fmt in args.formats:
            for rows in (args.rows, 2 * args.rows):
                result = measure(rows, fmt, workdir)
                print(json.dumps({k: v for k, v in result.items() if k != "command"}), flush=True)
                results.append(result)
    report = {
        "benchmark": "prune_memory",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "command": " ".join([sys.executable, "-m", "benchmarks.prune_memory", *sys.argv[1:]]),
        "sampling": "RSS summed over the job's process tree (launcher + Beam workers), every 0.2 s",
        "results": results,
    }
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
