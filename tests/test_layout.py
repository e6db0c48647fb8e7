"""The package's shape: no import cycles, no reaching into another package's privates.

Both rules read the source with ``ast`` (nothing is imported), counting module-level AND
function-level imports: a lazy import still runs, so a cycle through one only hides until
the function is called (``selection`` -> ``budget`` -> ``selection`` did).
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recsel"


def _module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(*dirs: pathlib.Path, root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    return {_module_name(p, root): p for d in dirs for p in sorted(d.rglob("*.py"))}


def _imports(path: pathlib.Path, known: set[str], root: pathlib.Path = ROOT) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere.

    Imports under ``TYPE_CHECKING`` count too: a cycle that only type hints close is still
    two modules that each need the other to be read.
    """
    tree = ast.parse(path.read_text(), str(path))
    this = _module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import sub`` imports the submodule when there is one.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n in known and n != this)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules(PACKAGE)
    return {name: _imports(path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_in(component: list[str], graph: dict[str, set[str]]) -> str:
    """One concrete cycle through the component, for the failure message."""
    start, members = component[0], set(component)
    trail, node, seen = [start], start, {start}
    while True:
        node = sorted(graph[node] & members)[0] if not graph[node] & {start} else start
        trail.append(node)
        if node == start or node in seen:
            return " -> ".join(trail)
        seen.add(node)


def test_there_are_no_import_cycles():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles (module-level or lazy):\n" + "\n".join(
        _path_in(c, graph) for c in cycles
    )


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    # The finder must be able to fail: a two-module cycle through a function-level import.
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(graph) == [["a", "b"]]
    pkg = tmp_path / "recsel"
    pkg.mkdir()
    (pkg / "x.py").write_text("def f():\n    from recsel import y\n")
    (pkg / "y.py").write_text("from recsel.x import f\n")
    known = {"recsel.x", "recsel.y"}
    assert _imports(pkg / "x.py", known, tmp_path) == {"recsel.y"}
    assert _imports(pkg / "y.py", known, tmp_path) == {"recsel.x"}


def _private_violations(dirs: list[pathlib.Path], root: pathlib.Path = ROOT) -> list[str]:
    """Imports of ``pkg._private`` from a module that is not directly in ``pkg``.

    A package's ``__init__`` and its sibling modules may use its private modules; a
    subpackage, another package, a script or a benchmark may not: what they need is
    made public where it belongs.
    """
    modules = _modules(*dirs, root=root)
    known = set(modules)
    bad = []
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in sorted(_imports(path, known, root)):
            owner, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and owner != here:
                bad.append(f"{name} imports {target} (private to {owner})")
    return bad


def test_no_module_imports_another_packages_private_modules():
    roots = [PACKAGE, ROOT / "benchmarks", ROOT / "pipelines"]
    bad = _private_violations(roots)
    assert not bad, "\n".join(bad)


def test_the_private_rule_can_fail(tmp_path):
    (tmp_path / "recsel" / "sub").mkdir(parents=True)
    (tmp_path / "recsel" / "__init__.py").write_text("")
    (tmp_path / "recsel" / "_helper.py").write_text("")
    (tmp_path / "recsel" / "ok.py").write_text("from recsel import _helper\n")
    (tmp_path / "recsel" / "sub" / "__init__.py").write_text("")
    (tmp_path / "recsel" / "sub" / "bad.py").write_text("import recsel._helper\n")
    assert _private_violations([tmp_path / "recsel"], tmp_path) == [
        "recsel.sub.bad imports recsel._helper (private to recsel)"
    ]


def test_the_walk_sees_the_package():
    graph = _graph()
    assert "recsel.selection.driver" in graph and "recsel.tfx.executor" in graph
    # A function-level import counts (``setup.prepare_run`` imports the budget lazily).
    assert "recsel.selection.budget" in graph["recsel.selection.setup"]
