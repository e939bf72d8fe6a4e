"""Pipeline step ``figures`` (notebook 08): every run record of a profile as ``results.csv``, Table 1, figures.

Reads what the other steps wrote (run records, ``model_ablations.csv``) and draws; nothing is
measured here (:mod:`tokstudy.plots` draws, :mod:`tokstudy.tables` renders).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from tokstudy import paths, plots, reference, results, tables
from tokstudy.params import Params
from tokstudy.stages import inputs

# committed results of the GPU profile, drawn beside any other profile's own
GPU = "gpu"
# the paper's Table 1 columns (docs/paper.md#table-1-nsl): a domain's NSL is the unweighted mean of its
# datasets (metrics.aggregate); Avg is the mean of these three domain means, NaN while one is missing
TABLE1_DOMAINS = ("code", "english", "multilingual")
TABLE1_FORMATS = {"csv": "csv", "md": "md", "tex": "latex"}
# what a Table 1 row is: a tokenizer we trained, the paper's authors' released one (a control row: their
# tokenizer on our test text), or another pinned reference
TABLE1_KINDS = {"ours": "ours", "hf-xz": "authors' (control)"}


def figures(P: Params) -> dict[str, list[Path]]:
    """Collect every run record of the profile into ``results/<profile>/results.csv`` (with the paper's
    numbers, and the committed ``gpu`` runs beside any other profile), write Table 1 and draw every figure
    whose rows exist into ``paths.figures_dir(profile)``, the model-side ablations from ``model_ablations.csv``
    (the ``model_ablations`` step; missing: :class:`~tokstudy.errors.MissingInput`).

    Figures have no run record: returns ``{figure name: [png, pdf]}`` of the figures drawn now.
    """
    ablation_csv = inputs.ablation_table(P)
    extra = [paths.runs_dir(GPU)] if P.profile != GPU and paths.runs_dir(GPU).is_dir() else []
    df = results.collect(P.profile, extra_dirs=extra)
    write_table1(P, df)
    out = paths.figures_dir(P.profile)
    drawn = plots.draw_all(df, out, P.profile)
    drawn["model_ablations"] = plots.model_ablations(pd.read_csv(ablation_csv), out)
    return drawn


def _domain_nsl(rows) -> dict[str, float]:
    """``{"Avg", "Code", ...}`` from one tokenizer's ``nsl`` rows (``dataset = mean:<domain>``)."""
    got = {d: rows.loc[rows["dataset"] == f"mean:{d}", "value"] for d in TABLE1_DOMAINS}
    vals = {d.capitalize(): float(v.iloc[0]) if len(v) else math.nan for d, v in got.items()}
    avg = rows.loc[rows["dataset"] == "mean:average", "value"]  # the paper's own Avg (paper rows only)
    known = list(vals.values())
    vals = {"Avg": float(avg.iloc[0]) if len(avg) else (math.nan if any(map(math.isnan, known)) else
                                                         sum(known) / len(known)), **vals}
    return vals


def _domain_ci(rows) -> dict[str, float]:
    """``{"Code lo", "Code hi", ...}``: the bootstrap interval of each domain's NSL (``nsl_ci_low``/``_high``
    rows the compression step wrote; NaN where the record has none)."""
    out = {}
    for d in TABLE1_DOMAINS:
        for metric, end in (("nsl_ci_low", "lo"), ("nsl_ci_high", "hi")):
            v = rows.loc[(rows["metric"] == metric) & (rows["dataset"] == f"mean:{d}"), "value"]
            out[f"{d.capitalize()} {end}"] = float(v.iloc[0]) if len(v) else math.nan
    return out


def table1(P: Params, df) -> pd.DataFrame:
    """Table 1 like the paper's: NSL vs Llama 2 per domain for the ``analysis.table1`` tokenizers, ours
    (``<col>``, with its bootstrap interval over test documents ``<col> lo``/``<col> hi``) beside the paper's
    (``paper <col>``, with its ``paper source``). ``row`` says what a row is: ``ours`` (a variant we
    trained), ``authors' (control)`` (the paper's authors' released tokenizer measured on our test split,
    beside the paper's value of the same tokenizer) or ``reference``. A domain missing from our corpus, or
    a paper value the sources do not give, is NaN; Avg is NaN unless all three domains exist. The authors'
    sweep (``vocab_sweep.csv``) gives the paper's values of a GPT-4-regex 70/30 tokenizer that Table 1 lacks."""
    compression = df[(df["kind"] == "compression") & (df["profile"] == P.profile)]
    ours = compression[compression["metric"] == "nsl"]
    paper = df[(df["profile"] == "paper") & (df["metric"] == "nsl")]
    out = []
    for name in P.analysis.table1:
        mine = ours[ours["run"] == name]
        v = P.tokenizers.get(name)
        ref = reference.REFERENCES.get(name, {})
        sizes = mine["vocab_size"].dropna()
        row = {"tokenizer": name, "row": "ours" if v else TABLE1_KINDS.get(ref.get("format"), "reference"),
               "V": int(sizes.iloc[0]) if len(sizes) else (v.vocab_size if v else ref.get("vocab_size")),
               **_domain_nsl(mine), **_domain_ci(compression[compression["run"] == name])}
        paper_name, size = ref.get("paper_run", name), v.vocab_size if v else ref.get("vocab_size")
        theirs = paper[(paper["kind"] == "paper_table1") & (paper["run"] == paper_name)]
        if v is not None:  # our variant is the paper's only at the paper's size (not in the smoke profile)
            theirs = theirs[theirs["vocab_size"] == v.vocab_size]
        # (a SuperBPE variant starts from the GPT-4 regex but is no tokenizer of the paper's: no paper values)
        gpt4_70 = (v.regex, v.mix, v.transition) == ("gpt4", "code70", None) if v else paper_name.startswith("gpt4-")
        if gpt4_70:  # the authors' sweep fills what Table 1 lacks
            sweep = paper[(paper["kind"] == "paper_sweep") & (paper["vocab_size"] == size)]
            theirs = pd.concat([theirs, sweep[~sweep["domain"].isin(theirs["domain"])]])
        row.update({f"paper {k}": x for k, x in _domain_nsl(theirs).items()})
        row["paper source"] = "; ".join(sorted(set(theirs["source"].dropna().astype(str)))) or None
        out.append(row)
    return pd.DataFrame(out).set_index("tokenizer")


def write_table1(P: Params, df) -> list[Path]:
    """:func:`table1` as ``results/<profile>/table1_nsl.{csv,md,tex}`` (Markdown / LaTeX show NaN as "–")."""
    frame = table1(P, df)
    shown = frame.astype(object).where(frame.notna(), "–")
    for col in frame.columns:
        if col not in ("row", "V", "paper source"):
            shown[col] = [x if x == "–" else f"{x:.3f}" for x in shown[col]]
    for d in TABLE1_DOMAINS:  # Markdown / LaTeX: one "lo–hi" column per domain
        lo, hi = (shown.pop(f"{d.capitalize()} {end}") for end in ("lo", "hi"))
        ci = [f"{a}–{b}" if "–" not in (a, b) else "–" for a, b in zip(lo, hi, strict=True)]
        shown.insert(shown.columns.get_loc(d.capitalize()) + 1, f"{d.capitalize()} CI", ci)
    out = []
    for ext, fmt in TABLE1_FORMATS.items():
        text = tables.render(frame if fmt == "csv" else shown, fmt)
        out.append(paths.atomic_write(paths.results_csv(P.profile).with_name(f"table1_nsl.{ext}"), text))
    return out


__all__ = ["figures", "table1", "write_table1"]
