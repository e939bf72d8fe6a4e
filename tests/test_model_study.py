"""The model-side study's glue: the gpu plan, and the ablation table over replicates."""

import pandas as pd
import pytest


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
        for k, (model, _seed) in enumerate(P.model(name).replicates(P.seed)):
            rows = [{"metric": "bits_per_byte", "dataset": "mean:code", "value": 2.0 + i / 100 + k / 1000}]
            # per problem: run i is i/100 worse than run 0 on problem a and 3 * i/100 on b; replicate k adds k*i/1000
            per = {"a": 3.0 + i / 100 + k * i / 1000, "b": 3.0 + 3 * i / 100 + k * i / 1000}
            (runs_dir / f"evaluate-{model}.json").write_text(
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
    assert sorted(r for r, _, _ in by["budget"]) == ["fvt-b1", "fvt-b2", "keep-b1", "keep-b2", "random-b1",
                                                      "random-b2"]
    assert sorted((r, lab) for r, lab, _ in by["beyond"]) == [
        ("focus-b2", "focus gpt4"), ("focus-superbpe-m-b2", "focus superbpe"), ("fvt-superbpe-m-b2", "fvt superbpe")]
    top = t[t["comparison"] != "budget"]
    assert (top["ci_low"] <= top["solution_bpb"]).all() and set(top["budget_bytes"]) == {300_000}
    assert (t["seeds"] == 3).all()
    # the paper's panel is labelled with the paper's own conditions: its sizes, not ours
    assert list(t[t["comparison"] == "vocab"]["paper_label"]) == ["32k", "64k", "128k"]
    assert list(t[t["comparison"] == "transfer"]["paper_label"].fillna("")) == ["", "gpt4-32k fvt", "gpt4-32k no-fvt"]
    # and its own difference: pass@1 points against its FVT condition (20.5); no-fvt 18.4 -> -2.1
    assert t[(t["comparison"] == "transfer") & (t["run"] == "random-b2")]["paper_diff_vs_ref"].iloc[0] == \
        pytest.approx(-2.1)
    # paired against fvt-b2 (index j) replicate by replicate: run i differs by d + k d/10 on a, 3d + k d/10 on b
    j = sorted(P.models).index("fvt-b2")
    row = t[(t["run"] == "random-b2") & (t["comparison"] == "transfer")].iloc[0]
    d = (sorted(P.models).index("random-b2") - j) / 100
    assert row["ref_run"] == "fvt-b2" and row["diff_vs_ref"] == pytest.approx(2 * d + d / 10)
    assert [float(x) for x in row["diff_by_seed"].split()] == pytest.approx([2 * d, 2 * d + d / 10, 2 * d + d / 5],
                                                                            abs=1e-4)
    assert min(d, 3.2 * d) <= min(row["diff_ci_low"], row["diff_ci_high"]) < max(row["diff_ci_low"],
                                                                                 row["diff_ci_high"]) <= max(d, 3.2 * d)
    assert bool(row["significant"]) == (d != 0)
    assert t[(t["run"] == "fvt-b2") & (t["comparison"] != "budget")]["diff_vs_ref"].isna().all()  # the reference
    # budget rows: each fine-tune against the base it starts from (one replicate, paired with all three)
    keep = t[(t["run"] == "keep-b2") & (t["comparison"] == "budget")].iloc[0]
    b = (sorted(P.models).index("keep-b2") - sorted(P.models).index("base")) / 100
    assert keep["ref_run"] == "base" and keep["diff_vs_ref"] == pytest.approx(2 * b + (sorted(P.models).index(
        "keep-b2")) / 1000)
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
