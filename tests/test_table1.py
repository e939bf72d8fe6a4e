"""Table 1 (stages.figures.table1): per-domain NSL, Avg only over all three domains, paper values beside."""

import dataclasses
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
    assert t.loc["starcoder"].drop(["row", "V", "paper source"]).isna().all()
    assert (t.loc["gpt2", "row"], t.loc["gpt4-32k", "row"]) == ("reference", "ours")


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


def _with_rows(P, names):
    return dataclasses.replace(P, analysis=dataclasses.replace(P.analysis, table1=tuple(names)))


def _ci(run, domain, lo, hi):
    return [{"kind": "compression", "profile": "cpu", "run": run, "metric": m, "dataset": f"mean:{domain}",
             "domain": domain, "value": v} for m, v in (("nsl_ci_low", lo), ("nsl_ci_high", hi))]


def test_the_authors_tokenizers_are_control_rows_beside_the_paper_values_of_the_same_tokenizer():
    P = _with_rows(params.load("cpu"), ["authors-gpt-32k", "authors-identity-32k", "gpt4-32k"])
    # the paper's sweep with its multilingual column (the 32k point of the authors' compression_results.csv)
    sweep = [{"kind": "paper_sweep", "profile": "paper", "run": "gpt4-32000", "vocab_size": 32000, "metric": "nsl",
              "dataset": f"mean:{d}", "domain": d, "value": v, "source":
                  "the authors' released compression_results.csv"}
             for d, v in (("code", 0.805), ("english", 0.985), ("multilingual", 1.046))]
    rows = (_rows("authors-gpt-32k", "cpu", 32000, code=0.809, english=0.886, multilingual=1.033)
            + _rows("authors-identity-32k", "cpu", 32000, code=0.658, english=0.784, multilingual=1.035)
            + _rows("gpt4-32k", "cpu", 32000, code=0.763, english=0.833, multilingual=1.573))
    t = reports.table1(P, pd.DataFrame(rows + sweep + results.paper_rows()))
    assert list(t["row"]) == ["authors' (control)", "authors' (control)", "ours"]
    gpt = t.loc["authors-gpt-32k"]
    assert (gpt["Code"], gpt["Multilingual"], gpt["Avg"]) == (0.809, 1.033, (0.809 + 0.886 + 1.033) / 3)
    # Table 1's code/English of gpt4-32k [E-data] and the sweep's multilingual; Avg = their mean
    assert (gpt["paper Code"], gpt["paper English"], gpt["paper Multilingual"]) == (0.805, 0.985, 1.046)
    assert gpt["paper Avg"] == (0.805 + 0.985 + 1.046) / 3
    assert gpt["paper source"] == ("authors' compression_results.csv [E-data]; "
                                   "the authors' released compression_results.csv")
    # our gpt4-32k shows the same paper values (the sweep's multilingual included)
    assert t.loc["gpt4-32k", "paper Multilingual"] == 1.046
    # the authors' Identity is the paper's Table 1 Identity row, Avg as the paper printed it
    ident = t.loc["authors-identity-32k"]
    assert (ident["paper Code"], ident["paper Multilingual"], ident["paper Avg"]) == (0.69, 1.16, 0.92)
    assert ident["paper source"] == "paper Table 1 [P2]"


def test_domain_intervals_are_columns_and_a_lo_hi_cell_in_markdown(tmp_path, monkeypatch):
    from tokstudy import paths

    monkeypatch.setattr(paths, "results_csv", lambda profile: tmp_path / profile / "results.csv")
    P = _with_rows(params.load("cpu"), ["gpt2", "cl100k"])
    rows = (_rows("gpt2", "cpu", 50257, code=1.2, english=0.9, multilingual=1.5)
            + _ci("gpt2", "code", 1.1875, 1.2125) + _ci("gpt2", "english", 0.89, 0.91)
            + _rows("cl100k", "cpu", 100277, code=0.8))
    t = reports.table1(P, pd.DataFrame(rows + results.paper_rows()))
    assert (t.loc["gpt2", "Code lo"], t.loc["gpt2", "Code hi"]) == (1.1875, 1.2125)
    assert math.isnan(t.loc["gpt2", "Multilingual lo"]) and math.isnan(t.loc["cl100k", "Code hi"])
    csv, md, _tex = reports.write_table1(P, pd.DataFrame(rows + results.paper_rows()))
    back = pd.read_csv(csv, index_col="tokenizer")
    assert back.loc["gpt2", "English lo"] == 0.89
    lines = md.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:7] == ["tokenizer", "row", "V", "Avg", "Code", "Code CI", "English"]
    gpt2 = [c.strip() for c in next(x for x in lines if x.startswith("| gpt2 ")).strip("|").split("|")]
    assert gpt2[4:8] == ["1.200", "1.188–1.212", "0.900", "0.890–0.910"]  # 1.1875 rounds to 1.188 (half-even)
    cl = [c.strip() for c in next(x for x in lines if x.startswith("| cl100k ")).strip("|").split("|")]
    assert cl[5] == "–"
