"""The ensembled selection Beam job and its consensus rule.

The end-to-end test runs 3 selections on the multi_processing DirectRunner (2 workers) on
synthetic data with planted truth (slow); the rule is tested on hand-made results.
"""

import json
import math
import pathlib
import shutil
import tarfile

import numpy as np
import pytest

from pipelines.ensemble_job import build_parser
from pipelines.ensemble_job import main as ensemble_main
from recsel.beam import RULE, SHORT_RULE, consensus, jaccard, stability
from recsel.beam._consensus import consensus_result
from recsel.beam.ensemble import EnsembleJob, refit_config, run_ensemble, shard_rows
from recsel.data.synthetic import make_synthetic
from recsel.spec import contract as _jsonschema
from recsel.spec.config import SelectionConfig
from recsel.spec.result import RoundRecord, SelectionResult

CANDIDATES = ["a", "b", "c", "d", "e", "f"]


def _run(selected, dims=None, candidates=CANDIDATES, auc=0.8, label="y"):
    dims = dims or {n: 8 for n in selected}
    return SelectionResult(
        label=label,
        candidates=list(candidates),
        selected=list(selected),
        dims=dims,
        full_dims={c: 32 for c in candidates},
        selection_weights={n: 0.5 for n in selected},
        final_weights={c: (1.0 if c in selected else 0.0) for c in candidates},
        rounds=[RoundRecord(0, list(selected), dims, auc, 0.5)],
        metrics={"auc": auc, "log_loss": 0.5},
        trajectory={"steps": [], "weights": {}},
        config=SelectionConfig(num_features=len(selected)).to_dict(),
    )


# --------------------------------------------------------------------------- the rule
def test_votes_decide_first():
    runs = [_run(["a", "b", "c"]), _run(["a", "b", "d"]), _run(["a", "c", "e"])]
    chosen = consensus(runs, dim_multiple=8, chunk_size=8)
    assert chosen.selected == ["a", "b", "c"]  # 3, 2 and 2 votes beat d and e (1 each)
    assert chosen.votes["a"] == 1.0 and math.isclose(chosen.votes["d"], 1 / 3)
    assert chosen.votes["f"] == 0.0 and chosen.k == 3


def test_ties_are_broken_by_mean_rank_with_unselected_counting_k_plus_one():
    # b and c both have 2 votes. b: ranks 3, 3, unselected (4) -> 3.33; c: 2, 2, 4 -> 2.67.
    runs = [_run(["a", "c", "b"]), _run(["a", "c", "b"]), _run(["a", "d", "e"])]
    chosen = consensus(runs, 8, 8)
    assert chosen.mean_ranks["b"] == pytest.approx(10 / 3)
    assert chosen.mean_ranks["c"] == pytest.approx(8 / 3)
    assert chosen.selected == ["a", "c", "b"]
    # b, c and d all have 2 votes; mean ranks b 8/3 < c 3 < d 10/3, so d is left out.
    other = consensus([_run(["a", "b", "c"]), _run(["a", "b", "d"]), _run(["a", "c", "d"])], 8, 8)
    assert other.selected == ["a", "b", "c"]
    assert other.mean_ranks["c"] == pytest.approx(3.0)


def test_full_ties_fall_back_to_candidate_order():
    runs = [_run(["b", "a"]), _run(["a", "b"])]  # same votes and mean rank 1.5
    assert consensus(runs, 8, 8).selected == ["a", "b"]


def test_k_is_the_median_selected_count_halves_rounding_up():
    runs = [_run(["a"]), _run(["a", "b", "c"]), _run(["a", "b", "c", "d", "e"])]
    assert consensus(runs, 8, 8).k == 3
    assert consensus(runs[:2], 8, 8).k == 2  # median 2.0
    assert consensus([_run(["a", "b"]), _run(["a", "b", "c"])], 8, 8).k == 3  # median 2.5


