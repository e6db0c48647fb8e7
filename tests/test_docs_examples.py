"""The README's and docs' Python examples use names that exist, and the first one runs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_FROM = re.compile(r"^\s*from (recsel[\w.]*) import ([\w, ()]+)", re.M)


def _python_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in DOCS:
        for block in _python_blocks(path):
            for module, names in _FROM.findall(block):
                for name in names.replace("(", "").replace(")", "").split(","):
                    if name.strip():
                        found.append((path.name, module, name.strip()))
    return found


def test_the_docs_hold_python_examples_that_import_recsel():
    assert len(_imports()) >= 10  # the check below has something to check


@pytest.mark.parametrize(("doc", "module", "name"), _imports())
def test_every_name_a_python_example_imports_exists(doc, module, name):
    # README once imported split_frame from recsel.inputs.tabular, where it no longer is.
    assert hasattr(importlib.import_module(module), name), f"{doc}: {module} has no {name}"


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    from recsel.data.synthetic import make_synthetic

    data = make_synthetic(n_rows=3000, n_informative=3, n_duplicates=1, n_noise=2, n_traps=0)
    data.frame.rename(columns={data.label: "clicked"}).to_parquet(tmp_path / "clicks.parquet")
    example = _python_blocks(ROOT / "README.md")[0]
    assert 'read_table("clicks.parquet"' in example
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(
        compile(example.replace("num_features=20", "num_features=2"), "README.md", "exec"),
        namespace,
    )
    assert len(namespace["result"].selected) == 2
