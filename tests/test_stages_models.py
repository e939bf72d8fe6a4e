"""tokstudy.stages.train / .transfer: one train step for notebook, CLI and torchrun; transfer_all; missing models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tokstudy import cli, params, paths, results
from tokstudy import transfer as transfer_mod
from tokstudy.errors import MissingInput
from tokstudy.model import load_model, tiny_model
from tokstudy.stages import inputs, tokenizers
from tokstudy.stages import train as models
from tokstudy.stages import transfer as transfer_step
from tokstudy.stages.__main__ import _guarded

REPO = Path(__file__).resolve().parents[1]
TIMING_ROWS = {"tokens_per_s", "mfu", "wall_s"}
TIMING_METRICS = TIMING_ROWS | {"step_time_s", "peak_flops", "peak_source"}


@pytest.fixture(scope="module")
def smoke_inputs(smoke):
    """The two smoke tokenizers these tests use (the smoke corpus beside them: conftest's ``smoke``)."""
    return {name: inputs.tokenizer_file(smoke, name).parent for name in ("general-m", "gpt4-m")}


def make_root(root: Path, smoke_inputs, profile: str = "smoke", corpus: bool = True) -> Path:
    """A project root of its own: params.yaml, dvc.yaml (the hints' table), (the smoke corpus,) the tokenizers."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    if corpus:
        shutil.copytree(paths.corpus_dir("smoke"), root / "data" / profile / "corpus")
    for name, d in smoke_inputs.items():
        shutil.copytree(d, root / "data" / profile / "tokenizers" / name)
    return root.resolve()


def use_root(monkeypatch, root: Path) -> None:
    monkeypatch.setattr(paths, "ROOT", root)
    monkeypatch.setattr(paths, "DATA", root / "data")
    monkeypatch.setattr(paths, "RESULTS", root / "results")
    monkeypatch.setattr(paths, "PARAMS_FILE", root / "params.yaml")


def comparable(record_path: Path) -> dict:
    """A run record without what legitimately differs between two runs: creation time, git state, timings."""
    r = json.loads(record_path.read_text())
    for key in ("created", "git_commit", "git_dirty"):
        r["provenance"].pop(key)
    r["rows"] = [row for row in r["rows"] if row["metric"] not in TIMING_ROWS]
    r["extra"]["metrics"] = {k: v for k, v in r["extra"]["metrics"].items() if k not in TIMING_METRICS}
    return r


def test_train_writes_the_same_record_from_notebook_cli_and_torchrun(smoke_inputs, tmp_path, monkeypatch):
    root = make_root(tmp_path / "root", smoke_inputs)
    use_root(monkeypatch, root)
    record = root / "results" / "smoke" / "runs" / "train-base.json"
    written = {}

    def keep(how: str) -> None:
        """Set the run record aside and remove everything the run made, so the next one starts afresh."""
        written[how] = comparable(record)
        record.unlink()
        for made in ("train", "packed", "models"):
            shutil.rmtree(root / "data" / "smoke" / made)

    assert models.train(params.load("smoke"), "base", max_steps=4) == record
    assert (root / "data" / "smoke" / "models" / "base" / "config.json").is_file()
    keep("stage")

    env = {**os.environ, "TOKSTUDY_ROOT": str(root),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "tokstudy.stages", "train", "base", "--profile", "smoke", "--max-steps", "4"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {record}" in proc.stdout
    keep("torchrun")

    assert cli.main(["finetune", "base", "--profile", "smoke", "--max-steps", "4"]) == 0
    keep("cli")

    assert written["stage"]["extra"]["model_dir"] == "data/smoke/models/base"
    assert written["stage"]["extra"]["metrics"]["steps"] == 4 and len(written["stage"]["rows"]) == 9
    assert written["stage"] == written["torchrun"] == written["cli"]


def test_transfer_all_writes_one_record_per_method_with_unchanged_fvt_rows(smoke_inputs, tmp_path, monkeypatch):
    root = make_root(tmp_path / "root", smoke_inputs, corpus=False)
    use_root(monkeypatch, root)
    P = params.load("smoke")
    old = tokenizers.handle(P, "general-m")
    base_dir = tmp_path / "base"
    tiny_model(old.vocab_size, seed=3).save_pretrained(base_dir)
    old.to_hf().save_pretrained(base_dir)

    methods = ["random", "mean", "fvt", "merged"]  # fvt after two methods that alter a shared model in place
    runs = transfer_step.transfer_all(P, "gpt4-m", methods, base_model=base_dir)
    assert [r.name for r in runs] == [f"transfer-gpt4-m-{m}.json" for m in methods]
    assert [{row["method"] for row in results.read_run(r)["rows"]} for r in runs] == [{m} for m in methods]

    new = tokenizers.handle(P, "gpt4-m")
    alone, stats = transfer_mod.swap_tokenizer(load_model(base_dir), transfer_mod.base_tokenizer(base_dir), new, "fvt",
                                               pad_to_multiple_of=P.transfer.pad_to_multiple_of, seed=P.seed)
    saved = load_model(root / "data" / "smoke" / "models" / "gpt4-m-fvt-init")
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.equal(getattr(saved, get)().weight, getattr(alone, get)().weight)
    fvt = results.read_run(runs[2])
    assert fvt["rows"] == stats.rows(model="gpt4-m-fvt-init", base_tokenizer="base")
    assert fvt["extra"]["base_model"] == str(base_dir.resolve()) and list(fvt["provenance"]["inputs"])[1] == (
        "data/smoke/tokenizers/gpt4-m/tokenizer.json")


def test_a_missing_base_model_names_the_stage_and_writes_nothing(smoke_inputs, tmp_path, monkeypatch,
                                                                                capsys):
    root = make_root(tmp_path / "root", smoke_inputs, profile="cpu", corpus=False)
    use_root(monkeypatch, root)
    before = sorted(p for p in root.rglob("*"))
    missing_base = r"no model 'base' for profile 'cpu' \(.*data/cpu/models/base\): run `dvc repro pretrain@base`"
    with pytest.raises(MissingInput, match=missing_base):
        transfer_step.transfer_all(params.load("cpu"), "gpt4-m")
    assert _guarded(["transfer", "gpt4-m", "--profile", "cpu", "--method", "fvt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model 'base'") and err.count("\n") == 1
    # a fine-tune whose starting model is missing fails before packing anything
    with pytest.raises(MissingInput, match=r"gpt4-m-fvt-init.*`dvc repro transfer`"):
        models.train(params.load("cpu"), "fvt-b1")
    with pytest.raises(MissingInput, match=r"data/cpu/models/base\): run `dvc repro pretrain@base`"):
        models.train(params.load("cpu"), "keep-b1")
    assert sorted(p for p in root.rglob("*")) == before