def test_width_is_the_median_of_the_selecting_runs_rounded_up():
    runs = [
        _run(["a", "b"], {"a": 8, "b": 8}),
        _run(["a", "b"], {"a": 16, "b": 24}),
        _run(["a", "c"], {"a": 24, "c": 32}),
    ]
    chosen = consensus(runs, 8, 8)
    assert chosen.dims == {"a": 16, "b": 16}  # b: median(8, 24) = 16 (c's run does not count)
    assert consensus(runs[:2], 8, 8).dims == {"a": 16, "b": 16}  # a: median(8, 16) = 12 -> 16
    assert consensus(runs[:2], 8, 16).dims == {"a": 16, "b": 16}
    assert consensus(runs[:2], dim_multiple=32, chunk_size=8).dims == {"a": 32, "b": 32}


def test_jaccard_and_stability():
    assert jaccard(["a", "b"], ["b", "c"]) == pytest.approx(1 / 3)
    assert jaccard(["a"], ["a"]) == 1.0 and jaccard(["a"], ["b"]) == 0.0
    mean, pairs = stability([["a", "b"], ["a", "b"], ["b", "c"]])
    assert pairs == [[0, 1, 1.0], [0, 2, pytest.approx(1 / 3)], [1, 2, pytest.approx(1 / 3)]]
    assert mean == pytest.approx((1 + 2 / 3) / 3)
    assert stability([["a"]]) == (None, [])


def test_runs_over_different_candidates_are_rejected():
    with pytest.raises(ValueError, match="share one feature set"):
        consensus([_run(["a"]), _run(["a"], candidates=["a", "z"])], 8, 8)
    with pytest.raises(ValueError, match="at least one"):
        consensus([], 8, 8)


def test_consensus_result_is_valid_and_labels_its_metrics():
    runs = [_run(["a", "b"], auc=0.7), _run(["a", "c"], auc=0.9), _run(["a", "b"], auc=0.8)]
    chosen = consensus(runs, 8, 8)
    plain = consensus_result(runs, chosen, None, {"seed": 0})
    _jsonschema.validate(plain.to_dict(), "selection.schema.json", "consensus")
    assert "auc" not in plain.metrics and plain.metrics["run_mean_auc"] == pytest.approx(0.8)
    assert "per-run means" in plain.provenance["metrics_source"]
    refit = _run(["b", "a"], auc=0.85)
    measured = consensus_result(runs, chosen, refit, {})
    assert measured.metrics["auc"] == 0.85 and measured.rounds[0].auc == 0.85
    assert measured.selected == ["a", "b"] and measured.final_weights["b"] == pytest.approx(2 / 3)
    assert "refit" in measured.provenance["metrics_source"]


# --------------------------------------------------------------------------- job plumbing
def test_shards_are_disjoint_and_cover_all_rows():
    parts = [shard_rows(100, i, 3, seed=5) for i in range(3)]
    assert sum(len(p) for p in parts) == 100
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    with pytest.raises(ValueError, match=r"shard must be in \[0, 3\)"):
        shard_rows(100, 3, 3, seed=5)


def test_run_specs_seeds_and_shards():
    job = EnsembleJob("x", "y", "out", num_runs=3, config=SelectionConfig(seed=7), shards=True)
    specs = job.run_specs()
    assert [s["seed"] for s in specs] == [7, 8, 9] and [s["shard"] for s in specs] == [0, 1, 2]
    assert all(s["num_shards"] == 3 for s in specs)
    with pytest.raises(ValueError, match="at least 2 runs"):
        EnsembleJob("x", "y", "out", num_runs=1)


def test_list_columns_are_refused_for_a_streamed_ensemble():
    # The frame path splits the cells; a stream cannot, so the job says so before launch.
    with pytest.raises(ValueError, match="--list-columns needs the whole table in memory"):
        EnsembleJob("x.csv", "y", "out", list_columns=("genres",), stream="on")
    assert EnsembleJob("x.csv", "y", "out", list_columns=("genres",), stream="off").list_columns


def test_beam_options_pass_through_and_are_not_taken_for_ours():
    args, beam_args = build_parser().parse_known_args(
        ["--input", "gs://b/t", "--label", "clicked", "--num-runs", "4", "--num-features", "9",
         "--output-dir", "gs://b/o", "--runner=DataflowRunner", "--project=p", "--region=r",
         "--temp_location=gs://b/tmp", "--setup_file=./setup.py", "--labels", "team=ml"]
    )  # fmt: skip
    assert (args.label, args.num_runs, args.num_features) == ("clicked", 4, 9)
    assert beam_args == [
        "--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/tmp",
        "--setup_file=./setup.py", "--labels", "team=ml",
    ]  # fmt: skip


