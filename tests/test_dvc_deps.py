"""dvc.yaml declares what its stages really read and write.

A stage whose ``deps`` miss a ``tokstudy`` module it imports is not re-run when
that module changes, so ``dvc repro`` keeps stale results and exits 0.  These
tests resolve every stage with DVC itself (``foreach`` / ``matrix`` and
``${...}`` expanded against params.yaml), find what its ``cmd`` runs (a
papermill/jupyter notebook, ``python -m tokstudy.X``, a ``tokstudy`` console
verb, or a ``.py`` script), follow ``tokstudy`` imports transitively with
``ast`` (function-level imports included), and check that every module file in
that closure is covered by the stage's ``deps`` (the file itself or a folder
above it).
"""

from __future__ import annotations

import ast
import functools
import shlex
import tomllib
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
import yaml
from dvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "tokstudy"
SEPARATORS = {"&&", "||", ";", "|", "&"}


@functools.cache
def stages():
    """Every resolved stage of dvc.yaml as ``(address, cmd, deps, outs)``, paths relative to ROOT."""
    with Repo(str(ROOT)) as repo:
        out = []
        for stage in repo.index.stages:
            cmd = getattr(stage, "cmd", None)
            if not cmd:
                continue  # a .dvc file (imported data), not a pipeline stage
            cmd = " && ".join(cmd) if isinstance(cmd, list) else cmd
            deps = [_rel(d.def_path) for d in stage.deps]
            outs = [_rel(o.def_path) for o in stage.outs]
            out.append((stage.addressing, cmd, deps, outs))
    assert out, f"no stage found in {ROOT / 'dvc.yaml'}"
    return tuple(out)


def _rel(path) -> str:
    p = Path(str(path))
    return (p.resolve().relative_to(ROOT) if p.is_absolute() else p).as_posix().rstrip("/")


def covered(path: str, declared) -> bool:
    """``path`` is one of ``declared`` or lies under a declared folder."""
    return any(path == d or path.startswith(d + "/") for d in declared)


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: console verb -> module it runs."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    return {name: target.split(":")[0] for name, target in scripts.items()}


def entry_points(cmd: str) -> tuple[list[Path], list[str]]:
    """What a stage command runs: (notebooks and .py files, ``tokstudy`` modules)."""
    files, modules = [], []
    scripts = console_scripts()
    segment: list[str] = []
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    for tok in [*lexer, ";"]:
        if tok not in SEPARATORS:
            segment.append(tok)
            continue
        words, segment = segment, []
        while words and "=" in words[0] and words[0].partition("=")[0].isidentifier():
            words = words[1:]  # leading VAR=value environment assignments
        if not words:
            continue
        notebooks = [w for w in words if w.endswith(".ipynb")]
        if "papermill" in Path(words[0]).name or "papermill" in words[:3]:
            files += [ROOT / n for n in notebooks[:1]]  # papermill INPUT OUTPUT: only the input runs
        else:
            files += [ROOT / n for n in notebooks if (ROOT / n).is_file()]
        files += [ROOT / w for w in words if w.endswith(".py") and (ROOT / w).is_file()]
        modules += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-m" and _ours(words[i + 1])]
        if Path(words[0]).name in scripts:
            modules.append(scripts[Path(words[0]).name])
    return files, modules


def _ours(module: str | None) -> bool:
    return bool(module) and (module == PACKAGE or module.startswith(PACKAGE + "."))


