"""The wide candidate sweep's targets and its BENCHMARKS.md section (no training here)."""

import json

from benchmarks import render
from benchmarks.scaling import slope, wide_targets


def _point(candidates: int, first: float, rss: float, ratio: float) -> dict:
    side = {"import_seconds": 4.0, "prepared_since_start": first - 3, "tracing_seconds": 0.5,
            "graph_ops": 1500 + candidates, "trace_count": 1, "median_step_ms": 10.0,
            "peak_rss_mib": rss, "first_step_done_since_start": first, "load_average": [2.0]}  # fmt: skip
    return {"candidates": candidates, "rows": 100_000, "k": 8, "gated": side,
            "plain": {**side, "median_step_ms": 10.0 / ratio}, "steps": {"ratio": ratio},
            "step_ratio_interleaved": ratio, "step_ratio_separate": ratio}  # fmt: skip


def test_wide_targets_flag_misses_at_400_candidates():
    points = [_point(40, 10.0, 900.0, 1.2), _point(400, 31.0, 2000.0, 1.05)]
    exps = {"first_step": slope([40, 400], [10.0, 31.0])}
    targets = {t["target"].split(",")[0]: t for t in wide_targets(points, exps)}
    assert not targets["start -> first step done"]["met"]  # 31 s > 30 s
    assert targets["peak RSS"]["met"] and targets["gated / plain step"]["met"]
    assert (
        exps["first_step"] < 0.7
        and targets["growth exponent of start -> first step in candidates"]["met"]
    )
    # No 400-candidate point: the targets are not met (never silently passed).
    assert not any(t["met"] for t in wide_targets(points[:1], {"first_step": None}))


def test_wide_section_renders_with_targets(tmp_path):
    points = [_point(c, 5.0 + c / 40, 800.0 + c, 1.05) for c in (40, 160, 400)]
    x = [p["candidates"] for p in points]
    exps = {"first_step": slope(x, [p["gated"]["first_step_done_since_start"] for p in points])}
    wide = {"machine": {"cpu": "test cpu", "cores": 2}, "command": "python -m benchmarks.scaling --wide",
            "load_average_at_start": [1.0, 1.0, 1.0], "points": points, "exponents": exps,
            "targets": wide_targets(points, exps)}  # fmt: skip
    (tmp_path / "scaling.json").write_text(json.dumps({"wide": wide, "points": []}))
    text = render.write_benchmarks(tmp_path, tmp_path / "BENCHMARKS.md").read_text()
    assert "### Hundreds of candidates (100k rows)" in text
    assert "tailored rendering failed" not in text
    assert "| 400 |" in text and "met" in text
    for line in text.splitlines():
        if line.startswith("| 400 |"):
            assert line.count("|") == 16  # 15 columns


def test_wide_section_lists_cpu_and_streamed_ratios(tmp_path):
    points = [_point(c, 5.0 + c / 40, 800.0 + c, 1.05) for c in (40, 400)]
    for p, cpu, streamed in zip(points, (1.041, 1.062), (1.023, 1.087), strict=True):
        p["steps"].update(cpu_ratio=cpu, streamed={"ratio": streamed})
    exps = {"first_step": slope([40, 400], [6.0, 15.0])}
    wide = {"machine": {"cpu": "test cpu", "cores": 2}, "command": "python -m benchmarks.scaling --wide",
            "load_average_at_start": [1.0, 1.0, 1.0], "points": points, "exponents": exps,
            "targets": wide_targets(points, exps)}  # fmt: skip
    (tmp_path / "scaling.json").write_text(json.dumps({"wide": wide, "points": []}))
    text = render.write_benchmarks(tmp_path, tmp_path / "BENCHMARKS.md").read_text()
    assert "40: CPU 1.041, streamed 1.023; 400: CPU 1.062, streamed 1.087." in text
