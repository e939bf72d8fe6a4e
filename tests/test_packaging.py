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
