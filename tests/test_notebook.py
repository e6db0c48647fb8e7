"""The quickstart notebook: generated reproducibly, committed clean, and runs end to end.

The slow test executes ``notebooks/quickstart.ipynb`` with nbclient in small mode
(``RECSEL_NOTEBOOK_SMALL=1``) in a temporary working directory, on a kernel that runs
this interpreter: a ``python3`` kernelspec pointing at ``sys.executable`` is installed
into a temporary prefix and put first on ``JUPYTER_PATH``, so a ``python3`` kernel
registered elsewhere on the machine (another Python, another venv) is never picked.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import sys
from types import ModuleType

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
GENERATOR = ROOT / "notebooks" / "make_quickstart.py"
OUTPUT_FILES = {
    "schema.pbtxt",
    "embedding_config.json",
    "selection.json",
    "feature_spec.json",
    "vocabularies",  # one file per vocabulary (issue 13)
    "report.html",
}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_quickstart", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_notebook_is_the_generators_output_without_outputs():
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert text == _generator().render(), (
        "notebooks/quickstart.ipynb is stale: run python notebooks/make_quickstart.py"
    )
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    first_import = next(
        line
        for cell in code
        for line in cell.source.splitlines()
        if line.startswith(("import ", "from "))
    )
    assert first_import.startswith("import recsel"), first_import
    assert len({cell.id for cell in nb.cells}) == len(nb.cells)


def test_check_mode_reports_a_stale_notebook(tmp_path, capsys):
    generator = _generator()
    path = tmp_path / "quickstart.ipynb"
    path.write_text("{}", encoding="utf-8")
    assert generator.main(["--check", "--output", str(path)]) == 1
    assert "stale" in capsys.readouterr().err
    path.unlink()
    assert generator.main(["--check", "--output", str(path)]) == 1  # a missing file is stale too
    path.write_text(generator.render(), encoding="utf-8")
    assert generator.main(["--check", "--output", str(path)]) == 0


def test_percent_source_becomes_markdown_and_code_cells():
    text = (
        "# header, skipped\n\n# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n# %%\nx = 1\n\nx\n"
    )
    nb = _generator().build_notebook(text)
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        ("markdown", "# Title\n\nSome *text*."),
        ("code", "x = 1\n\nx"),
    ]
    assert [c.id for c in nb.cells] == ["quickstart-00", "quickstart-01"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1\n", r"src.py: no '# %%' cell marker found"),
        ("# %% [raw]\nx\n", r"src.py:1: unknown cell marker '# %% \[raw\]'"),
        ("# %% [markdown]\n# ok\nnot a comment\n", r"src.py:3: markdown lines must be comments"),
        ("# %%\nx = 1\n# %%\n\n", r"src.py:3: the code cell starting here is empty"),
    ],
)
def test_malformed_source_is_rejected_with_its_line(text, message):
    with pytest.raises(ValueError, match=message):
        _generator().parse_percent(text, "src.py")


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch) -> str:
    """Installs a ``python3`` kernelspec for ``sys.executable`` first on JUPYTER_PATH."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path / "jupyter-prefix"
    install(prefix=str(prefix), kernel_name="python3")
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable, spec.argv
    return "python3"


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(out: dict) -> str:
    if out["output_type"] == "stream":
        return out["text"]
    return out.get("data", {}).get("text/plain", "")


@pytest.mark.slow
def test_notebook_runs_in_small_mode(tmp_path, monkeypatch, this_python_kernel):
    from nbclient import NotebookClient

    from recsel.spec.result import SelectionResult

    monkeypatch.setenv("RECSEL_NOTEBOOK_SMALL", "1")
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        startup_timeout=120,
        kernel_name=this_python_kernel,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

    outputs = _outputs(nb)
    assert not [out for out in outputs if out["output_type"] == "error"]
    text = "\n".join(_text(out) for out in outputs)
    html = "\n".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "small mode: True" in text

    # The selection was printed, as summary and as a table of rounds.
    result = SelectionResult.from_json(str(workdir / "runs/quickstart/outputs/selection.json"))
    assert f"Selected {len(result.selected)} of 8 features (in order):" in text
    assert all(name in text for name in result.selected)
    assert "p50 ms" in html and "in budget" in html
    assert result.budget["latency_ms"] > 0
    assert result.rounds[result.final_round].latency_ms_p50 <= result.budget["latency_ms"]

    # The pruned model scores exactly as the frozen gated one, and serves.
    gap = re.search(r"gated \(frozen\) vs pruned: (\S+)", text)
    assert gap and float(gap.group(1)) < 1e-4, gap
    assert "P(rating >= 4)" in text
    assert (workdir / "runs/quickstart/serving_model/saved_model.pb").is_file()

    # Outputs written, and the TPU configs built from them.
    out_dir = workdir / "runs/quickstart/outputs"
    assert {p.name for p in out_dir.iterdir()} == OUTPUT_FILES
    config = json.loads((out_dir / "embedding_config.json").read_text())
    assert [f["name"] for f in config["features"]] == [
        n for n in result.candidates if n in result.selected
    ]
    assert "FeatureConfig(table=TableConfig(" in text
    assert "keras-rs table:" in text

    # The report was displayed inline (escaped into an iframe's srcdoc).
    frames = [
        out["data"]["text/html"]
        for out in outputs
        if "srcdoc=" in out.get("data", {}).get("text/html", "")
    ]
    assert len(frames) == 1
    assert "section id=&quot;frontier&quot;" in frames[0] and "data:image/png;base64" in frames[0]
