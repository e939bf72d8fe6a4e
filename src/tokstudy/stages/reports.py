"""Pipeline steps that read other steps' run records: inference costs and the figures.

Each takes the resolved params ``P`` (``params.load(profile)``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from tokstudy import costs as costs_mod
from tokstudy import optimum, paths, plots, results, tables
from tokstudy.params import Params
from tokstudy.stages import ablations, inputs
from tokstudy.stages.tokenizers import compression_rows

# committed results of the GPU profile, drawn beside any other profile's own
GPU = "gpu"
# the paper's Table 1 columns (docs/paper.md#table-1-nsl): a domain's NSL is the unweighted mean of its
# datasets (metrics.aggregate); Avg is the mean of these three domain means, NaN while one is missing
TABLE1_DOMAINS = ("code", "english", "multilingual")
TABLE1_FORMATS = {"csv": "csv", "md": "md", "tex": "latex"}


def costs(P: Params) -> Path:
    """Inference costs and optimal vocabulary size from the compression runs of ``costs.sweep``,
    checked against measured generation speed of random-weight models; run record ``costs-costs.json``.

    ``tokstudy.costs`` holds the formulas (sources in its docstrings; docs/paper.md#cost-model).
    """
    from tokstudy import speed  # torch: only this step needs it

    C = P.costs
    rows = compression_rows(P, list(C.sweep))
    points = costs_mod.sweep_points(rows, C.sweep, C.domain)
    shapes = costs_mod.shapes(C.shapes)
    cost_rows = costs_mod.cost_rows(points, shapes, base_vocab_size=C.base_vocab_size, doc_bytes=C.doc_bytes,
                                    dtype_bytes=C.dtype_bytes, regime=C.speed_regime)
    grid = optimum.vocab_grid(C.vocab_min, C.vocab_max, C.vocab_points)
    opt_rows = optimum.optimal_vocab_rows(points, shapes, C.memory_settings, grid=grid, dtype_bytes=C.dtype_bytes,
                                            domain=C.domain)
    T = P.train("pretrain")
    handles = {name: inputs.tokenizer_variant(P, name) for name in C.sweep}
    speeds = speed.random_model_speeds(handles, T.size, speed.speed_prompts(C.speed_check_prompts),
                                       C.speed_check_max_new_tokens, rounds=C.speed_check_rounds,
                                       device=P.evaluate.device, seed=P.seed)
    shape = costs_mod.shape_from_size(T.size, speeds[0]["model_vocab_size"], context=T.seq_len)
    speed_rows = costs_mod.speed_check_rows(speeds, {p["tokenizer"]: p["bytes_per_token"] for p in points}, shape,
                                            regime=C.speed_check_regime)
    run_files = [paths.runs_dir(P.profile) / f"compression-{name}.json" for name in C.sweep]
    return results.write_run(P.profile, "costs", "costs", cost_rows + opt_rows + speed_rows, params=C, seed=P.seed,
                             inputs=run_files)


def figures(P: Params) -> dict[str, list[Path]]:
    """Collect every run record of the profile into ``results/<profile>/results.csv`` (with the paper's
    numbers, and the committed ``gpu`` runs beside any other profile) and draw every figure whose rows
    exist into ``paths.figures_dir(profile)``.

    Figures have no run record: returns ``{figure name: [png, pdf]}`` of the figures drawn now. In the
    smoke profile, a profile with no run record yet first measures the references and ``costs.sweep``
    (:func:`compression_rows`), so the notebook runs on its own. The model-side ablation table and figure
    (:func:`tokstudy.stages.ablations.model_ablations`) need every fine-tune's evaluate record: outside the
    smoke profile a missing one is an error naming its stage; in smoke they are skipped until all exist.
    """
    runs = paths.runs_dir(P.profile)
    if P.profile == inputs.SMOKE and not (runs.is_dir() and any(runs.glob("*.json"))):
        compression_rows(P, [*P.metrics.references, *P.costs.sweep])
    extra = [paths.runs_dir(GPU)] if P.profile != GPU and paths.runs_dir(GPU).is_dir() else []
    df = results.collect(P.profile, extra_dirs=extra)
    write_table1(P, df)
    drawn = plots.draw_all(df, paths.figures_dir(P.profile), P.profile)
    tunes = [run for run, spec in P.models.items() if spec.stage == "finetune"]
    if P.profile != inputs.SMOKE or all((runs / f"evaluate-{run}.json").is_file() for run in tunes):
        ablations.model_ablations(P)  # the regex / vocab / FVT fine-tunes beside the paper (missing: an error)
        drawn["model_ablations"] = [paths.figures_dir(P.profile) / f"model_ablations.{ext}" for ext in ("png", "pdf")]
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


__all__ = ["costs", "figures", "table1", "write_table1"]
