"""What DVC shows: stages.summary (metric files, plot tables) and the train step's curves, on hand-made rows."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tokstudy import params, paths
from tokstudy.errors import SummaryError
from tokstudy.stages import summary, train


def _rows(profile: str, regex: str, mix: str) -> pd.DataFrame:
    comp = [("gpt4-s", 4096, "code", 1.2), ("gpt4-s", 4096, "english", 1.3), ("gpt4-m", 8192, "code", 0.9),
            ("gpt4-m", 8192, "english", 0.95)]
    rows = [{"profile": profile, "kind": "compression", "run": t, "metric": "nsl", "value": v, "vocab_size": vs,
             "dataset": f"mean:{d}", "domain": d, "regex": regex, "mix": mix} for t, vs, d, v in comp]
    rows.append({"profile": profile, "kind": "compression", "run": "gpt4-m", "metric": "nsl", "value": 5.0,
                 "vocab_size": 8192, "dataset": "python", "domain": "code", "regex": regex, "mix": mix})  # not a mean
    rows.append({"profile": profile, "kind": "compression", "run": "other", "metric": "nsl", "value": 0.5,
                 "vocab_size": 8192, "dataset": "mean:code", "domain": "code", "regex": "punct", "mix": mix})
    # (run, stage, method, tokenizer, byte budget, code bits/byte); fvt-identity-b2 is a regex ablation run,
    # not part of the transfer comparison that bpb_vs_budget draws
    ev = [("base", "pretrain", "keep", "general", None, 2.5), ("fvt-b1", "finetune", "fvt", "gpt4-m", 100, 2.25),
          ("keep-b1", "finetune", "keep", "general", 100, 2.0), ("fvt-b2", "finetune", "fvt", "gpt4-m", 200, 1.75),
          ("random-b2", "finetune", "random", "gpt4-m", 200, 1.9),
          ("fvt-identity-b2", "finetune", "fvt", "identity-m", 200, 1.5)]
    for run, stage, method, tokenizer, budget, bpb in ev:
        base = {"profile": profile, "kind": "evaluate", "run": run, "model": run, "stage": stage, "method": method,
                "tokenizer": tokenizer, "budget_bytes": budget}
        rows.append({**base, "metric": "bits_per_byte", "dataset": "mean:code", "domain": "code", "value": bpb})
        rows.append({**base, "metric": "bits_per_byte", "dataset": "mean:english", "domain": "english",
                     "value": bpb + 1})
        rows.append({**base, "metric": "humaneval_pass@1", "dataset": "humaneval", "domain": "code", "value": 0.125})
    rows.append({"profile": "gpu", "kind": "evaluate", "run": "base", "metric": "bits_per_byte", "value": 1.0,
                 "dataset": "mean:code", "domain": "code"})  # another profile's row: ignored
    return pd.DataFrame(rows)


def test_headline_metrics_per_tokenizer_and_model():
    df = _rows("x", "gpt4", "code70")
    assert summary.tokenizer_metrics(df) == {"gpt4-m": {"nsl_code": 0.9, "nsl_english": 0.95},
                                             "gpt4-s": {"nsl_code": 1.2, "nsl_english": 1.3},
                                             "other": {"nsl_code": 0.5}}
    models = summary.model_metrics(df[df["profile"] == "x"])
    assert models["base"] == {"bpb_code": 2.5, "bpb_english": 3.5, "humaneval_pass@1": 0.125}
    assert list(models) == ["base", "fvt-b1", "fvt-b2", "fvt-identity-b2", "keep-b1", "random-b2"]


def test_plot_tables_are_wide_with_one_column_per_series():
    df = _rows("x", "gpt4", "code70")
    nsl = summary.nsl_vs_vocab(df, "gpt4", "code70")
    assert nsl.to_dict("list") == {"vocab_size": [4096, 8192], "nsl_code": [1.2, 0.9], "nsl_english": [1.3, 0.95]}
    bpb = summary.bpb_vs_budget(df[df["profile"] == "x"])
    assert list(bpb.columns) == ["budget_bytes", "bpb_fvt", "bpb_keep", "bpb_random"]
    assert bpb["budget_bytes"].tolist() == [100, 200] and bpb["bpb_fvt"].tolist() == [2.25, 1.75]  # not identity's 1.5
    assert bpb["bpb_keep"].iloc[0] == 2.0 and pd.isna(bpb["bpb_keep"].iloc[1])
    assert pd.isna(bpb["bpb_random"].iloc[0]) and bpb["bpb_random"].iloc[1] == 1.9


def test_bpb_vs_budget_refuses_two_runs_in_one_cell():
    df = _rows("x", "gpt4", "code70")
    extra = df[df["run"] == "fvt-b2"].assign(run="fvt-b2-again", model="fvt-b2-again")
    with pytest.raises(SummaryError, match=r"fvt-b2-again.*params.yaml `models`"):
        summary.bpb_vs_budget(pd.concat([df[df["profile"] == "x"], extra[extra["profile"] == "x"]]))


def test_bpb_vs_budget_averages_a_runs_replicates():
    df = _rows("x", "gpt4", "code70")
    df = df[df["profile"] == "x"]
    rep = df[df["model"] == "fvt-b2"].assign(model="fvt-b2-s1", value=lambda d: d["value"] + 0.5)  # same run
    wide = summary.bpb_vs_budget(pd.concat([df, rep])).set_index("budget_bytes")
    assert wide.loc[200, "bpb_fvt"] == (1.75 + 2.25) / 2 and wide.loc[200, "bpb_random"] == 1.9


def _smoke_summary(tmp_path, monkeypatch, rows=None):
    monkeypatch.setattr(paths, "RESULTS", tmp_path)
    P = params.load("smoke")
    sweep = P.tokenizer(P.analysis.sweep_variant)
    out = tmp_path / "smoke" / "results.csv"
    out.parent.mkdir(exist_ok=True)
    (_rows("smoke", sweep.regex, sweep.mix) if rows is None else rows).to_csv(out, index=False)
    return summary.summary(P)


def test_summary_writes_the_files_dvc_reads(tmp_path, monkeypatch):
    written = _smoke_summary(tmp_path, monkeypatch)
    assert written["lm"] == tmp_path / "smoke/metrics/lm"
    assert sorted(f.name for f in written["lm"].iterdir()) == [
        "base.json", "fvt-b1.json", "fvt-b2.json", "fvt-identity-b2.json", "keep-b1.json", "random-b2.json"]
    assert json.loads((written["lm"] / "fvt-b2.json").read_text()) == {
        "bpb_code": 1.75, "bpb_english": 2.75, "humaneval_pass@1": 0.125}
    assert written["nsl"] == tmp_path / "smoke/metrics/nsl"
    assert json.loads((written["nsl"] / "gpt4-s.json").read_text()) == {"nsl_code": 1.2, "nsl_english": 1.3}
    assert summary.read_metric_folder(written["nsl"]) == summary.tokenizer_metrics(
        pd.read_csv(tmp_path / "smoke/results.csv"))  # round trip
    assert (tmp_path / "smoke/plots/nsl_vs_vocab.csv").read_text().splitlines() == [
        "vocab_size,nsl_code,nsl_english", "4096,1.2,1.3", "8192,0.9,0.95"]
    header = (tmp_path / "smoke/plots/bpb_vs_budget.csv").read_text().splitlines()[0]
    assert header == "budget_bytes,bpb_fvt,bpb_keep,bpb_random"


def test_a_run_gone_from_the_results_leaves_no_stale_metric_file(tmp_path, monkeypatch):
    _smoke_summary(tmp_path, monkeypatch)
    P = params.load("smoke")
    sweep = P.tokenizer(P.analysis.sweep_variant)
    rows = _rows("smoke", sweep.regex, sweep.mix)
    written = _smoke_summary(tmp_path, monkeypatch, rows[rows["run"] != "other"])
    assert sorted(f.name for f in written["nsl"].iterdir()) == ["gpt4-m.json", "gpt4-s.json"]


def test_dvc_metrics_show_of_the_summary_fits_a_terminal(tmp_path, monkeypatch):
    """The real `dvc metrics show` on the metric folders, with the longest tokenizer and model-run names of the
    cpu profile: a row per file, at most 120 characters (one file for all was ~2,400)."""
    rows = _rows("cpu", "gpt4", "code70")
    cpu = params.load("cpu")
    longest, longest_run = max(cpu.tokenizers, key=len), max(cpu.models, key=len)
    rows = pd.concat([rows, rows[rows["run"] == "gpt4-m"].assign(run=longest),
                      rows[rows["run"] == "base"].assign(run=longest_run)])
    repo = tmp_path / "repo"
    monkeypatch.setattr(paths, "RESULTS", repo / "results")
    (repo / "results/cpu").mkdir(parents=True)
    rows.to_csv(repo / "results/cpu/results.csv", index=False)
    summary.summary(params.load("cpu"))
    (repo / "dvc.yaml").write_text("metrics:\n  - results/cpu/metrics/nsl\n  - results/cpu/metrics/lm\n")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    shown = subprocess.run([*dvc, "metrics", "show"], cwd=repo, check=True, capture_output=True, text=True).stdout
    lines = shown.splitlines()
    assert len(lines) == 1 + 4 + 7  # header, 4 tokenizers, 7 model runs
    assert any(f"metrics/nsl/{longest}.json" in line for line in lines)
    assert any(f"metrics/lm/{longest_run}.json" in line for line in lines)
    assert max(map(len, lines)) <= 120, shown


def test_summary_without_results_csv_names_the_step_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path)
    with pytest.raises(SummaryError, match=r"results\.csv: missing; run tokstudy\.stages\.figures"):
        summary.summary(params.load("smoke"))
    assert list(tmp_path.rglob("*")) == []


def test_write_curve_thins_and_keeps_first_and_last(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    src = tmp_path / "curve.csv"
    src.write_text("step,tokens,loss,lr,tokens_per_s\n" + "".join(f"{i},{i * 8},{9 - i / 100},0.1,5\n"
                                                                     for i in range(1, 251)))
    out = train.write_curve("p", "run", src)
    lines = out.read_text().splitlines()
    assert out == tmp_path / "results/p/curves/run.csv"
    assert lines[0] == "step,tokens,loss" and len(lines) == 1 + train.MAX_CURVE_ROWS
    assert lines[1] == "1,8,8.99" and lines[-1] == "250,2000,6.5"


def test_write_curve_of_a_missing_or_empty_curve_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    with pytest.raises(SummaryError, match="no training curve"):
        train.write_curve("p", "run", tmp_path / "nope.csv")
    (tmp_path / "curve.csv").write_text("step,tokens,loss\n")
    with pytest.raises(SummaryError, match="at least one row"):
        train.write_curve("p", "run", tmp_path / "curve.csv")
    assert not (tmp_path / "results").exists()


def test_a_profile_without_models_gets_empty_model_files_and_header_only_tables():
    df = _rows("x", "gpt4", "code70")
    df = df[df["kind"] == "compression"]
    assert summary.model_metrics(df) == {}
    assert summary.bpb_vs_budget(df).to_csv(index=False) == "budget_bytes\n"
    assert summary.nsl_vs_vocab(df, "punct", "code30").to_csv(index=False) == "vocab_size,nsl_code,nsl_english\n"
