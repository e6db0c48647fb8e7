"""stream_scale's summary and section: repeated points, CPU ratios and load drift shown."""

from __future__ import annotations

import re

from benchmarks._render_stream import stream_section
from benchmarks.stream_scale import summarise


def _point(fmt: str, rows: int, runs: int, ratio: float, rss: float) -> dict:
    return {
        "format": fmt, "rows": rows, "steps": rows // 256, "runs_per_side": runs,
        "select_s": 10.0, "plain_fit_s": 10.0 * ratio, "select_examples_per_s": 1000,
        "plain_examples_per_s": 1000, "throughput_ratio": ratio, "cpu_ratio": 0.97,
        "peak_rss_mib_select": rss, "checkpoint_bytes": 110, "model_and_optimizer_bytes": 100,
        "checkpoint_ratio": 1.1, "select_phases_s": {"train": 9.0},
        "load_average_1m_before": 3.5, "load_average_1m": 4.25,
    }  # fmt: skip


def test_section_shows_repeats_cpu_ratio_and_load_drift():
    points = [_point("parquet", 1000, 2, 0.95, 800.0), _point("parquet", 16000, 1, 0.85, 1000.0)]
    summary = summarise(points)["parquet"]
    assert summary["min_throughput_ratio"] == 0.85
    assert summary["rss_ratio_largest_vs_x1"] == 1.25
    data = {
        "machine": {"cpu": "x", "cores": 2, "memory_gib": 1, "python": "3.10", "tensorflow": "2",
                    "date": "d", "commit": "abc1234"},
        "command": "python -m benchmarks.stream_scale", "mode": "full", "chunk_rows": 1000,
        "candidates": 40, "data_write": {"seconds": 0, "chunks_generated": 0, "cache": "c"},
        "points": points, "summary": {"parquet": summary},
    }  # fmt: skip
    section = stream_section("stream_scale", data)
    assert "select(), plain, plain, select()" in section
    rows = [r for r in section.splitlines() if r.startswith("| parquet | 1000 |")]
    assert rows and "| 2 |" in rows[0] and "| 0.97 |" in rows[0] and "3.5 -> 4.25" in rows[0]
    assert "peak RSS, largest / x1 rows | 1.25 | <= 1.2 | **MISS**" in section
    for block in re.findall(r"(?:^\|.*\|$\n?)+", section, flags=re.M):
        assert len({r.count("|") for r in block.strip().splitlines()}) == 1, block
