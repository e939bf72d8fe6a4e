"""Pipeline step ``figures`` (notebook 08): every run record of a profile as ``results.csv``, Table 1, figures.

Reads what the other steps wrote (run records, ``model_ablations.csv``) and draws; nothing is
measured here (:mod:`tokstudy.plots` draws, :mod:`tokstudy.tables` renders).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from tokstudy import paths, plots, results, tables
from tokstudy.params import Params
from tokstudy.stages import inputs

# committed results of the GPU profile, drawn beside any other profile's own
GPU = "gpu"
# the paper's Table 1 columns (docs/paper.md#table-1-nsl): a domain's NSL is the unweighted mean of its
# datasets (metrics.aggregate); Avg is the mean of these three domain means, NaN while one is missing
TABLE1_DOMAINS = ("code", "english", "multilingual")
TABLE1_FORMATS = {"csv": "csv", "md": "md", "tex": "latex"}


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


def table1(P: Params, df) -> pd.DataFrame:
    """Table 1 like the paper's: NSL vs Llama 2 per domain for the ``analysis.table1`` tokenizers, ours
    (``<col>``) beside the paper's (``paper <col>``, with its ``paper source``). A domain missing from our
    corpus, or a paper value the sources do not give, is NaN; Avg is NaN unless all three domains exist.
    The authors' sweep (``vocab_sweep.csv``) gives the paper's Code/English of our GPT-4-regex 70/30 sizes."""
    ours = df[(df["kind"] == "compression") & (df["profile"] == P.profile) & (df["metric"] == "nsl")]
    paper = df[(df["profile"] == "paper") & (df["metric"] == "nsl")]
    out = []
    for name in P.analysis.table1:
        mine = ours[ours["run"] == name]
        v = P.tokenizers.get(name)
        sizes = mine["vocab_size"].dropna()
        row = {"tokenizer": name, "V": int(sizes.iloc[0]) if len(sizes) else (v.vocab_size if v else None),
               **_domain_nsl(mine)}
        theirs = paper[(paper["kind"] == "paper_table1") & (paper["run"] == name)]
        if v is not None:  # our variant is the paper's only at the paper's size (not in the smoke profile)
            theirs = theirs[theirs["vocab_size"] == v.vocab_size]
        if v is not None and (v.regex, v.mix) == ("gpt4", "code70"):  # the authors' sweep fills what Table 1 lacks
            sweep = paper[(paper["kind"] == "paper_sweep") & (paper["vocab_size"] == v.vocab_size)]
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
        if col not in ("V", "paper source"):
            shown[col] = [x if x == "–" else f"{x:.3f}" for x in shown[col]]
    out = []
    for ext, fmt in TABLE1_FORMATS.items():
        text = tables.render(frame if fmt == "csv" else shown, fmt)
        out.append(paths.atomic_write(paths.results_csv(P.profile).with_name(f"table1_nsl.{ext}"), text))
    return out


__all__ = ["figures", "table1", "write_table1"]
