"""Table 1 (stages.figures.table1): per-domain NSL, Avg only over all three domains, paper values beside."""

import math

import pandas as pd

from tokstudy import params, results
from tokstudy.stages import figures as reports


def _rows(run, profile, vocab_size, **domains):
    return [{"kind": "compression", "profile": profile, "run": run, "metric": "nsl", "vocab_size": vocab_size,
             "dataset": f"mean:{d}", "domain": d, "value": v} for d, v in domains.items()]


def _table(rows, profile="cpu"):
    P = params.load(profile)
    df = pd.DataFrame(rows + results.paper_rows())
    return reports.table1(P, df)


def test_avg_is_nan_without_multilingual_and_the_mean_of_three_domains_with_it():
    t = _table(_rows("cl100k", "cpu", 100277, code=0.8, english=0.9)
               + _rows("gpt2", "cpu", 50257, code=1.2, english=0.9, multilingual=1.5))
    assert math.isnan(t.loc["cl100k", "Avg"]) and math.isnan(t.loc["cl100k", "Multilingual"])
    assert t.loc["gpt2", "Avg"] == (1.2 + 0.9 + 1.5) / 3
    # the paper's own Table 1 row, with its Avg, beside ours
    assert (t.loc["gpt2", "paper Avg"], t.loc["gpt2", "paper Code"], t.loc["gpt2", "paper Multilingual"]) == \
        (1.13, 1.19, 1.33)
    assert t.loc["gpt2", "paper source"] == "paper Table 1 [P2]"
    # a tokenizer with no run yet is a row of NaN, never dropped or made up
    assert t.loc["starcoder"].drop(["V", "paper source"]).isna().all()


def test_paper_values_only_beside_our_variant_at_the_paper_size():
    cpu = _table(_rows("gpt4-100k", "cpu", 100000, code=0.75, english=0.8))
    # Table 1 gives code 0.745 [E-data]; the authors' sweep fills English (0.881)
    assert (cpu.loc["gpt4-100k", "paper Code"], cpu.loc["gpt4-100k", "paper English"]) == (0.745, 0.881)
    smoke = _table(_rows("gpt4-100k", "smoke", 512, code=1.6, english=1.8), profile="smoke")
    assert smoke.loc["gpt4-100k", "paper Code"] is None or math.isnan(smoke.loc["gpt4-100k", "paper Code"])


def test_write_table1_writes_csv_markdown_latex(tmp_path, monkeypatch):
    from tokstudy import paths

    monkeypatch.setattr(paths, "results_csv", lambda profile: tmp_path / profile / "results.csv")
    P = params.load("cpu")
    df = pd.DataFrame(_rows("gpt2", "cpu", 50257, code=1.2, english=0.9) + results.paper_rows())
    out = reports.write_table1(P, df)
    assert [p.name for p in out] == ["table1_nsl.csv", "table1_nsl.md", "table1_nsl.tex"]
    md = out[1].read_text()
    assert "| gpt2 " in md and "1.200" in md and "–" in md and "nan" not in md
    assert out[2].read_text().startswith("\\begin{tabular}")
    back = pd.read_csv(out[0], index_col="tokenizer")
    assert back.loc["gpt2", "Code"] == 1.2 and math.isnan(back.loc["gpt2", "Avg"])
