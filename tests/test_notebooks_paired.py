"""Every notebook has a jupytext percent script in notebooks/py/ with the same cells (jupytext.toml pairs them).

Reviewers read notebook changes as the script's diff, so a stale script hides a change. Only inputs
are compared (cell type, source, tags): outputs and the scripts' jupytext header do not count.
"""

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCRIPTS = ROOT / "notebooks" / "py"


def _cells(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def pair_problem(notebook: Path, script: Path) -> str | None:
    """One line saying why ``script`` is not ``notebook``'s paired script, or None when they agree."""
    name = notebook.relative_to(notebook.parents[1]).as_posix()
    fix = f"run `jupytext --sync notebooks/{notebook.name}` (the newer file wins) or `make notebooks-py`"
    if not script.is_file():
        return f"{name} has no paired script notebooks/py/{script.name}; {fix}"
    a, b = _cells(notebook), _cells(script)
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return f"{name} and notebooks/py/{script.name} differ from cell {first}; {fix}"
    return None


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_its_script_have_the_same_cells(notebook):
    problem = pair_problem(notebook, SCRIPTS / f"{notebook.stem}.py")
    if problem:
        pytest.fail(problem, pytrace=False)


def test_no_script_without_its_notebook():
    orphans = sorted(p.name for p in SCRIPTS.glob("*.py") if not (ROOT / "notebooks" / f"{p.stem}.ipynb").is_file())
    assert not orphans, f"notebooks/py/{orphans} pair no notebook; delete them or restore the notebook"


def test_a_changed_cell_missing_script_and_changed_tag_are_reported(tmp_path):
    nb_path = NOTEBOOKS[0]
    (tmp_path / "notebooks/py").mkdir(parents=True)
    notebook = tmp_path / "notebooks" / nb_path.name
    notebook.write_bytes(nb_path.read_bytes())
    script = tmp_path / "notebooks/py" / f"{nb_path.stem}.py"
    assert pair_problem(notebook, script).startswith(f"notebooks/{nb_path.name} has no paired script")
    jupytext.write(jupytext.read(notebook), script, fmt="py:percent")
    assert pair_problem(notebook, script) is None
    script.write_text(script.read_text().replace("profile = ", "profile  =  ", 1))
    assert pair_problem(notebook, script) == (
        f"notebooks/{nb_path.name} and notebooks/py/{script.name} differ from cell 1; "
        f"run `jupytext --sync notebooks/{nb_path.name}` (the newer file wins) or `make notebooks-py`")
    jupytext.write(jupytext.read(notebook), script, fmt="py:percent")
    script.write_text(script.read_text().replace('# %% tags=["parameters"]', "# %%", 1))
    assert "differ from cell 1" in pair_problem(notebook, script)
