"""BENCHMARKS.md section for ``stream_scale.json`` (issue 13)."""

from __future__ import annotations

from benchmarks._render_sections import fmt, header, table

# (summary key, target text, met?) for each issue-13 target.
_TARGETS = (
    ("rss_ratio_largest_vs_x1", "peak RSS, largest / x1 rows", lambda v: v <= 1.2, "<= 1.2"),
    ("wall_time_exponent", "wall-time growth exponent in rows", lambda v: v <= 1.05, "<= 1.05"),
    ("min_throughput_ratio", "select() / plain-fit throughput, worst point", lambda v: v >= 0.9,
     ">= 0.9"),
    ("max_checkpoint_ratio", "checkpoint / (model + optimizer), worst", lambda v: v <= 2, "<= 2"),
)  # fmt: skip


_METHOD = (
    "How it is measured: peak RSS is each point process's own `VmHWM` (`ru_maxrss`, used "
    "before, is carried across `exec` from the parent, so every point showed the shard "
    "writer's peak); the checkpoint size is polled from the checkpoint directory by a "
    "thread (before, a per-step callback read it, which made `select()` run one step per "
    "compiled call); the plain fit runs 100 steps per compiled call, as `select()` does, "
    "and its time includes building and compiling its model, as `select()`'s does."
)
_REPEATS = (
    "Points with 2 runs per side ran select(), plain, plain, select() in one process (a load "
    "that drifts linearly then weighs on both sides alike); their times are the means, their "
    "ratio is total plain time over total select() time, and their peak RSS and phases are "
    "the first select()'s. The CPU ratio is the same ratio of process CPU time (all threads)."
)

_ALTERNATING = (
    "Points with several runs per side alternated the sides in one process: plain fit, "
    "select(), plain fit, select(), ...; their times are the medians, their ratio is the "
    "median plain time over the median select() time (the CPU ratio likewise with process "
    "CPU time, all threads), and their peak RSS (`VmHWM`, reset before it) and phases are the "
    "first select()'s. Both sides are whole runs on the same stream, ended at the same "
    "planned step, with their iterator's teardown (a `gc.collect()`) inside their timers."
)


def _data_text(data: dict) -> str:
    if data.get("concept_seed") is not None:
        return (
            f"`make_synthetic` chunks of {fmt(data['chunk_rows'])} rows, one shard per chunk, "
            f"each with its own row seed and one concept seed ({data['concept_seed']}): fresh "
            "rows of one problem (no row repeats; the same informative columns and effects in "
            "every shard and in the validation file), so the validation AUC and the selection "
            "mean something."
        )
    return (
        f"`make_synthetic` chunks of {fmt(data['chunk_rows'])} rows, one shard per chunk, each "
        "with its own seed (no row repeats; every chunk has the same columns, kinds and "
        "vocabularies, but its own per-value effects, so the validation AUC below says nothing "
        "about quality: this benchmark measures cost)."
    )


def _written(data: dict) -> str:
    written = data.get("data_write")
    if written is None:  # results from before the cached writer
        return f"Writing the shards took {fmt(data['data_write_s'])} s."
    if not written["chunks_generated"]:
        return "The shards came from the cache (`benchmarks/_stream_data.py`)."
    return (
        f"Generating and writing {fmt(written['chunks_generated'])} chunk(s) took "
        f"{fmt(written['seconds'])} s (Arrow columns, C++ tf.Example encoder; then cached)."
    )


def _load(point: dict) -> str:
    """The 1-minute load average after the point (before -> after, when recorded)."""
    after = fmt(point.get("load_average_1m"))
    before = point.get("load_average_1m_before")
    return after if before is None else f"{fmt(before)} -> {after}"


def stream_section(name: str, data: dict) -> str:
    """Per format: the four targets with their verdicts, then every measured point."""
    lines = ["## stream_scale", "", header(data)]
    lines.append(
        f"`select()` on a `FileStream` of {fmt(data['candidates'])} candidates (k = 8, one pass, "
        "checkpoints every 500 steps and evaluation included) beside a plain tf_keras `fit` of "
        f"the same shape on the same stream, each point in a fresh process. Data: "
        f"{_data_text(data)} {_written(data)} The table's last column is the 1-minute load "
        "average at each point (a 2-core box; the command says what else ran)."
    )
    lines.append("")
    if any(p.get("select_phases_s") for p in data["points"]):
        lines += [_METHOD, ""]
    if any(p.get("runs_per_side", 1) > 1 for p in data["points"]):
        lines += [_ALTERNATING if data["points"][0].get("order") else _REPEATS, ""]
    rows = []
    for fmt_name, summary in data["summary"].items():
        for key, what, met, threshold in _TARGETS:
            value = summary.get(key)
            if summary.get("points", 2) < 2 and key in ("rss_ratio_largest_vs_x1",):
                value = None  # one point: nothing to compare it with
            status = "not measured" if value is None else ("met" if met(value) else "**MISS**")
            rows.append([fmt_name, what, fmt(value), threshold, status])
    lines += [table(["Format", "Target", "Measured", "Threshold", "Status"], rows), ""]
    if data.get("notes"):
        lines += ["Notes:", "", *(f"- {note}" for note in data["notes"]), ""]
    headers = ["Format", "Rows", "Steps", "Runs per side", "select() s", "plain fit s",
               "select() ex/s", "plain ex/s", "Throughput ratio", "CPU ratio", "Peak RSS MiB",
               "Checkpoint bytes", "Model+opt bytes", "Load"]  # fmt: skip
    points = [[p["format"], fmt(p["rows"]), fmt(p["steps"]), fmt(p.get("runs_per_side", 1)),
               fmt(p["select_s"]), fmt(p["plain_fit_s"]), fmt(p["select_examples_per_s"]),
               fmt(p["plain_examples_per_s"]), fmt(p["throughput_ratio"]),
               fmt(p.get("cpu_ratio")), fmt(p["peak_rss_mib_select"]),
               fmt(p["checkpoint_bytes"]), fmt(p["model_and_optimizer_bytes"]),
               _load(p)] for p in data["points"]]  # fmt: skip
    lines += [table(headers, points), ""]
    phased = [p for p in data["points"] if p.get("select_phases_s")]
    if phased:
        lines.append(
            "Where `select()`'s time went (s; `train` includes the in-round checkpoints and "
            "the train function's tracing, `prepare` includes `build`):"
        )
        lines.append("")
        names = list(dict.fromkeys(k for p in phased for k in p["select_phases_s"]))
        rows = [[p["format"], fmt(p["rows"]), *(fmt(p["select_phases_s"].get(k)) for k in names)]
                for p in phased]  # fmt: skip
        lines += [table(["Format", "Rows", *names], rows), ""]
    return "\n".join(lines) + "\n"
