"""Write each dvc.yaml stage's code deps: exactly the ``src/tokstudy`` files its command runs.

``python tools/dvc_deps.py`` (``make dvc-deps``) rewrites dvc.yaml in place; ``--check`` only
reports stages whose code deps differ from the import walk (exit 1). tests/test_dvc_deps.py asserts
equality with the same walk, so a stage's deps are never too narrow (a stale result after an edit)
nor too broad (a rerun that an edit did not call for).

The walk starts from what a stage's ``cmd`` runs (the papermill input notebook, ``python -m
tokstudy.X``, a ``tokstudy`` console verb, a ``.py`` script) and follows ``tokstudy`` imports
transitively with ``ast`` (and a ``papermill --engine`` of ours, by its pyproject entry point):
module-level and function-level imports, relative imports,
``importlib.import_module("tokstudy.x")``, and package files run by path (a string constant
``"name.py"`` naming a file of the package, as ``sandbox.py`` runs ``sandbox_child.py``).
Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too, so those are included.
Code deps are the entries under ``src/tokstudy`` but its package data (``src/tokstudy/data/``, the vendored
tokenizers); every other dep (data, notebooks, package data) is kept as written.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "tokstudy"
CODE = f"src/{PACKAGE}"
DVC_YAML = ROOT / "dvc.yaml"
SEPARATORS = {"&&", "||", ";", "|", "&"}


def covered_by(path: str, declared) -> bool:
    """``path`` is one of ``declared`` or lies under a declared folder."""
    return any(path == d or path.startswith(d + "/") for d in declared)


def _ours(module: str | None) -> bool:
    return bool(module) and (module == PACKAGE or module.startswith(PACKAGE + "."))


def module_file(module: str, src: Path = SRC) -> Path | None:
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def console_scripts(root: Path = ROOT) -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: console verb -> module it runs."""
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("scripts", {})
    return {name: target.split(":")[0] for name, target in scripts.items()}


def papermill_engines(root: Path = ROOT) -> dict[str, str]:
    """``[project.entry-points."papermill.engine"]`` of pyproject.toml: engine name -> module it runs."""
    points = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("entry-points", {})
    return {name: target.split(":")[0] for name, target in points.get("papermill.engine", {}).items()}


def entry_points(cmd: str, root: Path = ROOT) -> tuple[list[Path], list[str]]:
    """What a stage command runs: (notebooks and .py files, ``tokstudy`` modules)."""
    files, modules = [], []
    scripts = console_scripts(root)
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
            files += [root / n for n in notebooks[:1]]  # papermill INPUT OUTPUT: only the input runs
            engines = papermill_engines(root)  # `--engine NAME`: our engine's module runs the notebook
            modules += [engines[words[i + 1]] for i, w in enumerate(words[:-1])
                        if w == "--engine" and words[i + 1] in engines]
        else:
            files += [root / n for n in notebooks if (root / n).is_file()]
        files += [root / w for w in words if w.endswith(".py") and (root / w).is_file()]
        modules += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-m" and _ours(words[i + 1])]
        if Path(words[0]).name in scripts:
            modules.append(scripts[Path(words[0]).name])
    return files, modules


def _file_module(path: Path, src: Path = SRC) -> tuple[str, bool]:
    """Dotted module name of a file under ``src``, and whether it is a package ``__init__``."""
    parts = path.relative_to(src).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(tree: ast.AST, module: str = "", is_package: bool = False, src: Path = SRC) -> set[str]:
    """``tokstudy`` modules a parsed file imports or runs anywhere (module level, functions, importlib, by path)."""
    found = set()
    package_dir = src / PACKAGE
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
                found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}", src)}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if name in ("import_module", "__import__") and _ours(node.args[0].value):
                found.add(node.args[0].value)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".py")
              and "/" not in node.value and (package_dir / node.value).is_file() and module):
            found.add(f"{PACKAGE}.{node.value.removesuffix('.py')}")  # a package file run by path
    return found


def notebook_tree(path: Path) -> ast.Module:
    """The code cells of a notebook as one module; IPython magics and shell lines are dropped."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    body = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
        body += ast.parse(source, filename=f"{path}#cell{i}").body
    return ast.Module(body=body, type_ignores=[])


def closure(files: list[Path], modules: list[str], src: Path = SRC, root: Path = ROOT) -> tuple[set[str], set[str]]:
    """Files (relative to ``root``) of every ``tokstudy`` module the entry points reach, and unresolved names."""
    todo = set(modules)
    for f in files:
        tree = notebook_tree(f) if f.suffix == ".ipynb" else ast.parse(f.read_text(), filename=str(f))
        todo |= imported_modules(tree, src=src)
    seen, reached, unresolved = set(), set(), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            mod = ".".join(parts[:i])
            if mod in seen:
                continue
            seen.add(mod)
            path = module_file(mod, src)
            if path is None:
                unresolved.add(mod)
                continue
            reached.add(path.relative_to(root).as_posix())
            m, is_pkg = _file_module(path, src)
            todo |= imported_modules(ast.parse(path.read_text(), filename=str(path)), m, is_pkg, src) - seen
    return reached, unresolved


def code_deps(cmd: str, root: Path = ROOT) -> list[str]:
    """The sorted ``src/tokstudy`` files that a stage command runs (unresolved imports: SystemExit)."""
    files, modules = entry_points(cmd, root)
    reached, unresolved = closure(files, modules, root / "src", root)
    if unresolved:
        raise SystemExit(f"{cmd!r} imports modules not found under src/: {sorted(unresolved)}")
    return sorted(reached)


PACKAGE_DATA = f"{CODE}/data/"  # files the package ships (the authors' tokenizers): data deps, kept as written


def is_code(dep) -> bool:
    """A code dep: anything under ``src/tokstudy`` but its package data (``src/tokstudy/data/``)."""
    return str(dep).startswith(CODE) and not str(dep).startswith(PACKAGE_DATA)


def _template(stage: dict) -> dict:
    return stage["do"] if "do" in stage else stage


def update(doc, root: Path = ROOT) -> list[str]:
    """Set every stage's code deps in the parsed dvc.yaml ``doc`` (in place); returns the stages changed."""
    changed = []
    for name, stage in doc["stages"].items():
        body = _template(stage)
        deps = body.get("deps", [])
        want = code_deps(body["cmd"], root)
        have = [d for d in deps if is_code(d)]
        if have == want:
            continue
        at = next((i for i, d in enumerate(deps) if is_code(d)), 1)
        kept = [d for d in deps if not is_code(d)]
        deps.clear()
        deps.extend(kept[:at] + want + kept[at:])
        changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    from ruamel.yaml import YAML

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report stages whose code deps differ; write nothing")
    args = ap.parse_args(argv)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 110
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc = yaml.load(DVC_YAML)
    changed = update(doc)
    if args.check:
        for name in changed:
            print(f"dvc.yaml: stage {name}: code deps differ from the import walk; run `make dvc-deps`")
        return 1 if changed else 0
    if changed:
        with open(DVC_YAML, "w", encoding="utf-8") as fh:
            yaml.dump(doc, fh)
        print(f"dvc.yaml: code deps rewritten for {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
