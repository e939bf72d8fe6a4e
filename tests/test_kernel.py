"""tokstudy.kernel: DVC's stages run their notebooks with `papermill --engine tokstudy`, the kernel on IPC sockets."""

from __future__ import annotations

import json

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
