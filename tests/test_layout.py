"""The package as a house: modules are rooms, imports are arrows. No circles, and no arrow from a lower
floor to a higher one. Every import counts, also those inside functions (a lazy import is still an arrow)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PKG = Path(__file__).resolve().parent.parent / "mdlm_bench"

# Floors, lowest first; a module may import its own floor or lower ones. Keyed by the first name under
# mdlm_bench (a root module or a subpackage).
FLOORS = [
    {"", "errors", "registry", "io", "resources", "config", "dist", "progress", "edit_distance", "stats", "rundir"},
    {"models", "benchdata"},
    {"decode"},
    {"perturb"},
    {"train", "judge", "report"},
    {"evaluate"},
    {"commands", "cli", "__main__"},
]
MAX_LINES = 400
LONG_OK: Set[str] = set()


def _modules() -> Dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _graph() -> Dict[str, Set[str]]:
    mods = _modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name

    edges: Dict[str, Set[str]] = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        out: Set[str] = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out |= {resolve(a.name) for a in node.names if a.name.startswith("mdlm_bench")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    name = ".".join(base + ([node.module] if node.module else []))
                else:
                    name = node.module or ""
                if name.startswith("mdlm_bench"):
                    for a in node.names:  # `from pkg import submodule` points at the submodule
                        full = f"{name}.{a.name}"
                        out.add(full if full in mods else resolve(name))
        out -= {m, ""}
        edges[m] = out
    return edges


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(FLOORS):
        if top in names:
            return i
    raise AssertionError(f"{module}: '{top}' is on no floor; add it to FLOORS in tests/test_layout.py")


def test_cycle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_no_import_runs_back_up():
    up = [f"{m} -> {t}" for m, ts in _graph().items() for t in ts if _floor(t) > _floor(m)]
    assert up == [], "imports from a lower floor to a higher one:\n" + "\n".join(sorted(up))


def test_modules_are_short():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) <= LONG_OK, f"modules over {MAX_LINES} lines: {long}"
