"""Advisory size report: the largest modules and functions of src/tokstudy (``make test`` prints it; fails nothing).

Size is a smell to look at, never a rule: one concern per file, whatever its length. A file or
function near the top of this list is worth a read for two concerns sharing it; one that is long
because its one concept is long stays as it is.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tokstudy"


def module_sizes(files: list[Path], root: Path = ROOT) -> list[tuple[int, str]]:
    """``(lines, path)`` of every file, largest first."""
    sizes = [(len(f.read_text(encoding="utf-8").splitlines()), f.relative_to(root).as_posix()) for f in files]
    return sorted(sizes, key=lambda s: (-s[0], s[1]))


def function_sizes(files: list[Path], root: Path = ROOT) -> list[tuple[int, str]]:
    """``(lines, "path:line name")`` of every function and method (nested ones too), largest first."""
    out = []
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{f.relative_to(root).as_posix()}:{node.lineno} "
                                                                f"{node.name}"))
    return sorted(out, key=lambda s: (-s[0], s[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=8, help="how many of each to list (default 8)")
    args = ap.parse_args(argv)
    files = sorted(PACKAGE.rglob("*.py"))
    print(f"size report (advisory): {len(files)} modules under {PACKAGE.relative_to(ROOT)}")
    print("  largest modules:  " + ", ".join(f"{p} ({n})" for n, p in module_sizes(files)[:args.top]))
    print("  largest functions: " + ", ".join(f"{p} ({n})" for n, p in function_sizes(files)[:args.top]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
