"""Figures, drawn only from the tidy results CSV (``results.collect``).

This module never computes a metric: every function selects rows of the
table, and draws them with seaborn. Each figure names the paper figure or
table it reproduces in its title, and draws the paper's numbers (rows with
``profile == "paper"``) beside ours wherever the paper has them.

Every figure is saved as PNG and PDF by :func:`save`.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from tokstudy import paths  # noqa: E402

log = logging.getLogger(__name__)

PAPER = "paper"


def save(fig, name: str, out_dir: str | Path) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.pdf`` (atomic writes)."""
    folder = Path(out_dir)
    out = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        # fixed metadata keeps PDFs byte-stable across reruns
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight", metadata=meta)
        out.append(paths.atomic_write(folder / f"{name}.{ext}", buf.getvalue()))
    plt.close(fig)
    log.info("saved figure %s", out[0].with_suffix(""))
    return out


def _ours(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    return df[(df["kind"] == kind) & (df["profile"] != PAPER)]


def _has(df: pd.DataFrame, *cols: str) -> bool:
    return all(c in df.columns for c in cols) and not df.empty


def _k(v) -> str:
    """A vocabulary size as a tick label: ``32k`` for whole thousands, else the integer (never ``2048.0``)."""
    v = int(round(float(v)))
    return f"{v // 1000}k" if v >= 1000 and v % 1000 == 0 else str(v)


def _vocab_axis(ax, sizes) -> None:
    """Log-scale x axis with one integer tick label per vocabulary size drawn."""
    from matplotlib.ticker import NullLocator

    kept: list[int] = []
    for v in sorted({int(v) for v in sizes}):  # labels closer than ~12% in V would overlap: keep the first
        if not kept or math.log10(v / kept[-1]) >= 0.05:
            kept.append(v)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(kept, [_k(v) for v in kept], rotation=45 if len(kept) > 6 else 0)


def _legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes, off the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, **kw)


def _source(rows: pd.DataFrame) -> str:
    """The source tags of paper rows, for a label."""
    tags = sorted(set(rows["source"].dropna().astype(str))) if "source" in rows.columns else []
    return "; ".join(tags) or "source unknown"


