"""tokstudy.kernel: DVC's stages run their notebooks with `papermill --engine tokstudy`, the kernel on IPC sockets."""

from __future__ import annotations

import json
import os

import papermill

from tokstudy import kernel

NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
                       "source": "x = 6 * 7\nx"}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _run(tmp_path, engine):
    src, out = tmp_path / "in.ipynb", tmp_path / f"out-{engine}.ipynb"
    src.write_text(json.dumps(NOTEBOOK))
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", engine_name=engine, progress_bar=False)
    return "".join(json.loads(out.read_text())["cells"][0]["outputs"][0]["data"]["text/plain"])


def test_the_engine_runs_the_kernel_over_ipc_and_the_tcp_warning_is_gone(tmp_path, capfd):
    assert kernel.IPCKernelManager().transport == "ipc"
    assert _run(tmp_path, "tokstudy") == "42"
    assert "Kernel is running over TCP" not in capfd.readouterr().err  # the kernel's own stderr is this test's
    assert _run(tmp_path, None) == "42"  # papermill's default engine: TCP, and ipykernel says so
    assert "Kernel is running over TCP" in capfd.readouterr().err


def test_the_ipc_sockets_live_in_jupyters_runtime_dir_not_the_working_directory(tmp_path, monkeypatch):
    """A kernel killed mid-run cannot leave socket files in the user's folder: they are never created there."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    km = kernel.IPCKernelManager()
    assert os.path.dirname(km.ip) == jupyter_runtime_dir() == str(runtime)
    assert os.path.basename(km.ip).startswith("tokstudy-kernel-") and km.ip != kernel.IPCKernelManager().ip
    assert _run(tmp_path, "tokstudy") == "42"
    assert list(work.iterdir()) == []  # nothing in the working directory, during the run or after