def test_non_empty_output_dir_fails_before_launching(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    job = EnsembleJob(str(tmp_path / "missing.parquet"), "y", str(tmp_path / "out"))
    with pytest.raises(FileExistsError, match="not empty"):
        run_ensemble(job)


def test_setup_file_ships_the_package_and_its_schemas(tmp_path):
    # What Dataflow does with --setup_file: Beam's stager builds an sdist to install on workers.
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.stager import Stager

    root, src = pathlib.Path(__file__).resolve().parents[2], tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "recsel", src / "recsel", ignore=ignore)  # follows recsel/schemas
    staged = tmp_path / "staged"
    staged.mkdir()
    Stager.create_job_resources(PipelineOptions([f"--setup_file={src / 'setup.py'}"]), str(staged))
    (sdist,) = staged.glob("recsel-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"recsel/beam/ensemble.py", "recsel/beam/prune_dataset.py"} <= names
    assert "recsel/schemas/selection.schema.json" in names


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_ensemble_job_recovers_planted_features(tmp_path, capsys):
    data = make_synthetic(
        n_rows=20_000, n_informative=8, n_duplicates=2, n_noise=8, n_traps=2, seed=0
    )
    path = tmp_path / "data.parquet"
    data.frame.to_parquet(path)
    out = tmp_path / "out"
    code = ensemble_main(
        ["--input", str(path), "--label", data.label, "--num-runs", "3", "--num-features", "8",
         "--embedding-dim", "16", "--output-dir", str(out),
         "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )  # fmt: skip
    assert code == 0
    for name in ("schema.pbtxt", "embedding_config.json", "selection.json", "feature_spec.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "ensemble.json").read_text())
    runs = [SelectionResult.from_json(str(out / "runs" / f"run-{i}.json")) for i in range(3)]
    assert [r.config["seed"] for r in runs] == [0, 1, 2]
    assert [r["selected"] for r in record["runs"]] == [r.selected for r in runs]
    mean, pairs = stability([r.selected for r in runs])
    assert record["jaccard_mean"] == pytest.approx(mean) and record["jaccard_pairs"] == pairs
    assert record["rule"] == RULE
    result = SelectionResult.from_json(str(out / "selection.json"))
    expected = consensus(runs, 8, 8)
    assert result.selected == expected.selected and result.dims == expected.dims
    group_of = {c: g for g, members in data.groups().items() for c in members}
    assert {group_of.get(s) for s in result.selected} == set(data.informative), result.selected
    assert result.metrics["auc"] > 0.75 and "refit" in result.provenance["metrics_source"]
    report = (out / "report.html").read_text()
    assert "Ensemble stability" in report and "selection stability" in report
    assert not (tmp_path / "out.checkpoint").exists()  # run checkpoints are removed on success
    printed = capsys.readouterr().out
    assert "Mean pairwise Jaccard similarity of the runs" in printed
    # recsel report reads the ensemble's layout: summary, stability and report path.
    from recsel.cli import main as recsel_main

    assert recsel_main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Selected {len(result.selected)} of {len(result.candidates)} features" in printed
    # The rule in short (the whole rule, RULE, is in ensemble.json and the report).
    summary = f"Ensemble of 3 runs (consensus: {SHORT_RULE}), mean pairwise Jaccard {mean:.3f}"
    assert summary in printed and len(summary) < 120
    assert f"Report: {out / 'report.html'}" in printed


@pytest.mark.parametrize(
    "budget",
    [
        {"latency_budget_ms": 3.0},
        {"latency_budget_fraction": 0.5},
        {"memory_budget_bytes": 1e6, "features_per_round": 2},
    ],
)
def test_refit_keeps_the_consensus_without_a_budget(budget):
    """A budget left in the refit's config would start new rounds over the consensus."""
    config = refit_config(SelectionConfig(feature_fraction=0.5, dim_fraction=0.3, **budget), 4)
    assert not config.has_budget and config.features_per_round is None
    assert config.num_features == 4 and config.feature_fraction is None
    assert config.dim_fraction == 1.0