def module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _file_module(path: Path) -> tuple[str, bool]:
    """Dotted module name of a file under SRC, and whether it is a package ``__init__``."""
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(tree: ast.AST, module: str = "", is_package: bool = False) -> set[str]:
    """``tokstudy`` modules a parsed file imports anywhere (module level, functions, importlib calls)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if _ours(a.name)}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if _ours(base):
                found.add(base)
                # `from tokstudy import paths`: a submodule; `from tokstudy.x import f`: an attribute
                found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if name in ("import_module", "__import__") and _ours(node.args[0].value):
                found.add(node.args[0].value)
    return found


def notebook_tree(path: Path) -> ast.Module:
    """The code cells of a notebook as one module; IPython magics and shell lines are dropped."""
    nb = nbformat.read(path, as_version=4)
    body = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        src = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
        try:
            body += ast.parse(src, filename=f"{path}#cell{i}").body
        except SyntaxError as e:
            pytest.fail(f"{_rel(path)} code cell {i} does not parse ({e}); this test cannot see its imports")
    return ast.Module(body=body, type_ignores=[])


def closure(files: list[Path], modules: list[str]) -> tuple[set[str], set[str]]:
    """Files (relative to ROOT) of every ``tokstudy`` module reachable from the entry points, and unresolved names."""
    todo = set(modules)
    for f in files:
        tree = notebook_tree(f) if f.suffix == ".ipynb" else ast.parse(f.read_text(), filename=str(f))
        todo |= imported_modules(tree)
    seen, reached, unresolved = set(), set(), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            mod = ".".join(parts[:i])
            if mod in seen:
                continue
            seen.add(mod)
            path = module_file(mod)
            if path is None:
                unresolved.add(mod)
                continue
            reached.add(_rel(path))
            m, is_pkg = _file_module(path)
            todo |= imported_modules(ast.parse(path.read_text(), filename=str(path)), m, is_pkg) - seen
    return reached, unresolved


def _group(problems: dict[str, str]) -> list[str]:
    """One line per stage; instances of a foreach/matrix stage with the same problem are collapsed."""
    by_group = defaultdict(lambda: defaultdict(list))
    for address, problem in problems.items():
        by_group[address.split("@")[0]][problem].append(address)
    lines = []
    for group, variants in sorted(by_group.items()):
        for problem, addresses in sorted(variants.items()):
            label = addresses[0] if len(addresses) == 1 else f"{group}@* ({len(addresses)} instances)"
            lines.append(f"  {label}: {problem}")
    return lines


def test_every_stage_depends_on_the_code_it_imports():
    problems = {}
    for address, cmd, deps, _ in stages():
        files, modules = entry_points(cmd)
        if not files and not modules:
            problems[address] = f"cmd runs nothing this test recognises (teach entry_points): {cmd!r}"
            continue
        reached, unresolved = closure(files, modules)
        missing = sorted(
            [_rel(f) for f in files if not covered(_rel(f), deps)] + [p for p in reached if not covered(p, deps)]
        )
        msg = []
        if missing:
            msg.append("missing deps " + ", ".join(missing))
        if unresolved:
            msg.append("imports modules not found under src/: " + ", ".join(sorted(unresolved)))
        if msg:
            problems[address] = "; ".join(msg)
    if problems:
        pytest.fail("dvc.yaml stages do not declare the code they run (add to `deps`):\n" + "\n".join(_group(problems)))


def _figure_files() -> set[str]:
    """PNG/PDF figures of the default profile: those in ``figures/`` and those ``tokstudy.plots`` names."""
    from tokstudy import paths, plots

    profile = yaml.safe_load((ROOT / "params.yaml").read_text())["profile"]
    folder = paths.figures_dir(profile).relative_to(paths.ROOT).as_posix()
    names = getattr(plots, "FIGURES", None)
    assert names, "tokstudy.plots.FIGURES (figure name -> function) is gone; update _figure_files"
    expected = {f"{folder}/{name}.{ext}" for name in names for ext in ("png", "pdf")}
    on_disk = {_rel(p) for ext in ("png", "pdf") for p in (ROOT / folder).glob(f"*.{ext}")}
    return expected | on_disk


def test_every_figure_is_a_declared_output():
    outs = [o for *_, stage_outs in stages() for o in stage_outs]
    undeclared = sorted(f for f in _figure_files() if not covered(f, outs))
    if undeclared:
        pytest.fail(
            "figures written by the pipeline are no stage's `outs` (dvc cannot track or restore them); "
            "declare them in dvc.yaml:\n  " + "\n  ".join(undeclared)
        )


# --- the checker itself, on hand-made inputs -------------------------------------------------


def test_entry_points_reads_papermill_module_and_console_verbs():
    files, modules = entry_points(
        "mkdir -p runs/x && papermill -k python3 notebooks/00_corpus.ipynb runs/x/out.ipynb -p profile cpu"
        " && python -m tokstudy.finetune base --profile cpu; OMP_NUM_THREADS=1 tokstudy metrics --profile cpu"
    )
    assert files == [ROOT / "notebooks/00_corpus.ipynb"]  # the papermill output notebook is not an input
    assert modules == ["tokstudy.finetune", console_scripts()["tokstudy"]]


def test_imported_modules_sees_function_level_relative_and_importlib_imports():
    tree = ast.parse(
        "import os\n"
        "from tokstudy import paths, params\n"
        "from tokstudy.metrics import nsl\n"
        "def f():\n"
        "    import tokstudy.bpe\n"
        "    from . import corpus\n"
        "    importlib.import_module('tokstudy.costs')\n"
    )
    found = imported_modules(tree, "tokstudy.results", is_package=False)
    assert found == {
        "tokstudy",
        "tokstudy.paths",
        "tokstudy.params",
        "tokstudy.metrics",
        "tokstudy.bpe",
        "tokstudy.corpus",
        "tokstudy.costs",
    }


def test_closure_is_transitive_and_includes_package_init():
    reached, unresolved = closure([], ["tokstudy.paths"])
    assert "src/tokstudy/__init__.py" in reached and "src/tokstudy/paths.py" in reached
    direct = imported_modules(ast.parse((SRC / "tokstudy/metrics.py").read_text()), "tokstudy.metrics")
    reached_m, _ = closure([], ["tokstudy.metrics"])
    for mod in direct:  # everything metrics imports, and what those import, is reached
        assert _rel(module_file(mod)) in reached_m
        assert closure([], [mod])[0] <= reached_m
    assert closure([], ["tokstudy.no_such_module"])[1] == {"tokstudy.no_such_module"}
    assert not unresolved


def test_covered_by_file_or_parent_folder_only():
    assert covered("src/tokstudy/bpe.py", ["src/tokstudy"])
    assert covered("src/tokstudy/bpe.py", ["src/tokstudy/bpe.py"])
    assert not covered("src/tokstudy/bpe.py", ["src/tok"])  # a name prefix is not a folder
    assert not covered("src/tokstudy/bpe.py", ["src/tokstudy/pretok.py"])
