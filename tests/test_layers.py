"""The package's layers: no import cycle, nothing below `stages` imports it, `params` on the ground floor,
every exception class in `errors.py` (issue 17's structure, checked from the source with ``ast``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "tokstudy"
sys.path.insert(0, str(ROOT / "tools"))

from dvc_deps import closure, imported_modules  # noqa: E402

TOP = {"tokstudy.cli", "tokstudy.commands", "tokstudy.gpuplan", "tokstudy.advise"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    """Every tokstudy module -> the tokstudy modules it imports anywhere (function-level included)."""
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        name = _module(f)
        deps = imported_modules(ast.parse(f.read_text(encoding="utf-8")), name, f.name == "__init__.py")
        out[name] = {d for d in deps if d != name and d in {_module(g) for g in PKG.rglob("*.py")}}
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``g`` (a package and its own __init__ import are not cycles)."""
    found, state = [], {}

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if n.startswith(m + ".") or m == "tokstudy":
                continue  # importing a submodule runs the package __init__ first: not a cycle
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n, [])
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_check_sees_one():
    assert cycles({"tokstudy.a": {"tokstudy.b"}, "tokstudy.b": {"tokstudy.a"}}) == [
        ["tokstudy.a", "tokstudy.b", "tokstudy.a"]]
    assert cycles({"tokstudy.stages.x": {"tokstudy.stages"}, "tokstudy.stages": set()}) == []


def test_no_library_module_imports_stages():
    bad = {m: sorted(d for d in deps if d.startswith("tokstudy.stages"))
           for m, deps in graph().items() if not m.startswith("tokstudy.stages") and m not in TOP}
    assert {m: d for m, d in bad.items() if d} == {}


def test_params_sits_on_the_ground_floor():
    reached, _ = closure([], ["tokstudy.params"])
    assert {Path(p).stem for p in reached} == {"__init__", "params", "paramfile", "paths", "errors", "choices",
                                               "threads"}


def test_every_exception_class_lives_in_errors():
    elsewhere = []
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and (node.name.endswith(("Error", "Exception"))
                                                   or any(getattr(b, "id", "").endswith("Error") for b in node.bases)):
                elsewhere.append(f"{f.relative_to(SRC)}:{node.lineno} {node.name}")
    assert elsewhere == []


def test_importing_stages_imports_no_step():
    import subprocess

    code = ("import sys, tokstudy.stages; "
            "print(sorted(m for m in sys.modules if m.startswith('tokstudy.stages.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