def nsl_vs_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """NSL vs vocab size, one panel per domain: our GPT-4-regex 70/30 sweep and the authors' on the same
    axes, our other regexes as single points at their size."""
    ours = _ours(df, "compression")
    if not _has(ours, "vocab_size", "regex", "mix"):
        return None
    ours = ours[(ours["metric"] == "nsl") & ours["dataset"].isin(["mean:code", "mean:english"]) & ours["regex"].notna()
                & (ours["mix"] == "code70")]
    if ours.empty:
        return None
    paper = df[(df["kind"] == "paper_sweep") & (df["metric"] == "nsl")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, domain in zip(axes, ("code", "english"), strict=True):
        mine = ours[ours["domain"] == domain]
        sweep = mine[mine["regex"] == "gpt4"].groupby("vocab_size", as_index=False)["value"].mean()
        ax.plot(sweep["vocab_size"], sweep["value"], "o-", color="tab:blue", label=f"tokstudy gpt4 ({local})")
        for regex, g in mine[mine["regex"] != "gpt4"].groupby("regex"):
            ax.plot(g["vocab_size"], g["value"], "s", ms=6, label=f"tokstudy {regex} ({local})")
        theirs = paper[paper["domain"] == domain].sort_values("vocab_size")
        if not theirs.empty:
            ax.plot(theirs["vocab_size"], theirs["value"], "x--", color="k",
                    label=f"paper gpt4 sweep [{_source(theirs)}]")
        ticks = list(sweep["vocab_size"]) + list(mine["vocab_size"])
        if not theirs.empty and not sweep.empty and sweep["vocab_size"].min() >= 10_000:
            ticks += [v for v in theirs["vocab_size"] if v in (10_000, 16_000)]
        _vocab_axis(ax, ticks)
        ax.set(xlabel="vocabulary size", ylabel=f"{domain} NSL vs Llama 2 (lower is better)", title=domain)
    _legend_outside(axes[1])
    fig.suptitle("NSL vs vocabulary size, GPT-4 regex, 70% code / 30% English — ours beside the authors' sweep")
    return save(fig, "nsl_vs_vocab", out_dir)


def regex_ablation(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Code NSL per regex at one vocab size, ours beside the paper's 32k ablation.

    The paper's ``llama`` row is the Llama 2 tokenizer itself (NSL 1 by definition, the dashed line),
    not a counterpart of our ``llama`` regex emulation, so it is not drawn as a bar."""
    ours = _ours(df, "compression")
    if not _has(ours, "regex", "vocab_size", "mix"):
        return None
    ours = ours[(ours["metric"] == "nsl") & (ours["dataset"] == "mean:code") & ours["regex"].notna()
                & (ours["mix"] == "code70")]
    if ours.empty:
        return None
    size = ours.groupby("vocab_size")["regex"].nunique().idxmax()
    ours = ours[ours["vocab_size"] == size].assign(who=f"tokstudy V={_k(size)} ({local})")
    paper = df[(df["kind"] == "paper_regex") & (df["metric"] == "nsl") & (df["regex"] != "llama")]
    paper = paper.assign(who="paper V=32k (source tag on each bar)")
    both = pd.concat([ours[["regex", "value", "who"]], paper[["regex", "value", "who"]]])
    order = sorted(both["regex"].unique(), key=lambda r: (r not in set(paper["regex"]), r))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(data=both, x="regex", y="value", hue="who", order=order, ax=ax)
    tags = {r["regex"]: " ".join(re.findall(r"\[[^\]]+\]", str(r["source"]).split(";")[0]))
            for _, r in paper.iterrows()}
    for bar in ax.containers[-1] if len(ax.containers) > 1 and not paper.empty else []:
        regex = order[int(round(bar.get_x() + bar.get_width() / 2))]
        ax.annotate(tags.get(regex, ""), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.annotate("Llama 2 = 1 (the NSL base)", (0, 1.0), xycoords=("axes fraction", "data"), fontsize=7,
                color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set(ylabel="code NSL vs Llama 2", xlabel="pre-tokenization regex",
           title="Pre-tokenization regex ablation — cf. paper §2.2")
    _legend_outside(ax)
    return save(fig, "regex_ablation", out_dir)


def data_mix(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """NSL per domain for GPT-4-regex tokenizers trained on different mixes, ordered by code share, per size.

    The paper's Fig. 2 values were not recovered (data/paper has none), so only ours are drawn."""
    ours = _ours(df, "compression")
    if not _has(ours, "mix", "regex", "vocab_size"):
        return None
    ours = ours[(ours["metric"] == "nsl") & ours["dataset"].isin(["mean:code", "mean:english", "mean:multilingual"])
                & ours["mix"].notna() & (ours["regex"] == "gpt4")]
    counts = ours.groupby("vocab_size")["mix"].nunique()
    sizes = sorted(counts[counts >= 2].index)
    if not sizes:
        return None
    if "mix_code_share" in ours:  # the share of code bytes in the mix, from the run record
        share = ours.groupby("mix")["mix_code_share"].first().to_dict()
    else:  # records from before that column: the share from names like code70
        share = {m: float(m[4:]) / 100 if m.startswith("code") and m[4:].isdigit() else float("nan")
                 for m in ours["mix"].unique()}
    order = sorted(share, key=lambda m: (pd.isna(share[m]), share[m], m))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes) + 1.5, 3.8), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        sns.barplot(data=ours[ours["vocab_size"] == size], x="mix", y="value", hue="domain", order=order, ax=ax)
        ax.set(ylabel="NSL vs Llama 2", xlabel="training mix (by code share)", title=f"V = {_k(size)}")
        if ax.get_legend():
            ax.get_legend().remove()
    axes[0][-1].legend(*axes[0][0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       fontsize=7, frameon=False)
    fig.suptitle(f"Training-data mix ({local}) — cf. paper Fig. 2 (its values not recovered)")
    return save(fig, "data_mix", out_dir)


def renyi_vs_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Rényi efficiency (α=2.5) vs vocab size of the GPT-4-regex 70/30 sweep, ours beside the authors'."""
    ours = _ours(df, "compression")
    if not _has(ours, "vocab_size", "regex", "mix"):
        return None
    ours = ours[(ours["metric"] == "renyi_efficiency") & ours["dataset"].isin(["mean:code", "mean:english"])
                & (ours["regex"] == "gpt4") & (ours["mix"] == "code70")].assign(who=f"tokstudy ({local})")
    paper = df[(df["kind"] == "paper_sweep") & (df["metric"] == "renyi_efficiency")]
    paper = paper.assign(who=f"paper [{_source(paper)}]")
    if ours.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    sns.lineplot(data=pd.concat([ours, paper]), x="vocab_size", y="value", hue="who", style="domain",
                 markers=True, ax=ax)
    _vocab_axis(ax, ours["vocab_size"])
    ax.set(xlabel="vocabulary size", ylabel="Rényi efficiency (α=2.5)",
           title="Rényi efficiency vs vocabulary size — cf. paper §2 / Zouhar et al.")
    _legend_outside(ax)
    return save(fig, "renyi_vs_vocab", out_dir)


def finetune_bpb(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Bits per byte on held-out code vs the fine-tuning byte budget, per method (paper Fig. 6 analogue).

    Only the transfer comparison: ``keep`` runs and the runs of the tokenizer that ``random`` runs switch
    to, so each line is one tokenizer (the regex / vocab FVT ablations have their own figure)."""
    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "bits_per_byte") & (df["dataset"] == "mean:code")]
    if not _has(ev, "budget_bytes", "method", "stage", "tokenizer"):
        return None
    switched = set(ev.loc[ev["method"] == "random", "tokenizer"])
    ft = ev[(ev["stage"] == "finetune") & ((ev["method"] == "keep") | ev["tokenizer"].isin(switched))]
    if ft.empty:
        return None
    ft = ft.assign(method=ft["method"] + " (" + ft["tokenizer"].astype(str) + ")")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.lineplot(data=ft, x="budget_bytes", y="value", hue="method", style="profile", markers=True, ax=ax)
    base = ev[(ev["stage"] == "pretrain") & (ev["profile"] == local)]
    for v in base["value"]:
        ax.axhline(v, color="grey", ls="--", lw=0.8)
        ax.annotate("base model (before fine-tuning)", (0, v), xycoords=("axes fraction", "data"), fontsize=7,
                    color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set(xscale="log", xlabel="fine-tuning budget (bytes of code text)",
           ylabel="bits per byte, held-out code (lower is better)",
           title="Switching the tokenizer: FVT vs random vs keep — cf. paper Fig. 6")
    _legend_outside(ax)
    return save(fig, "finetune_bpb", out_dir)


def speed_vs_nsl(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Generation speed in bytes of typical code per second vs code NSL of the model's tokenizer."""
    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "gen_text_bytes_per_s")]
    comp = _ours(df, "compression")
    if ev.empty or comp.empty or "tokenizer" not in ev.columns:
        return None
    nsl = comp[(comp["metric"] == "nsl") & (comp["dataset"] == "mean:code")].set_index("run")["value"]
    ev = ev.assign(nsl=ev["tokenizer"].map(nsl)).dropna(subset=["nsl"])
    if ev.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.8))
    sns.scatterplot(data=ev, x="nsl", y="value", hue="tokenizer", style="profile", s=80, ax=ax)
    ax.set(xlabel="code NSL of the tokenizer (lower = fewer tokens)",
           ylabel="code bytes / s (tokens/s x held-out bytes/token)",
           title="Compression vs generation speed — cf. paper abstract, §2.4")
    return save(fig, "speed_vs_nsl", out_dir)


