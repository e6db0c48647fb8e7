"""The latency-budget comparison of ``compare_methods``: every seed, one joint verdict."""

from __future__ import annotations

import json
import time

import pytest

from benchmarks import render
from benchmarks._compare_extras import _joint_verdict
from benchmarks.compare_methods import CompareSettings, compare_dataset, payload
from benchmarks.datasets import load_dataset
from recsel.cost import ServingTarget

pytestmark = pytest.mark.filterwarnings("ignore:recsel. .* training rows are short:UserWarning")


def _sleeper(ms: float) -> ServingTarget:
    def serve(examples):
        time.sleep(ms / 1000.0)
        return {"p": examples}

    return ServingTarget(serve, [b"x"])


def test_joint_verdict_judges_every_model_in_the_same_passes():
    finals = {"all": _sleeper(8.0), "cheapest": _sleeper(1.0), "a": _sleeper(3.0),
              "b": _sleeper(6.5)}  # fmt: skip
    rows = [{"method": m} for m in ("all", "a", "b", "c")]
    verdict = _joint_verdict(finals, rows, fraction=0.5, batch=1)
    assert verdict["joint_budget_ms"] == pytest.approx(4.5, abs=0.8)  # 1 + 0.5 * (8 - 1)
    within = {r["method"]: r["joint_within_budget"] for r in rows}
    assert within == {"all": False, "a": True, "b": False, "c": False}  # c: nothing timed
    assert (
        rows[1]["joint_p50_ms"] == pytest.approx(3.0, abs=0.8) and rows[3]["joint_p50_ms"] is None
    )


@pytest.mark.slow
def test_budget_comparison_runs_on_every_seed_and_renders(tmp_path):
    data = load_dataset("synthetic", rows=1600, candidates=5)
    settings = CompareSettings(
        seeds=(0, 1), k_fractions=(0.5,), methods=("all", "mutual_information", "recsel"),
        warmup=False, budget=True, serving_batch_size=64,
    )  # fmt: skip
    section = compare_dataset(data, settings, log=lambda _: None)
    assert [b["seed"] for b in section["budget_seeds"]] == [0, 1]
    assert section["budget"] is section["budget_seeds"][0]
    for budget in section["budget_seeds"]:
        assert budget["joint_min_ms"] > 0 and budget["joint_full_ms"] > 0
        methods = {r["method"]: r for r in budget["rows"]}
        assert {"all", "mutual_information", "recsel"} <= set(methods)
        assert methods["all"]["joint_p50_ms"] > 0
    doc = payload([section], "python -m benchmarks.compare_methods --test", "quick", (0, 1))
    (tmp_path / "compare_methods.json").write_text(json.dumps(doc))
    markdown = render.render_markdown(render.load_results(tmp_path))
    assert "Latency budget over seeds 0, 1" in markdown and "Within joint budget" in markdown
    assert "Target: recsel's mean test AUC under the budget" in markdown
