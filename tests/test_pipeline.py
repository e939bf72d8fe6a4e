"""The DVC pipeline and params.yaml agree with each other."""

from pathlib import Path

import yaml

from tokstudy import params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_runs_an_existing_notebook_through_papermill():
    for name, stage in DVC.items():
        body = stage.get("do", stage)
        assert "papermill" in body["cmd"], name
        nb = next(w for w in body["cmd"].split() if w.startswith("notebooks/"))
        assert (ROOT / nb).is_file(), nb
        assert nb in body["deps"], f"{name} must list its notebook as a dep"


def test_finetune_stages_match_the_models_section():
    for profile in ("smoke", "cpu", "gpu"):
        P = params.load(profile)
        finetunes = {n: r for n, r in P.models.items() if r.stage == "finetune"}
        assert DVC["finetune"]["foreach"] == {n: r.init_model for n, r in finetunes.items()}
        assert {r.tokens for r in finetunes.values()} and all(r.tokens > 0 for r in finetunes.values())


def test_transfer_matrix_produces_every_finetune_starting_point():
    P = params.load("cpu")
    T = P.transfer
    made = {f"{t}-{m}-init" for t in T.targets for m in T.methods}
    needed = {r.init_model for r in P.models.values() if r.stage == "finetune" and r.method != "keep"}
    assert needed <= made
    assert P.model("base").stage == "pretrain" and P.model("base").tokenizer == T.base_tokenizer


def test_stage_params_exist():
    """dvc repro fails on a `params:` key missing from params.yaml, in every profile."""
    raw = params.read_yaml()
    for profile in raw["profiles"]:
        for name, stage in DVC.items():
            body = stage.get("do", stage)
            for key in body.get("params", []):
                key = key.replace("${profile}", profile)
                if "${" in key:
                    continue
                node = raw
                for part in key.split("."):
                    assert part in node, f"{name}: params.yaml has no {key}"
                    node = node[part]


def test_transfer_covers_every_tokenizer_variant_but_the_base_ones():
    P = params.load("cpu")
    T = P.transfer
    assert set(T.targets) == set(P.tokenizers) - {T.base_tokenizer}
    assert set(T.methods) == {"fvt", "random", "mean", "merged"}