COMPARE_PANELS = {"bytes_per_token": "bytes per token (higher is better)",
                  "nsl": "NSL vs the base tokenizer (lower is better)",
                  "renyi_efficiency": "Rényi efficiency (higher is better)"}


def compare(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """`tokstudy compare`: bytes/token, NSL and Rényi efficiency per dataset and tokenizer, one panel each."""
    sel = df[df["metric"].isin(list(COMPARE_PANELS)) & ~df["dataset"].astype(str).str.startswith("mean:")
             & (df["dataset"] != "average")]
    g = sns.catplot(data=sel, x="dataset", y="value", hue="tokenizer", col="metric", kind="bar",
                    col_order=[m for m in COMPARE_PANELS if m in set(sel["metric"])],
                    sharey=False, height=3.5, aspect=1.4)
    g.set_titles("{col_name}")
    for ax in g.axes.flat:
        ax.set_ylabel(COMPARE_PANELS.get(ax.get_title(), ax.get_title()))
        ax.tick_params(axis="x", labelrotation=45)
    g.figure.suptitle("tokstudy compare (NSL base as given)", y=1.03)
    return save(g.figure, "compare", out_dir)


def overlap_heatmap(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Jaccard overlap of token byte-strings between tokenizers, as a heatmap."""
    jac = df[df["metric"] == "vocab_jaccard"]
    if jac.empty:
        return []
    names = sorted(set(jac["tokenizer"]) | set(jac["other"]))
    diag = pd.DataFrame({"tokenizer": names, "other": names, "value": 1.0})
    both = pd.concat([jac, jac.rename(columns={"tokenizer": "other", "other": "tokenizer"}), diag])
    grid = both.pivot_table(index="tokenizer", columns="other", values="value", aggfunc="first")
    fig, ax = plt.subplots(figsize=(1.2 * len(grid) + 2, 1.0 * len(grid) + 1.5))
    sns.heatmap(grid, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", ax=ax)
    ax.set_title("Vocabulary overlap (Jaccard of token byte-strings)")
    return save(fig, "vocab_overlap", out_dir)


def vocab_overlap(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Heatmap of the pipeline's vocabulary-overlap run."""
    ov = _ours(df, "overlap")
    return overlap_heatmap(ov, out_dir) or None if not ov.empty else None


def vocab_sweep(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Seconds of the one training run, of each truncation and of training a size on its own, and whether
    the truncation is identical to that separately trained tokenizer."""
    sw = _ours(df, "sweep")
    if sw.empty or "vocab_size" not in sw.columns:
        return None
    sec = sw[sw["metric"].isin(["train_seconds_one_run", "train_seconds_separate", "truncate_seconds"])].dropna(
        subset=["value"])
    agree = sw[sw["metric"] == "identical"]
    if sec.empty:
        return None
    sec = sec.assign(V=sec["vocab_size"].map(_k))
    order = [_k(v) for v in sorted(sec["vocab_size"].unique())]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    sns.barplot(data=sec, x="V", y="value", hue="metric", order=order, ax=axes[0])
    axes[0].set(yscale="log", xlabel="vocabulary size", ylabel="seconds (log)",
                title="one run at the largest size, its truncations, separate training")
    _legend_outside(axes[0])
    if not agree.empty:
        agree = agree.assign(V=agree["vocab_size"].map(_k))
        sns.barplot(data=agree, x="V", y="value", color="tab:green", ax=axes[1])
    axes[1].set(ylim=(0, 1.05), xlabel="vocabulary size", ylabel="1 = byte-identical tokenizer",
                title="truncated == trained at that size?")
    fig.suptitle(f"Vocab-size sweep from one training run ({local})")
    fig.tight_layout()
    return save(fig, "vocab_sweep", out_dir)


def optimal_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Compute- and memory-optimal vocab size per model size, beside the paper's recommendations.

    Left: the compute objective (FLOPs per byte) per model shape, with NSL(V)
    fitted on our sweep ("measured") and on the authors' sweep ("paper"); the V range our
    fit saw is shaded, and an optimum outside it (``extrapolated``) is drawn hollow and labelled.
    Right: the memory objective against batch x sequence length (extrapolated points hollow).
    """
    costs = _ours(df, "costs")
    if costs.empty or not _has(costs, "objective", "model"):
        return None
    opt = costs[costs["metric"] == "optimal_vocab_size"]
    opt = opt.assign(extrapolated=opt["extrapolated"].astype(str) == "True") if "extrapolated" in opt.columns \
        else opt.assign(extrapolated=False)
    comp = opt[(opt["objective"] == "compute") & (opt["seq_len"] > 0)]
    mem = opt[opt["objective"] == "memory"].assign(tokens=lambda d: d["batch"] * d["seq_len"])
    if comp.empty and mem.empty:
        return None
    fit = costs[(costs.get("nsl_source") == "measured") & costs["metric"].isin(["nsl_fit_v_min", "nsl_fit_v_max"])]
    span = fit.groupby("metric")["value"].first() if not fit.empty else pd.Series(dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    models = list(dict.fromkeys(comp["model"]))
    for j, (source, g) in enumerate(comp.groupby("nsl_source")):
        x = [models.index(m) + (j - 0.5) * 0.25 for m in g["model"]]
        for xi, (_, r) in zip(x, g.iterrows(), strict=True):
            axes[0].plot(xi, r["value"], "o", color=f"C{j}", mfc="none" if r["extrapolated"] else f"C{j}", ms=8,
                         ls="none")
            if r["extrapolated"]:
                axes[0].annotate("extrapolated", (xi, r["value"]), fontsize=6, xytext=(4, -8),
                                 textcoords="offset points", color=f"C{j}")
        axes[0].plot([], [], "o", color=f"C{j}", label=f"NSL fit: {source}")
    axes[0].set_xticks(range(len(models)), models)
    if {"nsl_fit_v_min", "nsl_fit_v_max"} <= set(span.index):
        axes[0].axhspan(span["nsl_fit_v_min"], span["nsl_fit_v_max"], color="tab:blue", alpha=0.08,
                        label=f"measured V range {_k(span['nsl_fit_v_min'])}–{_k(span['nsl_fit_v_max'])}")
    axes[0].set(yscale="log", xlabel="model shape", ylabel="compute-optimal vocabulary size",
                title="FLOPs per byte (hollow: outside the fitted range)")
    for v, label in ((32000, "Llama 2 32k"), (80000, "paper 7B: 80k [P2]")):
        axes[0].axhline(v, color="grey", ls="--", lw=0.8)
        axes[0].annotate(label, (0, v), xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                         xytext=(2, 2), textcoords="offset points")
    _legend_outside(axes[0])
    mem1 = mem[mem["batch"] == 1]
    for i, ((model, source), g) in enumerate(mem1.groupby(["model", "nsl_source"])):
        g = g.sort_values("tokens")
        ls = "-" if source == "measured" else ":"
        axes[1].plot(g["tokens"], g["value"], ls, color=f"C{i // 2}", label=f"{model}, NSL fit: {source}")
        ext = g[g["extrapolated"]]
        axes[1].plot(ext["tokens"], ext["value"], "o", mfc="none", color=f"C{i // 2}", ls="none")
    axes[1].plot([], [], "o", mfc="none", color="grey", ls="none", label="extrapolated (outside fitted V range)")
    axes[1].set(xscale="log", yscale="log", xlabel="batch x sequence length (Llama tokens), batch 1",
                ylabel="memory-optimal vocabulary size", title="weights + KV cache (longer contexts: larger vocab)")
    _legend_outside(axes[1])
    fig.suptitle("Optimal vocabulary size — cf. paper §2.5 (inference- and memory-optimal vocabulary)", y=1.02)
    fig.tight_layout()
    return save(fig, "optimal_vocab", out_dir)


def speed_check(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Measured vs predicted generation-speed ratio (bytes/s over the anchor tokenizer) per vocab size.

    Draws the ``costs`` run's ``speed_measured_ratio`` points and one
    ``speed_predicted_ratio`` line per cost-model regime (the primary regime
    solid); the title gives each regime's ``speed_prediction_mae`` row.
    """
    sc = _ours(df, "costs")
    if not _has(sc, "vocab_size", "regime"):
        return None
    meas = sc[sc["metric"] == "speed_measured_ratio"]
    pred = sc[sc["metric"] == "speed_predicted_ratio"]
    mae = sc[sc["metric"] == "speed_prediction_mae"]
    if meas.empty or pred.empty:
        return None
    primary = pred.loc[pred["primary"].astype(str) == "True", "regime"]
    primary = primary.iloc[0] if not primary.empty else None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for regime, g in pred.groupby("regime"):
        g = g.sort_values("vocab_size")
        ax.plot(g["vocab_size"], g["value"], marker="x", ls="-" if regime == primary else ":",
                label=f"predicted ({regime}{', primary' if regime == primary else ''})")
    for source, g in meas.groupby("source"):
        g = g.sort_values("vocab_size")
        ax.plot(g["vocab_size"], g["value"], "o", ms=8, color="k", label=f"measured ({source})")
        for _, r in g.iterrows():
            ax.annotate(str(r["tokenizer"]), (r["vocab_size"], r["value"]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    maes = {r["regime"]: r["value"] for _, r in mae.iterrows()}
    order = sorted(maes, key=lambda k: (k != primary, k))
    anchor = meas["anchor"].iloc[0] if "anchor" in meas.columns else "anchor"
    ax.set(xscale="log", xlabel="vocabulary size", ylabel=f"generation bytes/s relative to {anchor}",
           title="Cost model vs measured speed — MAE " + ", ".join(f"{k}: {maes[k]:.1%}" for k in order))
    ax.legend(fontsize=7)
    return save(fig, "speed_check", out_dir)


ABLATION_PANELS = (("regex", "pre-tokenization regex (paper Table 2)"), ("vocab", "vocabulary size (paper Table 3)"),
                   ("transfer", "embedding init (paper Table 4)"))


def model_ablations(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """The ``model_ablations`` table (``tokstudy.stages.ablations``): one column per comparison; top row our
    canonical-solution bits/byte (95% CI) and held-out code bits/byte per run, bottom row the paper's
    HumanEval pass@1 for the matching condition, labelled with the paper's own condition (its vocab sizes are
    not ours): its own panel, never a second y-axis on ours."""
    fig, axes = plt.subplots(2, len(ABLATION_PANELS), figsize=(4.2 * len(ABLATION_PANELS), 6.4),
                             gridspec_kw={"height_ratios": [3, 2]}, squeeze=False)
    for col, (comparison, title) in enumerate(ABLATION_PANELS):
        ours, paper = axes[0][col], axes[1][col]
        t = table[table["comparison"] == comparison].reset_index(drop=True)
        x = list(range(len(t)))
        err = [t["solution_bpb"] - t["ci_low"], t["ci_high"] - t["solution_bpb"]]
        ours.errorbar(x, t["solution_bpb"], yerr=err, fmt="o", capsize=4, label="HumanEval solution bits/byte (ours)")
        ours.plot(x, t["code_bpb"], "s", color="tab:gray", label="held-out code bits/byte (ours)")
        ours.set_xticks(x, t["label"], rotation=20)
        ours.set(title=title, ylabel="bits per byte (lower is better)")
        has = t["paper_pass1"].notna()
        paper.bar([i for i, h in zip(x, has, strict=True) if h], t.loc[has, "paper_pass1"], color="tab:red",
                  label="paper HumanEval pass@1 (1.5B, the paper's own conditions)")
        paper.set_xticks(x, t["paper_label"].fillna("").astype(str), rotation=20)  # the paper's sizes, not ours
        paper.set_xlim(ours.get_xlim())
        paper.set(ylabel="paper pass@1 (%)", ylim=(0, max(25.0, float(t["paper_pass1"].max(skipna=True) or 0) + 3)))
    handles = [h for a in (axes[0][0], axes[1][0]) for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout()
    return save(fig, "model_ablations", out_dir)


FIGURES: dict[str, Callable[[pd.DataFrame, str, Path], list[Path] | None]] = {
    "nsl_vs_vocab": nsl_vs_vocab,
    "regex_ablation": regex_ablation,
    "data_mix": data_mix,
    "renyi_vs_vocab": renyi_vs_vocab,
    "finetune_bpb": finetune_bpb,
    "speed_vs_nsl": speed_vs_nsl,
    "vocab_overlap": vocab_overlap,
    "vocab_sweep": vocab_sweep,
    "optimal_vocab": optimal_vocab,
    "speed_check": speed_check,
}


def draw_all(df: pd.DataFrame, out_dir: str | Path, local: str) -> dict[str, list[Path]]:
    """Draw every figure whose rows exist into ``out_dir``; returns {figure name: [png, pdf]}.

    ``local``: the ``profile`` column value of the rows drawn as "ours" (the
    other non-paper profiles are drawn beside them).
    """
    sns.set_theme(style="whitegrid", context="paper")
    drawn = {}
    for name, fn in FIGURES.items():
        out = fn(df, local, out_dir)
        if out:
            drawn[name] = out
        else:
            log.info("figure %s skipped: its rows are not in the results table yet", name)
    return drawn
