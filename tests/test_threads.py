"""The thread policy reaches torch's OpenMP runtime, never overrides the user, and warns when too late."""

import os
import subprocess
import sys

import pytest


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    # libgomp prints its settings to stderr when it loads (at `import torch`)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**base, "OMP_DISPLAY_ENV": "verbose", **env})


def _spincount(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "GOMP_SPINCOUNT" in ln]
    assert len(lines) == 1, stderr
    return lines[0].split("=")[1].strip().strip("'")


def test_import_tokstudy_first_makes_openmp_passive():
    r = _run("import os, tokstudy, torch; print(os.environ['OMP_WAIT_POLICY'])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "PASSIVE"
    assert _spincount(r.stderr) == "0"  # libgomp's default is 300000 spins
    assert "RuntimeWarning" not in r.stderr


@pytest.mark.parametrize("policy, spins", [("ACTIVE", "30000000000"), ("PASSIVE", "0")])
def test_user_value_is_never_overridden(policy, spins):
    r = _run("import os, tokstudy, torch; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY=policy)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == policy
    assert _spincount(r.stderr) == spins


def test_torch_imported_first_warns_once_and_children_still_inherit():
    code = ("import torch, tokstudy, importlib, os, subprocess, sys\n"
            "importlib.reload(tokstudy)\n"  # a second apply() has nothing left to set: no second warning
            "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"OMP_WAIT_POLICY\"])'],"
            " capture_output=True, text=True).stdout.strip())\n")
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert _spincount(r.stderr.split("RuntimeWarning")[0]) == "300000"  # too late for this process
    assert r.stderr.count("RuntimeWarning") == 1
    assert "torch was imported before tokstudy" in r.stderr and "import tokstudy first" in r.stderr
    assert r.stdout.strip() == "PASSIVE"


def test_no_warning_when_user_set_it_before_torch():
    r = _run("import torch, tokstudy", OMP_WAIT_POLICY="ACTIVE")
    assert r.returncode == 0, r.stderr
    assert "RuntimeWarning" not in r.stderr


PIN = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")


def _run_unpinned(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PIN}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**base, **env})


@pytest.mark.skipif(not __import__("tokstudy.threads").threads.X86, reason="the kernel pins are x86-only")
def test_import_tokstudy_first_pins_torch_cpu_kernels_to_avx2_and_records_them():
    code = ("import json, tokstudy, torch; from tokstudy import results; "
            "print(json.dumps(results.provenance()['cpu_kernels']))")
    r = _run_unpinned(code)
    assert r.returncode == 0, r.stderr
    got = __import__("json").loads(r.stdout.strip().splitlines()[-1])
    assert got["ATEN_CPU_CAPABILITY"] == "avx2" and got["MKL_CBWR"] == "AVX2" and got["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert got["torch_cpu_capability"] == "AVX2"  # torch's dispatch follows the pin
    assert got["OMP_WAIT_POLICY"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))


def test_a_kernel_level_the_user_set_wins():
    r = _run_unpinned("import os, tokstudy, torch; print(os.environ['ATEN_CPU_CAPABILITY'], "
                      "torch.backends.cpu.get_cpu_capability())", ATEN_CPU_CAPABILITY="default")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["default", "DEFAULT"]
