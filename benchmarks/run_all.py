"""Runs every benchmark script (full or quick mode), then regenerates BENCHMARKS.md.

Each script runs as its own subprocess (a fresh TensorFlow, so no benchmark inherits
another's graphs or memory), one after another; its wall time and exit code, the load
average and the total go to ``benchmarks/results/run_all.json``, which BENCHMARKS.md shows.
A failing script does not stop the others; ``run_all`` then exits non-zero.

    python -m benchmarks.run_all [--quick] [--only compare_methods dims] [--skip scaling]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import RESULTS, machine, write_json

QUICK_LIMIT_MINUTES = 20
# name -> (full-mode arguments, quick-mode arguments)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "planted_recovery": ([], ["--seeds", "1", "--rows", "40000"]),
    "layer_overhead": ([], ["--rows", "3000", "--blocks", "4", "--steps-per-block", "10"]),
    "compare_methods": ([], ["--quick"]),
    "dims": ([], ["--quick"]),
    "scaling": ([], ["--quick"]),
    "prune_memory": ([], ["--rows", "10000", "--formats", "parquet"]),
    "latency_noise": ([], ["--repeats", "4"]),
}
HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Registered scripts whose module exists in this checkout, in run order.

    Example:
        >>> available()[:2]
        ['planted_recovery', 'layer_overhead']
    """
    return [name for name in SCRIPTS if (HERE / f"{name}.py").is_file()]


def command_for(name: str, quick: bool) -> list[str]:
    """The argument list that runs one benchmark script in the given mode.

    Args:
        name: A key of ``SCRIPTS``.
        quick: Quick-mode arguments instead of full-mode ones.

    Raises:
        ValueError: Unknown script name.

    Example:
        >>> command_for("dims", quick=True)[-3:]
        ['-m', 'benchmarks.dims', '--quick']
    """
    if name not in SCRIPTS:
        raise ValueError(f"Unknown benchmark {name!r}; known: {', '.join(SCRIPTS)}.")
    full, fast = SCRIPTS[name]
    return [sys.executable, "-m", f"benchmarks.{name}", *(fast if quick else full)]


def run_script(name: str, quick: bool) -> dict:
    """Runs one script, streaming its output; returns its command, seconds and exit code.

    Args:
        name: A key of ``SCRIPTS``.
        quick: Run it in quick mode.

    Example:
        >>> run_script("dims", quick=True)["seconds"]
    """
    cmd = command_for(name, quick)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"==> {' '.join(cmd[1:])}", flush=True)
    started = time.perf_counter()
    code = subprocess.run(cmd, cwd=HERE.parent, env=env, check=False).returncode
    seconds = time.perf_counter() - started
    print(f"<== {name}: {seconds:.0f} s, exit code {code}", flush=True)
    return {"name": name, "command": "python " + " ".join(cmd[1:]), "seconds": seconds,
            "returncode": code}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows, seeds and steps")
    parser.add_argument("--only", nargs="+", default=None, help="run only these scripts")
    parser.add_argument("--skip", nargs="+", default=[], help="do not run these scripts")
    args = parser.parse_args(argv)
    names = available()
    for chosen in [*(args.only or []), *args.skip]:
        if chosen not in SCRIPTS:
            parser.error(f"unknown benchmark {chosen!r}; known: {', '.join(SCRIPTS)}")
    names = [n for n in names if (args.only is None or n in args.only) and n not in args.skip]
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    steps = [run_script(name, args.quick) for name in names]
    total = time.perf_counter() - started
    command = "python -m benchmarks.run_all" + (" --quick" if args.quick else "")
    command += (" --only " + " ".join(args.only)) if args.only else ""
    command += (" --skip " + " ".join(args.skip)) if args.skip else ""
    write_json("run_all", {
        "machine": machine(), "command": command, "mode": "quick" if args.quick else "full",
        "total_seconds": total, "steps": steps, "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0], "quick_limit_minutes": QUICK_LIMIT_MINUTES,
    })  # fmt: skip
    from benchmarks.render import write_benchmarks  # loads TensorFlow: only once all ran

    path = write_benchmarks(RESULTS)
    print(f"{len(steps)} benchmarks in {total / 60:.1f} min; wrote {path}", flush=True)
    return int(any(s["returncode"] for s in steps))


if __name__ == "__main__":
    sys.exit(main())
