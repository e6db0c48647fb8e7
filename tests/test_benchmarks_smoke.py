"""Smoke tests of the benchmark harness: well-formed JSON and markdown, not the targets."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmarks import baselines as bl
from benchmarks import render, run_all
from benchmarks.compare_methods import CompareSettings, compare_dataset, ks_for, payload
from benchmarks.datasets import load_dataset, synthetic_shape
from benchmarks.dims import embedding_params, scaled_widths, width_variants
from benchmarks.scaling import slope

# Tiny data makes select() shrink its batch to fit one pass; its warning says so.
pytestmark = pytest.mark.filterwarnings("ignore:recsel. .* training rows are short:UserWarning")


def _tables_are_rectangular(markdown: str) -> None:
    """Every markdown table row has as many cells as its header."""
    for block in re.findall(r"(?:^\|.*\|$\n?)+", markdown, flags=re.M):
        rows = [r for r in block.strip().splitlines()]
        widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, f"ragged table:\n{block}"
        assert set(rows[1].replace("|", "")) == {"-"}, f"no header rule:\n{block}"


@pytest.fixture(scope="module")
def tiny_section():
    # 1600 rows: 1024 training rows hold a one-pass schedule for k=3 (800 do not).
    data = load_dataset("synthetic", rows=1600, candidates=6)
    settings = CompareSettings(
        seeds=(0,),
        k_fractions=(0.5,),
        methods=("all", "random", "mutual_information", "recsel"),
        warmup=False,
        cost_repeats=2,
    )
    return data, compare_dataset(data, settings, log=lambda _: None)


def test_compare_harness_writes_wellformed_json_and_markdown(tiny_section, tmp_path):
    data, section = tiny_section
    ks = ks_for(len(data.features), (0.5,))
    assert ks == [3] and ks_for(6, (0.25, 0.5)) == [2, 3]
    # Two interleaved timings: one extra plain run, and recsel's unit is the median of both.
    extra = section["reference_repeat_seconds"]["0"]
    first = section["reference_seconds"]["0"]
    (ours,) = [r for r in section["runs"] if r["method"] == "recsel"]
    assert len(extra) == 1 and ours["unit_seconds"] == pytest.approx(
        (first + extra[0]) / 2, abs=2e-3
    )
    assert ours["cost_ratio"] == pytest.approx(
        ours["selection_seconds"] / ours["unit_seconds"], rel=2e-3
    )
    doc = payload([section], "python -m benchmarks.compare_methods --test", "quick", (0,))
    path = tmp_path / "compare_methods.json"
    path.write_text(json.dumps(doc))  # must be JSON-serialisable as is
    loaded = json.loads(path.read_text())
    got = loaded["datasets"][0]
    assert got["ks"] == ks and got["candidates"] == len(data.features) == 6
    pairs = {(e["method"], e["k"]) for e in got["summary"]}
    for method in ("random", "mutual_information", "recsel"):
        assert {(method, k) for k in ks} <= pairs
    assert ("all", 6) in pairs
    for run in got["runs"]:
        assert 0.0 <= run["test_auc"] <= 1.0 and run["test_log_loss"] > 0
        assert set(run["selected"]) <= set(data.features.names)
        assert 0.0 <= run["group_recall"] <= 1.0  # planted truth is scored on synthetic data
        if run["method"] != "all":
            assert len(run["selected"]) == run["k"]
    recsel = [r for r in got["runs"] if r["method"] == "recsel"]
    assert all(r["selection_seconds"] > 0 and r["cost_ratio"] > 0 for r in recsel)
    assert {t["met"] for t in got["targets"]} <= {True, False}
    assert any("mutual_information" in t["target"] for t in got["targets"])
    assert not any("greedy" in t["target"] for t in got["targets"])  # greedy was not run
    (tmp_path / "other.json").write_text(json.dumps({"command": "x", "n": 3}))
    markdown = render.render_markdown(render.load_results(tmp_path))
    assert "## compare_methods" in markdown and "## other" in markdown
    assert "### synthetic" in markdown and "| recsel |" in markdown
    assert markdown.count("k = ") == len(ks)
    _tables_are_rectangular(markdown)


def test_render_known_unknown_and_broken_files(tmp_path):
    (tmp_path / "layer_overhead.json").write_text(json.dumps({
        "machine": {"cpu": "test cpu", "cores": 2}, "command": "python -m x",
        "median_step_ms": {"gated": 2.2, "plain": 2.0}, "ratio": 1.1 + 1e-9, "target": 1.1,
    }))  # fmt: skip
    (tmp_path / "prune_memory.json").write_text(json.dumps({
        "machine": {"platform": "linux"}, "command": "python -m y",
        "results": [{"rows": 10, "peak_mib": 12.5, "formats": ["a", "b"]}, {"rows": 20}],
    }))  # fmt: skip
    (tmp_path / "run_all.json").write_text(json.dumps({
        "machine": {"cpu": "test cpu"}, "command": "python -m benchmarks.run_all --quick",
        "mode": "quick", "total_seconds": 1500.0, "quick_limit_minutes": 20, "steps": [
            {"name": "layer_overhead", "command": "python -m x --quick", "seconds": 9.0,
             "returncode": 0},
            {"name": "dims", "command": "python -m benchmarks.dims --quick", "seconds": 5.0,
             "returncode": 1},
        ],
    }))  # fmt: skip
    state = {"state": "quiet", "pruned_p50_ms_one_shot_median": 2.0,
             "pruned_p50_ms_side_by_side_median": 1.9, "full_p50_ms_side_by_side_median": 7.0,
             "one_shot_ratio_median": 0.33, "one_shot_ratio_spread": 0.7,
             "side_by_side_ratio_median": 0.27, "side_by_side_ratio_spread": 0.4}  # fmt: skip
    (tmp_path / "latency_noise.json").write_text(json.dumps({
        "machine": {"cpu": "test cpu"}, "command": "python -m benchmarks.latency_noise",
        "batch_size": 512, "candidates": 34, "kept": ["f1", "f2"],
        "full_model_p50_ms_at_start": 6.0, "states": [state],
    }))  # fmt: skip
    out = render.write_benchmarks(tmp_path, tmp_path / "BENCHMARKS.md")
    text = out.read_text()
    assert "| quiet | 2.000 | 1.900 | 7.000 | 0.330 | 0.70 | 0.270 | 0.40 |" in text
    assert "tailored rendering failed" not in text
    assert "**25.0 min**" in text and "Quick-mode limit 20 min: **MISS**" in text
    assert "another run (dated in its section): `-m x`" in text and "no results file" in text
    assert "ratio **1.100**" in text and "**MISS**" in text  # 1.1 + 1e-9 misses <= 1.1
    assert "| rows | peak_mib | formats |" in text and "| 10 | 12.5 | a, b |" in text
    assert "Machine: platform linux." in text
    _tables_are_rectangular(text)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        render.load_results(tmp_path)


def test_mutual_information_ranks_planted_signal_first():
    data = load_dataset("synthetic", rows=3_000, candidates=12)
    ranking = bl.mutual_information_ranking(data.train, data.features)
    informative = set(data.truth.informative) | set(data.truth.duplicates)
    assert ranking.order[0] in informative
    assert sorted(ranking.order) == sorted(data.features.names)
    assert min(ranking.scores.values()) >= 0


def test_width_helpers_match_parameter_counts():
    data = load_dataset("synthetic", rows=500, candidates=6, embedding_dim=32)
    features = data.features
    recsel_dims = {n: 8 for n in features.names}
    variants = width_variants(features, recsel_dims)
    target = embedding_params(features, recsel_dims)
    for name in ("uniform", "heuristic_scaled"):
        got = embedding_params(features, variants[name])
        assert abs(got - target) / target < 0.05, (name, got, target)
    assert embedding_params(features, variants["full_width"]) == embedding_params(features)
    with pytest.raises(ValueError, match="below one column per feature"):
        scaled_widths(features, {n: 1.0 for n in features.names}, 1)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown methods"):
        CompareSettings(methods=("all", "lasso"))
    with pytest.raises(ValueError, match="'all'"):
        CompareSettings(methods=("recsel",))
    with pytest.raises(ValueError, match="cost_repeats must be at least 1"):
        CompareSettings(cost_repeats=0)
    with pytest.raises(ValueError, match="add 'recsel'"):
        CompareSettings(methods=("all", "recsel_ensemble"))
    with pytest.raises(ValueError, match="Unknown benchmark dataset"):
        load_dataset("criteo")
    with pytest.raises(ValueError, match="at least 4 candidates"):
        synthetic_shape(3)
    with pytest.raises(ValueError, match="Unknown benchmark"):
        run_all.command_for("nope", quick=True)


def test_scaling_slope_and_run_all_commands():
    x = [1.0, 4.0, 16.0]
    assert slope(x, [v**2 for v in x]) == pytest.approx(2.0)
    assert slope([5.0, 5.0], [1.0, 2.0]) is None
    assert np.isclose(slope(x, [3.0, 3.0, 3.0]), 0.0)
    assert run_all.command_for("compare_methods", quick=True)[-1] == "--quick"
    assert "compare_methods" in run_all.available()
