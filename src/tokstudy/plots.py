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


def nsl_vs_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """NSL (code) vs vocab size per regex; ours beside the authors' GPT-4 sweep."""
    ours = _ours(df, "compression")
    if not _has(ours, "vocab_size", "regex"):
        return None
    ours = ours[(ours["metric"] == "nsl") & ours["dataset"].isin(["mean:code", "mean:english"]) & ours["regex"].notna()]
    if "mix" in ours.columns and not ours.empty:  # one training mix, the sweep's (data-mix variants have their figure)
        ours = ours[ours["mix"] == ours["mix"].mode().iloc[0]]
    paper = df[(df["kind"] == "paper_sweep") & (df["metric"] == "nsl")]
    if ours.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    sns.lineplot(data=ours, x="vocab_size", y="value", hue="regex", style="domain", markers=True, ax=axes[0])
    axes[0].set(xscale="log", xlabel="vocabulary size", ylabel="NSL vs Llama 2 (lower is better)",
                title=f"tokstudy ({local} profile)")
    if not paper.empty:
        sns.lineplot(data=paper, x="vocab_size", y="value", style="domain", markers=True, color="k", ax=axes[1])
    axes[1].set(xscale="log", xlabel="vocabulary size", ylabel="NSL vs Llama 2",
                title="paper: authors' GPT-4-regex sweep (Table 3 data)")
    fig.suptitle("NSL vs vocabulary size per pre-tokenization regex — cf. paper §2 / Table 3")
    return save(fig, "nsl_vs_vocab", out_dir)


