"""Issue 8's size limits: no module over ~500 lines, no function over ~80.

Every ``.py`` file under ``src/tokstudy`` (sub-packages included) must have at
most ``MAX_MODULE_LINES`` lines, and every function or method at most
``MAX_FUNCTION_LINES`` (``end_lineno - lineno + 1`` of its ``def``, decorators
excluded, docstring included).  A failure lists every offender.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tokstudy"
MAX_MODULE_LINES = 550
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def long_modules(files: list[Path], limit: int = MAX_MODULE_LINES, root: Path = ROOT) -> list[str]:
    """``"path: N lines"`` for every file over ``limit`` lines."""
    out = []
    for f in files:
        n = len(f.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"{f.relative_to(root)}: {n} lines")
    return out


def long_functions(files: list[Path], limit: int = MAX_FUNCTION_LINES, root: Path = ROOT) -> list[str]:
    """``"path:line name: N lines"`` for every function or method (nested ones too) over ``limit`` lines."""
    out = []
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{f.relative_to(root)}:{node.lineno} {node.name}: {n} lines")
    return sorted(out)


def test_the_checks_see_offenders(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(80))
    f = tmp_path / "m.py"
    f.write_text(f"def short():\n    return 1\n\n\nclass C:\n    def long(self):\n{body}\n", encoding="utf-8")
    files = [f]
    assert long_functions(files, root=tmp_path) == ["m.py:6 long: 81 lines"]
    assert long_functions(files, limit=81, root=tmp_path) == []
    assert long_modules(files, limit=85, root=tmp_path) == ["m.py: 86 lines"]
    assert long_modules(files, limit=86, root=tmp_path) == []


def test_package_is_found():
    assert PACKAGE / "__init__.py" in modules()


def test_no_module_over_the_line_limit():
    offenders = long_modules(modules())
    print("\n".join(offenders))
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_no_function_over_the_line_limit():
    offenders = long_functions(modules())
    print("\n".join(offenders))
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)
