"""The model-side study's glue: byte budgets for fine-tunes."""

import pandas as pd
import pytest

from tokstudy import packing
from tokstudy.stages import train as models


def test_budget_texts_cuts_the_same_bytes_whatever_the_tokenizer():
    texts = ["abcd", "é" * 3, "xyz"]  # 4 + 6 + 3 bytes
    assert models.budget_texts(texts, 4, "r") == ["abcd"]
    assert models.budget_texts(texts, 7, "r") == ["abcd", "é"]  # 3 bytes left: one whole 2-byte character
    assert models.budget_texts(texts, 13, "r") == texts
    with pytest.raises(packing.DataError, match=r"run 'r'.*13 bytes, fewer than its budget of 14.*train.budget_bytes"):
        models.budget_texts(texts, 14, "r")


def test_every_gpu_stage_fits_ten_minutes_by_the_flops_plan():
    from tokstudy import gpuplan, params

    rows = gpuplan.stage_estimates(params.load("gpu"))
    stages = {r["stage"] for r in rows}
    assert {"pretrain@base", "finetune@fvt-identity-m-b2", "evaluate_finetune@fvt-gpt4-l-b2"} <= stages
    assert all(r["within_limit"] for r in rows), [r for r in rows if not r["within_limit"]]
    # the plan can fail: 100M pretraining tokens at 3% MFU do not fit
    slow = gpuplan.stage_estimates(params.load("gpu"), {"mfu": 0.03})
    assert not next(r for r in slow if r["stage"] == "pretrain@base")["within_limit"]
    assert gpuplan.main(["--profile", "gpu"]) == 0


def test_pretraining_time_is_tokens_times_six_n_over_the_rate():
    """Hand check of the plan: training FLOPs = 3 x forward FLOPs per token (costs.flops_per_token)."""
    from tokstudy import costs, gpuplan, params

    P = params.load("gpu")
    row = next(r for r in gpuplan.stage_estimates(P, {"stage_overhead_s": 0}) if r["stage"] == "pretrain@base")
    shape = costs.shape_from_size(P.train("pretrain").size, P.tokenizer("general-m").vocab_size, context=1024)
    want = 100e6 * 3 * costs.flops_per_token(shape, ctx=512) / (0.30 * 989e12)
    assert row["seconds"] == pytest.approx(want)
    assert 300 < want < 600  # ~282M params, 100M tokens at 30% MFU: about 7 minutes


def _fake_records(runs_dir, P):
    import json

    runs_dir.mkdir(parents=True)
    for i, name in enumerate(sorted(P.models)):
        rows = [{"metric": "bits_per_byte", "dataset": "mean:code", "value": 2.0 + i / 100},
                {"metric": "solution_bits_per_byte", "dataset": "humaneval", "value": 3.0 + i / 100,
                 "ci_low": 2.9 + i / 100, "ci_high": 3.1 + i / 100}]
        # per problem: run i is i/100 worse than run 0 on problem a, and 3 * i/100 worse on problem b
        per = {"a": 3.0 + i / 100, "b": 3.0 + 3 * i / 100}
        (runs_dir / f"evaluate-{name}.json").write_text(
            json.dumps({"rows": rows, "extra": {"solution_bpb": {"humaneval": per}}}))


def test_ablation_table_groups_runs_as_the_papers_tables(tmp_path, monkeypatch):
    from tokstudy import params, paths
    from tokstudy.stages import ablations

    P = params.load("cpu")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    _fake_records(tmp_path / "results" / "cpu" / "runs", P)
    t = ablations.ablation_table(P)
    by = {c: list(zip(g["run"], g["label"], g["paper_pass1"], strict=True)) for c, g in t.groupby("comparison")}
    assert sorted(by["regex"]) == [("fvt-b2", "gpt4", 20.5), ("fvt-identity-m-b2", "identity", 18.8),
                                   ("fvt-punct-m-b2", "punct", 21.1)]
    assert by["vocab"] == [("fvt-gpt4-s-b2", "4k", 20.5), ("fvt-b2", "8k", 20.6), ("fvt-gpt4-l-b2", "16k", 20.8)]
    assert [(r, lab) for r, lab, _ in by["transfer"]] == [("keep-b2", "keep"), ("fvt-b2", "fvt"),
                                                          ("random-b2", "random")]
    assert [p for _, _, p in by["transfer"]][1:] == [20.5, 18.4]
    assert (t["ci_low"] <= t["solution_bpb"]).all() and set(t["budget_bytes"]) == {300_000}
    # the paper's panel is labelled with the paper's own conditions: its sizes, not ours
    assert list(t[t["comparison"] == "vocab"]["paper_label"]) == ["32k", "64k", "128k"]
    assert list(t[t["comparison"] == "transfer"]["paper_label"].fillna("")) == ["", "gpt4-32k fvt", "gpt4-32k no-fvt"]
    # paired against fvt-b2 (index j in sorted(P.models)): run i differs by (i - j)/100 on a, 3(i - j)/100 on b
    j = sorted(P.models).index("fvt-b2")
    row = t[t["run"] == "random-b2"].iloc[0]
    d = (sorted(P.models).index("random-b2") - j) / 100
    assert row["ref_run"] == "fvt-b2" and row["diff_vs_ref"] == pytest.approx(2 * d)
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((min(d, 3 * d), max(d, 3 * d)))
    assert t[t["run"] == "fvt-b2"]["diff_vs_ref"].eq(0).all()
    out = ablations.model_ablations(P)
    assert out.read_text().startswith("comparison,run,label") and not (tmp_path / "figures").exists()
    from tokstudy import plots  # the figures step draws the table

    drawn = plots.model_ablations(pd.read_csv(out), tmp_path / "figures" / "cpu")
    assert [p.name for p in drawn] == ["model_ablations.png", "model_ablations.pdf"]


def test_ablation_table_names_the_missing_evaluate_stage(tmp_path, monkeypatch):
    from tokstudy import params, paths
    from tokstudy.errors import MissingInput
    from tokstudy.stages import ablations

    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    with pytest.raises(MissingInput, match=r"dvc repro evaluate_finetune@"):
        ablations.ablation_table(params.load("cpu"))