def table1(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """A table figure: our NSL per tokenizer beside the paper's Table 1."""
    ours = _ours(df, "compression")
    if ours.empty:
        return None
    ours = ours[(ours["metric"] == "nsl") & ours["dataset"].isin(["mean:code", "mean:english"])]
    sizes = ours.groupby("run")["vocab_size"].first() if "vocab_size" in ours.columns else None
    ours = ours.pivot_table(index="run", columns="domain", values="value", aggfunc="first")
    paper_rows = df[df["kind"] == "paper_table1"]
    paper = paper_rows.pivot_table(index="run", columns="domain", values="value", aggfunc="first")
    sizes = pd.concat([s for s in (sizes, paper_rows.groupby("run")["vocab_size"].first()) if s is not None])
    table = ours.add_prefix("ours ").join(paper.add_prefix("paper "), how="outer")
    table.insert(0, "vocab", sizes.groupby(level=0).first().reindex(table.index))
    table = table.sort_values(["vocab"]).rename_axis(None)
    cells = table.apply(lambda col: col.map(
        (lambda v: "" if pd.isna(v) else f"{int(v):,}") if col.name == "vocab" else
        (lambda v: "" if pd.isna(v) else f"{v:.3f}")))
    fig, ax = plt.subplots(figsize=(7.5, 0.24 * len(cells) + 0.8))
    ax.axis("off")
    tab = ax.table(cellText=cells.values, rowLabels=cells.index, colLabels=cells.columns, loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    ax.set_title(f"NSL vs Llama 2, ours ({local}) beside paper Table 1 (lower is better)")
    return save(fig, "table1_nsl", out_dir)


def regex_ablation(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Code NSL per regex at one vocab size, ours beside the paper's 32k ablation."""
    ours = _ours(df, "compression")
    if not _has(ours, "regex", "vocab_size"):
        return None
    ours = ours[(ours["metric"] == "nsl") & (ours["dataset"] == "mean:code") & ours["regex"].notna()]
    if "mix" in ours.columns:
        ours = ours[ours["mix"] == "code70"]
    if ours.empty:
        return None
    size = ours.groupby("vocab_size")["regex"].nunique().idxmax()
    ours = ours[ours["vocab_size"] == size].assign(who=f"tokstudy V={int(size)}")
    paper = df[(df["kind"] == "paper_regex") & (df["metric"] == "nsl")].assign(who="paper V=32k")
    both = pd.concat([ours[["regex", "value", "who"]], paper[["regex", "value", "who"]]])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.barplot(data=both, x="regex", y="value", hue="who", ax=ax)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set(ylabel="code NSL vs Llama 2", title="Pre-tokenization regex ablation — cf. paper §2.2 (Table 2)")
    return save(fig, "regex_ablation", out_dir)


def data_mix(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """NSL per domain for tokenizers trained on different code/English mixes."""
    ours = _ours(df, "compression")
    if not _has(ours, "mix", "regex"):
        return None
    ours = ours[(ours["metric"] == "nsl") & ours["dataset"].isin(["mean:code", "mean:english"]) & ours["mix"].notna()]
    if ours.empty or ours["mix"].nunique() < 2:
        return None
    size = ours.groupby("vocab_size")["mix"].nunique().idxmax()
    ours = ours[(ours["vocab_size"] == size) & (ours["regex"] == "gpt4")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.barplot(data=ours, x="mix", y="value", hue="domain", ax=ax)
    ax.set(ylabel="NSL vs Llama 2", title=f"Training-data mix (V={int(size)}) — cf. paper Fig. 2")
    return save(fig, "data_mix", out_dir)


def renyi_vs_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Rényi efficiency (α=2.5) vs vocab size, ours beside the authors' sweep."""
    ours = _ours(df, "compression")
    if not _has(ours, "vocab_size", "regex"):
        return None
    ours = ours[(ours["metric"] == "renyi_efficiency") & ours["dataset"].isin(["mean:code", "mean:english"])
                & (ours["regex"] == "gpt4")].assign(who="tokstudy")
    if "mix" in ours.columns and not ours.empty:
        ours = ours[ours["mix"] == ours["mix"].mode().iloc[0]]
    paper = df[(df["kind"] == "paper_sweep") & (df["metric"] == "renyi_efficiency")].assign(who="paper")
    if ours.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(data=pd.concat([ours, paper]), x="vocab_size", y="value", hue="who", style="domain",
                 markers=True, ax=ax)
    ax.set(xscale="log", xlabel="vocabulary size", ylabel="Rényi efficiency (α=2.5)",
           title="Rényi efficiency vs vocabulary size — cf. paper §2 / Zouhar et al.")
    return save(fig, "renyi_vs_vocab", out_dir)


def finetune_bpb(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Bits per byte on held-out code vs fine-tuning tokens, per method (paper Fig. 6 analogue)."""
    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "bits_per_byte") & (df["dataset"] == "mean:code")]
    if not _has(ev, "tokens", "method"):
        return None
    ft = ev[ev["tokens"].fillna(0) > 0]
    if ft.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.lineplot(data=ft, x="tokens", y="value", hue="method", style="profile", markers=True, ax=ax)
    base = ev[(ev["tokens"].fillna(0) == 0) & (ev["profile"] == local)]
    for v in base["value"]:
        ax.axhline(v, color="grey", ls="--", lw=0.8)
        ax.annotate("base model (before fine-tuning)", (0, v), xycoords=("axes fraction", "data"), fontsize=7,
                    color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set(xscale="log", xlabel="fine-tuning tokens (code)", ylabel="bits per byte, held-out code (lower is better)",
           title="Switching the tokenizer: FVT vs random vs keep — cf. paper Fig. 6")
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


def compare(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """`tokstudy compare`: bytes/token and NSL per dataset and tokenizer."""
    sel = df[df["metric"].isin(["bytes_per_token", "nsl"]) & ~df["dataset"].astype(str).str.startswith("mean:")
             & (df["dataset"] != "average")]
    g = sns.catplot(data=sel, x="dataset", y="value", hue="tokenizer", col="metric", kind="bar",
                    sharey=False, height=3.5, aspect=1.4)
    g.set_titles("{col_name}")
    g.figure.suptitle("tokstudy compare (NSL base as given; lower NSL / higher bytes per token is better)", y=1.03)
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
    """Time of one training run + truncation vs separate runs, and whether they agree."""
    sw = _ours(df, "sweep")
    if sw.empty or "vocab_size" not in sw.columns:
        return None
    sec = sw[sw["metric"].isin(["train_seconds_separate", "truncate_seconds"])]
    agree = sw[sw["metric"] == "vocab_agreement"]
    if sec.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    sns.barplot(data=sec, x="vocab_size", y="value", hue="metric", ax=axes[0])
    axes[0].set(ylabel="seconds", title="separate training vs truncating one run")
    if not agree.empty:
        sns.barplot(data=agree, x="vocab_size", y="value", color="tab:green", ax=axes[1])
    axes[1].set(ylim=(0, 1.05), ylabel="share of identical vocab entries",
                title="truncated == trained at that size?")
    fig.suptitle("Vocab-size sweep from one run (the authors' CSV sweep is 125 prefixes of one merge list)")
    return save(fig, "vocab_sweep", out_dir)


def optimal_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Compute- and memory-optimal vocab size per model size, beside the paper's recommendations.

    Left: the compute objective (FLOPs per byte) per model shape, with NSL(V)
    fitted on our sweep ("measured") and on the authors' sweep ("paper").
    Right: the memory objective against batch x sequence length.
    """
    opt = _ours(df, "costs")
    if opt.empty or not _has(opt, "objective", "model"):
        return None
    opt = opt[opt["metric"] == "optimal_vocab_size"]
    comp = opt[(opt["objective"] == "compute") & (opt["seq_len"] > 0)]
    mem = opt[opt["objective"] == "memory"].assign(tokens=lambda d: d["batch"] * d["seq_len"])
    if comp.empty and mem.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if not comp.empty:
        sns.pointplot(data=comp, x="model", y="value", hue="nsl_source", linestyle="none", dodge=0.3, ax=axes[0])
    axes[0].set(yscale="log", xlabel="model shape", ylabel="compute-optimal vocabulary size",
                title="FLOPs per byte (NSL fit: ours vs authors')")
    for v, label in ((32000, "Llama 2 32k"), (80000, "paper 7B: 80k")):
        axes[0].axhline(v, color="grey", ls="--", lw=0.8)
        axes[0].annotate(label, (0, v), xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                         xytext=(2, 2), textcoords="offset points")
    if not mem.empty:
        sns.lineplot(data=mem[mem["batch"] == 1], x="tokens", y="value", hue="model", style="nsl_source",
                     markers=True, ax=axes[1])
    axes[1].set(xscale="log", yscale="log", xlabel="batch x sequence length (Llama tokens), batch 1",
                ylabel="memory-optimal vocabulary size",
                title="weights + KV cache (longer contexts: larger vocab)")
    fig.suptitle("Optimal vocabulary size — cf. paper §2.5 (inference- and memory-optimal vocabulary)", y=1.02)
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


FIGURES: dict[str, Callable[[pd.DataFrame, str, Path], list[Path] | None]] = {
    "nsl_vs_vocab": nsl_vs_vocab,
    "table1_nsl": table1,
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
