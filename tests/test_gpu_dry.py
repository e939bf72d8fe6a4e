"""The `gpu-dry` profile: every gpu stage's code path for a few steps on CPU, through the same entry points.

gpu-dry is the gpu profile's settings shrunk (params.yaml): bf16 autocast and torch.compile forced on,
grad accumulation, sampled pass@k. Pre-training runs through the stage function, the fine-tune through
``python -m tokstudy.stages`` (the torchrun entry point), the transfer and the evaluation through the
stage function and the CLI verb. Inputs are the smoke corpus and tokenizers (gpu-dry uses smoke's sizes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_stages_models import REPO, make_root, smoke_inputs, use_root  # noqa: F401 (fixture)
from tokstudy import cli, params
from tokstudy.stages import train, transfer

PROFILE = "gpu-dry"


@pytest.mark.slow
def test_gpu_dry_runs_every_gpu_stage_on_cpu(smoke_inputs, tmp_path, monkeypatch):  # noqa: F811
    root = make_root(tmp_path / "root", smoke_inputs, profile=PROFILE)
    use_root(monkeypatch, root)
    P = params.load(PROFILE)
    runs = root / "results" / PROFILE / "runs"

    assert train.train(P, "base") == runs / "train-base.json"
    base = json.loads((runs / "train-base.json").read_text())["extra"]["metrics"]
    assert (base["dtype"], base["compile"]) == ("bf16", True)  # the gpu paths, forced on CPU
    assert base["steps"] == 8 and base["tokens_per_step"] == 4 * 2 * 32  # batch x grad_accum x seq_len

    assert [p.name for p in transfer.transfer_all(P, "gpt4-m", ["fvt", "random"])] == [
        "transfer-gpt4-m-fvt.json", "transfer-gpt4-m-random.json"]

    env = {**os.environ, "TOKSTUDY_ROOT": str(root), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "tokstudy.stages", "train", "fvt-b1", "--profile", PROFILE],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ft = json.loads((runs / "train-fvt-b1.json").read_text())
    assert ft["extra"]["metrics"]["compile"] is True and ft["extra"]["init_model"] == "gpt4-m-fvt-init"
    budget = {r["budget_bytes"] for r in ft["rows"]}
    assert budget == {P.model("fvt-b1").bytes}

    assert cli.main(["evaluate", str(root / "data" / PROFILE / "models" / "fvt-b1"), "--name", "fvt-b1",
                     "--profile", PROFILE, "--sandbox", "guard"]) == 0
    record = json.loads((runs / "evaluate-fvt-b1.json").read_text())
    rows = record["rows"]
    assert len(record["extra"]["solution_bpb"]["humaneval"]) == 8  # per problem, for paired comparisons
    by = {r["metric"]: r for r in rows if r.get("dataset") in ("humaneval", None) or "pass" in r["metric"]}
    assert by["humaneval_pass@1"]["samples"] == 4 and "humaneval_pass@2" in by  # sampled, as on gpu
    assert by["humaneval_pass@1"]["temperature"] == 0.6
    sol = [r for r in rows if r["metric"] == "solution_bits_per_byte"]
    assert len(sol) == 1 and sol[0]["problems"] == 8 and sol[0]["ci_low"] <= sol[0]["value"] <= sol[0]["ci_high"]
