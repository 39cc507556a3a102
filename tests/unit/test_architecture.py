"""The structure docs/architecture.md promises, checked on the source (AST, nothing imported).

- No import cycles between stackctl modules, function-level imports included (a cycle hidden behind
  a local import is still a cycle); imports under `if TYPE_CHECKING:` are types only and don't count.
- Each external system is touched by exactly one module: the docker CLI, the Docker Engine API, the
  Kubernetes API, git, and atomic file writes each have one choke point, so tests patch one name and
  a timeout or an error message is fixed in one place.
- The model stays backend-neutral.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "stackctl"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """(imported module, names) for every import outside `if TYPE_CHECKING:` blocks."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[tuple[str, list[str]]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from (x for n in child.orelse for x in visit(n))
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, []
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, [a.name for a in child.names]
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(), str(path)))


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names in _imports(module, path):
            if not target.startswith("stackctl"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            graph[module].update(subs or ([target] if target in MODULES else []))
            if subs and len(subs) < len(names) and target in MODULES:
                graph[module].add(target)  # `from pkg import submodule, name_in_pkg`
        graph[module].discard(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles_not_even_behind_function_level_imports() -> None:
    # A package's __init__ that re-exports its submodules is not a cycle with them: drop the edges
    # from a package to its own submodules.
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in _edges().items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_hidden_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _users(reach: set[str]) -> set[str]:
    """Modules that import any of `reach` (or a submodule of one)."""
    return {module for module, path in MODULES.items()
            for target, _ in _imports(module, path)
            if target in reach or target.split(".")[0] in reach}


# external system → (the stdlib/third-party modules that reach it, the one stackctl module allowed)
CHOKE_POINTS = {
    "processes (docker CLI)": ({"subprocess"}, {"stackctl.compose.cli", "stackctl.git", "stackctl.cli.helpgen"}),
    "Kubernetes API (HTTPS)": ({"ssl", "urllib.request"}, {"stackctl.kubernetes.client.transport"}),
    # kept only as the fallback for credentials our transport does not speak (exec plugins, OIDC refresh)
    "the official kubernetes client": ({"kubernetes"}, {"stackctl.kubernetes.client.transport"}),
    "Docker Engine API (unix socket)": ({"http.client"}, {"stackctl.compose.engine",
                                                          "stackctl.kubernetes.client.transport"}),
    "python-on-whales": ({"python_on_whales"}, set()),
    "temporary files": ({"tempfile"}, {"stackctl.fsutil", "stackctl.kubernetes.client.transport"}),
}


@pytest.mark.parametrize("system", sorted(CHOKE_POINTS))
def test_each_external_system_has_one_module_that_touches_it(system: str) -> None:
    reach, allowed = CHOKE_POINTS[system]
    assert _users(reach) <= allowed, f"{system}: only {sorted(allowed)} may import {sorted(reach)}"


def test_git_runs_in_one_module() -> None:
    """`subprocess` is allowed in three modules; of those only stackctl.git may run git."""
    offenders = [m for m, p in MODULES.items() if m != "stackctl.git" and '"git"' in p.read_text()]
    assert offenders == []


def test_files_are_replaced_atomically_in_one_module() -> None:
    offenders = sorted(m for m, p in MODULES.items()
                       if m != "stackctl.fsutil" and ("os.replace(" in p.read_text() or "os.rename(" in p.read_text()))
    assert offenders == []


def test_the_model_imports_no_backend() -> None:
    imported = {t for t, _ in _imports("stackctl.model", MODULES["stackctl.model"])}
    assert {t for t in imported if t.split(".")[0] in {"python_on_whales", "docker", "kubernetes", "yaml"}} == set()
    assert {t for t in imported if t.startswith("stackctl.")} <= {"stackctl.errors"}
