"""Every notebook runs on its own from an empty folder at the smoke profile, as the README promises.

Each notebook runs with papermill in a fresh folder holding only the notebook, params.yaml and
data/paper (the package comes from this checkout's src via PYTHONPATH; ``TOKSTUDY_ROOT`` points
tokstudy at the folder), so whatever it reads it must make itself (``tokstudy.stages.inputs``).
Slow (about 10-30 s per notebook on 2 busy cores), but part of ``make test``.
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


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_alone_from_an_empty_folder(notebook, tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(notebook, tmp_path / "notebooks" / notebook.name)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "data" / "paper", tmp_path / "data" / "paper")
    monkeypatch.setenv("TOKSTUDY_ROOT", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    before = _snapshot()
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(tmp_path / "notebooks" / notebook.name), str(out), parameters={"profile": "smoke"},
                               kernel_name="python3", cwd=str(tmp_path / "notebooks"), progress_bar=False,
                               log_output=False)
    nb = json.loads(out.read_text())
    outputs = _outputs(nb)
    assert _snapshot() == before, "the notebook wrote into this checkout's smoke folders instead of its own"
    written = [p for p in (tmp_path / "results" / "smoke").rglob("*") if p.is_file()]
    assert written, f"{notebook.name} wrote nothing under results/smoke"
    last_code = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    assert any(o["output_type"] in ("execute_result", "display_data") for o in last_code["outputs"]), \
        f"{notebook.name}: its last code cell shows no result inline"
    text = "".join(str(o.get("text", "")) for o in outputs)
    assert "IProgress not found" not in text, "ipywidgets is missing: tqdm bars cannot render (requirements.txt)"
