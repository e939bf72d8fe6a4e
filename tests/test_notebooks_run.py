"""Every notebook runs at the smoke profile against the smoke inputs, writes only into its own project folder,
and shows its result inline.

The inputs are the smoke profile's (conftest ``smoke``: every dvc.yaml stage at profile smoke in one process),
copied into a project folder of this test's own (``TOKSTUDY_ROOT``), so a notebook that wrote into the
checkout, or read something no stage makes, fails here. Each notebook runs with papermill and our engine
(the kernel on IPC sockets: ``tokstudy.kernel``), as DVC runs it.
Slow (about 5-20 s per notebook on 2 cores), but part of ``make test``.
"""

import json
import os
import shutil
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SMOKE_FOLDERS = [ROOT / d / "smoke" for d in ("data", "results", "figures")]


def _snapshot() -> dict[str, float]:
    return {str(p): p.stat().st_mtime for d in SMOKE_FOLDERS if d.is_dir() for p in d.rglob("*") if p.is_file()}


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.fixture(scope="module")
def project(smoke, tmp_path_factory):
    """A project folder holding params.yaml, data/paper and a copy of the smoke inputs."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(ROOT / "data" / "paper", root / "data" / "paper")
    for d in ("data", "results"):
        shutil.copytree(ROOT / d / "smoke", root / d / "smoke")
    (root / "notebooks").mkdir()
    return root


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_smoke_inputs_and_shows_its_result(notebook, project, monkeypatch):
    shutil.copy(notebook, project / "notebooks" / notebook.name)
    monkeypatch.setenv("TOKSTUDY_ROOT", str(project))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    before = _snapshot()
    out = project / f"executed-{notebook.name}"
    papermill.execute_notebook(str(project / "notebooks" / notebook.name), str(out), parameters={"profile": "smoke"},
                               kernel_name="python3", engine_name="tokstudy", cwd=str(project / "notebooks"),
                               progress_bar=False, log_output=False)
    nb = json.loads(out.read_text())
    assert _snapshot() == before, "the notebook wrote into this checkout's smoke folders instead of its project's"
    last_code = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    assert any(o["output_type"] in ("execute_result", "display_data") for o in last_code["outputs"]), \
        f"{notebook.name}: its last code cell shows no result inline"
    text = "".join(str(o.get("text", "")) for o in _outputs(nb))
    assert "IProgress not found" not in text, "ipywidgets is missing: tqdm bars cannot render (requirements.txt)"
