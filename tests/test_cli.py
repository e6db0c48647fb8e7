"""The recsel command line: outputs on success, specific errors on bad input."""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsel.cli import (
    LatencyBudget,
    build_parser,
    main,
    parse_latency_budget,
    parse_latency_ms,
    parse_memory_bytes,
)
from recsel.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory):
    data = make_synthetic(
        n_rows=3000, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=0
    )
    path = tmp_path_factory.mktemp("data") / "train.parquet"
    data.frame.to_parquet(path)
    return path, data


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_select_writes_every_output(parquet_file, tmp_path, capsys):
    path, data = parquet_file
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        [
            "select",
            path,
            "--label",
            "label",
            "--num-features",
            "2",
            "--embedding-dim",
            "16",
            "--output-dir",
            out,
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert {p.name for p in out.iterdir()} >= {
        "schema.pbtxt",
        "embedding_config.json",
        "selection.json",
        "feature_spec.json",
        "report.html",
    }
    selection = json.loads((out / "selection.json").read_text())
    assert len(selection["selected"]) == 2
    assert set(selection["dims"]) == set(selection["selected"])
    assert "auc" in selection["metrics"] and selection["final_weights"]
    assert "Selected 2 of" in stdout
    assert not list(tmp_path.glob("out.staging-*")), "staging directory left behind"


def test_nonempty_output_dir_needs_overwrite(parquet_file, tmp_path, capsys):
    path, _ = parquet_file
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    code, _, stderr = _run(
        ["select", path, "--label", "label", "--output-dir", out, "--quiet"], capsys
    )
    assert code == 2 and "not empty" in stderr and "--overwrite" in stderr
    assert (out / "keep.txt").read_text() == "user data"


def test_spec_feature_missing_from_data(parquet_file, tmp_path, capsys):
    path, data = parquet_file
    spec = {
        "version": 1,
        "label": "label",
        "features": [
            {
                "name": data.informative[0],
                "kind": "categorical",
                "hash_buckets": 10,
                "embedding_dim": 8,
            },
            {"name": "ghost_feature", "kind": "numeric", "embedding_dim": 8},
        ],
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    code, _, stderr = _run(
        [
            "select",
            path,
            "--label",
            "label",
            "--features",
            spec_path,
            "--output-dir",
            tmp_path / "o",
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "ghost_feature" in stderr
    assert not (tmp_path / "o").exists()


def test_missing_and_non_binary_label(parquet_file, tmp_path, capsys):
    path, data = parquet_file
    code, _, stderr = _run(
        ["select", path, "--label", "clicked", "--output-dir", tmp_path / "o", "--quiet"], capsys
    )
    assert code == 2 and "clicked" in stderr
    frame = data.frame.copy()
    frame["label"] = np.arange(len(frame)) % 3
    bad = tmp_path / "ternary.parquet"
    frame.to_parquet(bad)
    code, _, stderr = _run(
        ["select", bad, "--label", "label", "--output-dir", tmp_path / "o", "--quiet"], capsys
    )
    assert code == 2 and "label" in stderr and "binary" in stderr.lower()


def test_k_larger_than_candidates(parquet_file, tmp_path, capsys):
    path, _ = parquet_file
    code, _, stderr = _run(
        [
            "select",
            path,
            "--label",
            "label",
            "--num-features",
            "99",
            "--output-dir",
            tmp_path / "o",
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "99" in stderr and "candidates" in stderr


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, stderr = _run(
        ["select", empty, "--label", "label", "--output-dir", tmp_path / "o"], capsys
    )
    assert code == 2 and "empty.csv" in stderr


def test_nan_in_numeric_raises_or_imputes(parquet_file, tmp_path, capsys):
    path, data = parquet_file
    numeric = next(c for c in data.feature_columns() if data.frame[c].dtype.kind == "f")
    frame = data.frame.copy()
    frame.loc[5, numeric] = np.nan
    frame.loc[9, numeric] = np.inf
    bad = tmp_path / "nan.parquet"
    frame.to_parquet(bad)
    code, _, stderr = _run(
        ["select", bad, "--label", "label", "--output-dir", tmp_path / "o", "--quiet"], capsys
    )
    assert code == 2 and numeric in stderr and "impute" in stderr
    code, _, stderr = _run(
        [
            "select",
            bad,
            "--label",
            "label",
            "--nan-policy",
            "impute",
            "--num-features",
            "1",
            "--embedding-dim",
            "8",
            "--output-dir",
            tmp_path / "o2",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("text", "ms"), [("3ms", 3.0), ("500us", 0.5), ("0.01s", 10.0), ("2", 2.0)]
)
def test_latency_units(text, ms):
    assert parse_latency_ms(text) == pytest.approx(ms)


def test_latency_budget_as_time_or_share_of_the_full_model():
    assert parse_latency_budget("3ms") == LatencyBudget(ms=3.0)
    assert parse_latency_budget("50%") == LatencyBudget(fraction=0.5)
    assert parse_latency_budget(" 100 % ") == LatencyBudget(fraction=1.0)


@pytest.mark.parametrize("text", ["0%", "150%", "half%", "-5%"])
def test_bad_relative_budget_is_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"percentage in \(0, 100\]"):
        parse_latency_budget(text)


def test_memory_units():
    assert parse_memory_bytes("2GB") == 2e9 and parse_memory_bytes("1MiB") == 2**20
    # Kubernetes' and Vertex's spellings: decimal letters, binary with "i".
    assert parse_memory_bytes("2G") == 2e9 and parse_memory_bytes("2Gi") == 2**31
    assert parse_memory_bytes("512M") == 512e6 and parse_memory_bytes("64Ki") == 2**16


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (parse_memory_bytes, "lots", r"'lots' is not a number with a unit \(e.g. 2GB\)"),
        (parse_memory_bytes, "-5MB", r"Memory budget must be positive, got '-5MB'"),
        (parse_latency_ms, "-1ms", r"Latency budget must be positive, got '-1ms'"),
        (parse_latency_ms, "fast", r"'fast' is not a number with a unit \(e.g. 3ms\)"),
    ],
)
def test_bad_quantities_say_what_a_good_one_looks_like(parse, text, message):
    # A memory budget's error gave a latency ("e.g. 3ms") as its example.
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


@pytest.mark.parametrize("text", ["3 parsecs", "-1ms", "0ms", "fast"])
def test_bad_budget_is_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_latency_ms(text)


def test_bad_budget_unit_on_the_command_line(parquet_file, tmp_path, capsys):
    path, _ = parquet_file
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "select",
                str(path),
                "--label",
                "label",
                "--latency-budget",
                "3 fortnights",
                "--output-dir",
                str(tmp_path / "o"),
            ]
        )
    assert exit_info.value.code == 2
    assert "unknown unit" in capsys.readouterr().err


def test_pandas_frame_unchanged_by_select(parquet_file):
    path, _ = parquet_file
    before = pd.read_parquet(path)
    assert before.shape[0] == 3000


def test_custom_tower_flag(parquet_file, tmp_path, capsys):
    path, _ = parquet_file
    towers = Path(__file__).parent / "testdata" / "towers.py"
    out = tmp_path / "tower_out"
    argv = ["select", path, "--label", "label", "--num-features", "2", "--quiet"]
    code, _, stderr = _run([*argv, "--tower", f"{towers}:build_tower", "--output-dir", out], capsys)
    assert code == 0, stderr
    selection = json.loads((out / "selection.json").read_text())
    assert selection["config"]["tower"] == f"{towers}:build_tower"

    bad = tmp_path / "bad_tower_out"
    code, _, stderr = _run(
        [*argv, "--tower", f"{towers}:build_two_logits", "--output-dir", bad], capsys
    )
    assert code == 2 and "build_two_logits" in stderr and "[batch, 1]" in stderr
    assert not bad.exists(), "a failed run must not leave an output directory"


@pytest.mark.slow  # a fresh interpreter (TensorFlow import) plus a selection: ~40 s
def test_piped_select_writes_short_plain_lines(parquet_file, tmp_path):
    """Not a terminal (CI, TFX and Vertex logs, | tee): no carriage-return bar frames."""
    import os
    import subprocess
    import sys

    path, _ = parquet_file
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RECSEL_VERBOSE"}
    argv = ["select", str(path), "--label", "label", "--num-features", "2",
            "--embedding-dim", "16", "--output-dir", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "recsel", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600,
        check=False,
    )
    text = done.stdout.decode()
    assert done.returncode == 0, text
    assert "\r" not in text
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 300, max(lines, key=len)
    # Progress is still there, as plain lines: at least one per round of training.
    assert any(line.startswith("recsel: round 1/") and "steps (" in line for line in lines), text
    assert any(line.startswith("recsel: round 1: 2/") for line in lines), text
    assert "Selected 2 of" in text

    assert (out / "report.html").is_file()


def test_report_command_on_a_cli_output_dir(parquet_file, tmp_path, capsys):
    path, _ = parquet_file
    out = tmp_path / "out"
    code, _, stderr = _run(
        ["select", path, "--label", "label", "--num-features", "2", "--embedding-dim", "16",
         "--output-dir", out, "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, stderr
    code, stdout, stderr = _run(["report", out], capsys)
    assert code == 0, stderr
    selection = json.loads((out / "selection.json").read_text())
    assert f"Selection in {out}" in stdout
    assert f"Selected 2 of {len(selection['candidates'])} features" in stdout
    assert f"Report: {out / 'report.html'}" in stdout
    assert "Dropped, " in stdout
    assert set(selection["dropped_reasons"]) == set(selection["candidates"]) - set(
        selection["selected"]
    )
    assert len(selection["feature_curve"]) == 2


def test_report_command_without_a_selection(tmp_path, capsys):
    code, _, stderr = _run(["report", tmp_path], capsys)
    assert code == 2 and "no selection.json in it or below it" in stderr
    code, _, stderr = _run(["report", tmp_path / "missing"], capsys)
    assert code == 2 and "no such directory" in stderr


def test_min_count_flag_documents_the_inference_default():
    from recsel.inputs.inference import DEFAULT_MIN_COUNT

    parser = build_parser()
    select_parser = parser._subparsers._group_actions[0].choices["select"]
    (action,) = [a for a in select_parser._actions if "--min-count" in a.option_strings]
    assert f"default {DEFAULT_MIN_COUNT}" in action.help
    args = parser.parse_args(
        ["select", "x.csv", "--label", "y", "--output-dir", "o", "--min-count", "1"]
    )
    assert args.min_count == 1


def test_list_columns_split_csv_text_cells_into_multi_valent_candidates(
    parquet_file, tmp_path, capsys
):
    path, data = parquet_file
    frame = data.frame.copy()
    lists = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()]
    assert lists, "the synthetic data holds a list column"
    column = lists[0]
    frame[column] = frame[column].map(lambda cell: "|".join(map(str, cell)))
    csv = tmp_path / "train.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out"
    code, _, err = _run(
        ["select", csv, "--label", data.label, "--num-features", 2, "--output-dir", out]
        + ["--list-columns", column, "--quiet"],
        capsys,
    )
    assert code == 0, err
    spec = json.loads((out / "feature_spec.json").read_text())
    (listed,) = [f for f in spec["features"] if f["name"] == column]
    assert listed["kind"] == "multi_categorical" and listed["max_valency"] > 1
    # Parquet holds lists as lists, and a stream cannot split cells: both say so.
    code, _, err = _run(
        ["select", path, "--label", data.label, "--num-features", 2, "--output-dir"]
        + [tmp_path / "o2", "--list-columns", column],
        capsys,
    )
    assert code == 2 and "--list-columns splits CSV text cells, but this is parquet" in err
    code, _, err = _run(
        ["select", csv, "--label", data.label, "--num-features", 2, "--output-dir"]
        + [tmp_path / "o3", "--list-columns", column, "--stream", "on"],
        capsys,
    )
    assert code == 2 and "--list-columns needs the whole table in memory" in err


def test_top_level_help_is_plain_text_with_examples():
    text = build_parser().format_help()
    assert "``" not in text  # the module docstring's reST markup stays out of --help
    assert "examples:" in text and "recsel select data.parquet --label clicked" in text
    for command in ("select", "demo", "report"):
        assert command in text
