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
    """A vocabulary size (or a token count) as a label, one style everywhere: thousands with at most one decimal,
    ``k`` suffix (``4.1k`` for 4096, ``8.2k`` for 8192, ``32k``, ``100.3k`` for 100277, ``256k``), the integer
    below 1000 (never ``2048.0`` nor ``3×10⁴``)."""
    v = int(round(float(v)))
    if abs(v) < 1000:
        return str(v)
    return f"{v / 1000:.1f}".removesuffix(".0") + "k"


VOCAB_TICK_GAP = 0.09  # decades: labels of sizes closer than a factor 1.23 would overlap (8192 / 10k); keep the first


def _vocab_axis(ax, sizes, axis: str = "x") -> None:
    """Log-scale vocabulary axis with one :func:`_k` tick label per vocabulary size drawn (the first of two
    closer than :data:`VOCAB_TICK_GAP`), no minor ticks; ``axis``: ``"x"`` or ``"y"``."""
    from matplotlib.ticker import NullLocator

    kept: list[int] = []
    for v in sorted({int(v) for v in sizes if v == v}):
        if not kept or math.log10(v / kept[-1]) >= VOCAB_TICK_GAP:
            kept.append(v)
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_minor_locator(NullLocator())
    getattr(ax, f"set_{axis}ticks")(kept, [_k(v) for v in kept])
    if axis == "x" and len(kept) > 6:
        ax.tick_params(axis="x", labelrotation=45)


def _k_axis(ax, axis: str = "x") -> None:
    """A log axis of counts (a continuous vocabulary size, tokens) labelled in the :func:`_k` style at 1-2-5 steps."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_minor_locator(NullLocator())
    target.set_major_formatter(FuncFormatter(lambda v, _pos: _k(v)))


def _plain_log_axis(ax, axis: str = "y", unit: str = "") -> None:
    """A log axis labelled with plain numbers at 1-2-5 steps (``0.5 s``, ``2 s``, ``10 s``), not ``10⁰``."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    getattr(ax, f"set_{axis}scale")("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_minor_locator(NullLocator())
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}{unit}"))


def _bytes(v) -> str:
    """A byte count as a tick label: ``100 kB``, ``1.5 MB`` (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{v:.0f} B"


def _legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes, off the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, **kw)


def _source(rows: pd.DataFrame) -> str:
    """The source tags of paper rows, for a label."""
    tags = sorted(set(rows["source"].dropna().astype(str))) if "source" in rows.columns else []
    return "; ".join(tags) or "source unknown"


NSL_DOMAINS = ("code", "english", "multilingual")


def _training_runs(df: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """``{variant: (the run it was trained in, that run's training bytes)}`` from ``tokenizer_train`` rows:
    a truncation belongs to its parent's run, any other variant is its own run."""
    train = _ours(df, "tokenizer_train")
    if train.empty:
        return {}
    parent = (train.groupby("run")["truncate_of"].first() if "truncate_of" in train
              else pd.Series(index=train["run"].unique(), dtype=object))
    tb = train[train["metric"] == "train_bytes"].groupby("run")["value"].first()
    out = {}
    for run, of in parent.items():
        origin = of if isinstance(of, str) and of else run
        out[run] = (origin, float(tb.get(origin, math.nan)))
    return out


def nsl_vs_vocab(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """NSL vs vocab size, one panel per domain (code, English, multilingual): our GPT-4-regex 70/30 tokenizers
    with one line per training run (the truncations of one large run are one line; variants trained each on
    their own are separate runs, joined by a dotted line that says so), our other regexes as single points,
    the authors' released GPT-4-regex tokenizers measured on our test split as control points (``authors-gpt-*``
    compression runs), and the paper's sweep values (``paper_sweep`` rows) with their source."""
    ours = _ours(df, "compression")
    if not _has(ours, "vocab_size", "regex", "mix"):
        return None
    nsl = ours[(ours["metric"] == "nsl") & ours["dataset"].isin([f"mean:{d}" for d in NSL_DOMAINS])]
    control = nsl[nsl["run"].astype(str).str.startswith("authors-gpt-")]
    ours = nsl[nsl["regex"].notna() & (nsl["mix"] == "code70")]
    if ours.empty:
        return None
    runs = _training_runs(df)
    ours = ours.assign(train_run=[runs.get(r, (r, math.nan))[0] for r in ours["run"]],
                       train_mb=[runs.get(r, (r, math.nan))[1] / 1e6 for r in ours["run"]])
    paper = df[(df["kind"] == "paper_sweep") & (df["metric"] == "nsl")]
    domains = [d for d in NSL_DOMAINS if (ours["domain"] == d).any() or (paper["domain"] == d).any()]
    fig, axes = plt.subplots(1, len(domains), figsize=(5.2 * len(domains), 4.2), squeeze=False)
    colors = iter(sns.color_palette("tab10"))
    gpt4 = ours[ours["regex"] == "gpt4"]
    # a multi-point training run (truncations of one run) gets its own line; single-size runs share one colour
    sizes = gpt4.groupby("train_run")["vocab_size"].nunique()
    run_color = {r: next(colors) for r in sorted(sizes.index) if sizes[r] > 1}
    single = next(colors)
    other_color = {r: next(colors) for r in sorted(ours.loc[ours["regex"] != "gpt4", "regex"].unique())}
    for ax, domain in zip(axes[0], domains, strict=True):
        mine = gpt4[gpt4["domain"] == domain]
        ticks = list(mine["vocab_size"])
        for run, color in run_color.items():
            g = mine[mine["train_run"] == run].sort_values("vocab_size")
            mb = g["train_mb"].iloc[0] if len(g) else math.nan
            ax.plot(g["vocab_size"], g["value"], "o-", color=color,
                    label=f"tokstudy {run} run, truncated to each size ({mb:.0f} MB, {local})")
        alone = mine[~mine["train_run"].isin(list(run_color))].sort_values("vocab_size")
        if not alone.empty:
            mbs = sorted({f"{x:.0f}" for x in alone["train_mb"].dropna()})
            ax.plot(alone["vocab_size"], alone["value"], "o:", color=single,
                    label=f"tokstudy {'/'.join(alone['run'])}: one run per size ({'/'.join(mbs) or '?'} MB, {local})")
        for regex, g in ours[(ours["regex"] != "gpt4") & (ours["domain"] == domain)].groupby("regex"):
            ax.plot(g["vocab_size"], g["value"], "s", ms=6, color=other_color[regex],
                    label=f"tokstudy {regex} ({local})")
            ticks += list(g["vocab_size"])
        ctl = control[control["domain"] == domain].sort_values("vocab_size")
        if not ctl.empty:
            ax.plot(ctl["vocab_size"], ctl["value"], "D", ms=8, mfc="none", mew=1.8, color="k",
                    label="authors' released gpt_32k/64k/80k on our test split (control)")
            ticks += list(ctl["vocab_size"])
        theirs = paper[paper["domain"] == domain].sort_values("vocab_size")
        if not theirs.empty:
            ax.plot(theirs["vocab_size"], theirs["value"], "x--", color="k",
                    label=f"paper gpt4 sweep, their test data [{_source(theirs)}]")
            ticks += [v for v in theirs["vocab_size"] if v in (10_000, 16_000)]
        _vocab_axis(ax, ticks)
        ax.set(xlabel="vocabulary size", ylabel=f"{domain} NSL vs Llama 2 (lower is better)", title=domain)
    _legend_outside(axes[0][-1])
    fig.suptitle("NSL vs vocabulary size, GPT-4 regex, 70% code mix — ours, the authors' released "
                 "tokenizers on our text, and the authors' sweep")
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
    ax.tick_params(axis="x", labelrotation=25)
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


FIG6_NOTE = ("Paper Fig. 6 is not drawn: its numbers were not recovered (data/paper has none). In words "
             "(docs/paper.md#figure-6-fine-tuning-budget): the 1.5B model kept on its Llama tokenizer\nvs the same "
             "model switched to GPT-4 or Punct (FVT), fine-tuned on 5B to 500B tokens: after 5B tokens the switched "
             "models are clearly behind;\nby 50B the gap has almost closed, and on pass@1 it reverses. Our budgets "
             "are bytes of code, orders of magnitude below the paper's.")


def finetune_bpb(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Bits per byte on held-out code vs the fine-tuning byte budget, per method (paper Fig. 6 analogue).

    Only the transfer comparison: ``keep`` runs and the runs of the tokenizer that ``random`` runs switch
    to, so each line is one tokenizer (the regex / vocab FVT ablations have their own figure). The budgets
    drawn are the x ticks, each line's points are marked, and the caption says how many budgets there are and
    what the paper's Fig. 6 shows in words: its values are not in ``data/paper``, so none are drawn."""
    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "bits_per_byte") & (df["dataset"] == "mean:code")]
    if not _has(ev, "budget_bytes", "method", "stage", "tokenizer"):
        return None
    switched = set(ev.loc[ev["method"] == "random", "tokenizer"])
    ft = ev[(ev["stage"] == "finetune") & ev["method"].isin(["keep", "fvt", "random"])
            & ((ev["method"] == "keep") | ev["tokenizer"].isin(switched))]
    if ft.empty:
        return None
    ft = ft.assign(method=ft["method"] + " (" + ft["tokenizer"].astype(str) + ")")
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    # a line through the replicates' mean per budget; every replicate (seed) a dot, so the spread is in view
    sns.lineplot(data=ft, x="budget_bytes", y="value", hue="method", style="profile", markers=True, markersize=8,
                 errorbar=None, ax=ax)
    sns.scatterplot(data=ft, x="budget_bytes", y="value", hue="method", legend=False, alpha=0.45, s=18, ax=ax)
    base = ev[(ev["stage"] == "pretrain") & (ev["profile"] == local)]
    for v in base["value"]:
        ax.axhline(v, color="grey", ls="--", lw=0.8, label="base model, before fine-tuning")
    budgets = sorted(ft["budget_bytes"].dropna().unique())
    ax.set(xscale="log", xlabel="fine-tuning budget (bytes of code text)",
           ylabel="bits per byte, held-out code (lower is better)",
           title=f"Switching the tokenizer: FVT vs random vs keep ({local}, {len(budgets)} budgets;\n"
                 "line: mean over seeds, dots: each seed)")
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(budgets, [_bytes(b) for b in budgets])
    if len(budgets) > 1:  # room either side of the outer budgets
        lo, hi = math.log10(budgets[0]), math.log10(budgets[-1])
        pad = (hi - lo) * 0.1
        ax.set_xlim(10 ** (lo - pad), 10 ** (hi + pad))
    _legend_outside(ax)
    fig.text(0.01, -0.02, FIG6_NOTE, fontsize=7, va="top", ha="left")
    return save(fig, "finetune_bpb", out_dir)


def speed_vs_nsl(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Generation speed vs code NSL of the tokenizer, with the run-to-run spread drawn, not hidden.

    Left: bytes of typical code per second (``gen_text_bytes_per_s``) of every evaluated model run, one dot per
    run, grouped by tokenizer, with the range over the runs of one tokenizer as a vertical bar (these models
    share a shape, so that range is timing noise). Right, when the ``costs`` run exists: the speed check's
    random-weight models of one shape (``speed_measured_ratio``, best of the timing rounds) against the code NSL
    of the same tokenizers, with each round (``speed_measured_ratio_round`` rows) when the record has them."""
    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "gen_text_bytes_per_s")]
    comp = _ours(df, "compression")
    if ev.empty or comp.empty or "tokenizer" not in ev.columns:
        return None
    nsl = comp[(comp["metric"] == "nsl") & (comp["dataset"] == "mean:code")].groupby("run")["value"].first()
    ev = ev.assign(nsl=ev["tokenizer"].map(nsl)).dropna(subset=["nsl"])
    if ev.empty:
        return None
    sc = _ours(df, "costs")
    check = sc[sc["metric"] == "speed_measured_ratio"] if "metric" in sc.columns else sc
    check = check.assign(nsl=check["tokenizer"].map(nsl)).dropna(subset=["nsl"]) if not check.empty else check
    fig, axes = plt.subplots(1, 2 if not check.empty else 1, figsize=(14 if not check.empty else 7, 4.4),
                             squeeze=False, layout="constrained")
    ax = axes[0][0]
    for i, (tok, g) in enumerate(ev.groupby("tokenizer")):
        color = f"C{i % 10}"
        x = float(g["nsl"].iloc[0])
        ax.plot([x] * len(g), g["value"], "o", ms=6, color=color, alpha=0.8, ls="none",
                label=f"{tok} ({len(g)} run{'s' if len(g) > 1 else ''})")
        if len(g) > 1:
            ax.vlines(x, g["value"].min(), g["value"].max(), color=color, lw=2, alpha=0.5)
    ax.set(xlabel="code NSL of the tokenizer (lower = fewer tokens)",
           ylabel="code bytes / s (tokens/s x held-out bytes/token)",
           title="trained models: one dot per evaluated run, bar = spread of one tokenizer")
    _legend_outside(ax, title="tokenizer")
    if not check.empty:
        ax = axes[0][1]
        ax.plot(check["nsl"], check["value"], "o", ms=8, color="k", ls="none",
                label="best timing round\n(random weights, one shape)")
        rounds = _rounds(sc)
        if not rounds.empty:
            rounds = rounds.assign(nsl=rounds["tokenizer"].map(nsl)).dropna(subset=["nsl"])
            ax.plot(rounds["nsl"], rounds["value"], ".", ms=5, color="grey", ls="none", label="each timing round")
            span = rounds.groupby("nsl")["value"].agg(["min", "max"])
            ax.vlines(span.index, span["min"], span["max"], color="grey", lw=1)
        for _, r in check.iterrows():  # at most a handful of points, far apart in x: the tokenizer's V beside it
            ax.annotate(_k(r["vocab_size"]), (r["nsl"], r["value"]), fontsize=7, xytext=(5, -3),
                        textcoords="offset points")
        anchor = check["anchor"].iloc[0] if "anchor" in check.columns else "the anchor"
        ax.set(xlabel="code NSL of the tokenizer", ylabel=f"generation bytes/s relative to {anchor}",
               title="cost-model speed check (labels: vocabulary size)")
        _legend_outside(ax)
    fig.suptitle(f"Compression vs generation speed ({local}) — cf. paper abstract, §2.4\nwhere the runs of one "
                 "tokenizer spread more than the tokenizers differ, the left panel shows timing noise, not an effect")
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
    g.figure.suptitle(f"tokstudy compare on {', '.join(map(str, df['corpus'].dropna().unique()))}: "
                      f"NSL vs {', '.join(map(str, df['base'].dropna().unique()))}", y=1.03)
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


SWEEP_SECONDS = {"train_seconds_one_run": ("one training run at the largest size", "o", "tab:blue"),
                 "truncate_seconds": ("truncating that run to the size", "s", "tab:orange"),
                 "train_seconds_separate": ("training the size on its own", "D", "tab:green")}


def vocab_sweep(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Seconds of the one training run, of each truncation and of training a size on its own, and whether
    the truncation is identical to that separately trained tokenizer.

    Points on log axes (bars on a log axis have no baseline: their lengths would mean nothing)."""
    sw = _ours(df, "sweep")
    if sw.empty or "vocab_size" not in sw.columns:
        return None
    sec = sw[sw["metric"].isin(list(SWEEP_SECONDS))].dropna(subset=["value"])
    agree = sw[sw["metric"] == "identical"]
    if sec.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    for metric, (label, marker, color) in SWEEP_SECONDS.items():
        g = sec[sec["metric"] == metric].sort_values("vocab_size")
        if not g.empty:
            axes[0].plot(g["vocab_size"], g["value"], marker, ms=8, color=color, ls="-" if len(g) > 1 else "none",
                         label=label)
    _vocab_axis(axes[0], sec["vocab_size"])
    _plain_log_axis(axes[0], "y", " s")
    axes[0].set(xlabel="vocabulary size", ylabel="seconds (log scale)",
                title="one run at the largest size, its truncations, separate training")
    _legend_outside(axes[0])
    if not agree.empty:
        yes = agree["value"].astype(float) == 1.0
        axes[1].plot(agree.loc[yes, "vocab_size"], [1] * int(yes.sum()), "o", ms=10, color="tab:green",
                     label="byte-identical")
        axes[1].plot(agree.loc[~yes, "vocab_size"], [0] * int((~yes).sum()), "X", ms=10, color="tab:red",
                     label="differs")
        _vocab_axis(axes[1], agree["vocab_size"])
    axes[1].set(ylim=(-0.5, 1.5), yticks=[0, 1], yticklabels=["differs", "identical"], xlabel="vocabulary size",
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
        for xi, (_, r) in zip(x, g.iterrows(), strict=True):  # hollow = extrapolated: a legend entry, no label
            axes[0].plot(xi, r["value"], "o", color=f"C{j}", mfc="none" if r["extrapolated"] else f"C{j}", ms=8,
                         ls="none")
        axes[0].plot([], [], "o", color=f"C{j}", label=f"NSL fit: {source}")
    if comp["extrapolated"].any():
        axes[0].plot([], [], "o", mfc="none", color="grey", ls="none", label="extrapolated (outside fitted V range)")
    axes[0].set_xticks(range(len(models)), models)
    if {"nsl_fit_v_min", "nsl_fit_v_max"} <= set(span.index):
        axes[0].axhspan(span["nsl_fit_v_min"], span["nsl_fit_v_max"], color="tab:blue", alpha=0.08,
                        label=f"measured V range {_k(span['nsl_fit_v_min'])}–{_k(span['nsl_fit_v_max'])}")
    axes[0].set(yscale="log", xlabel="model shape", ylabel="compute-optimal vocabulary size",
                title="FLOPs per byte (hollow: outside the fitted range)")
    _k_axis(axes[0], "y")
    for v, label, ls in ((32000, "Llama 2: 32k", "--"), (80000, "paper 7B: 80k [P2]", "-.")):
        axes[0].axhline(v, color="grey", ls=ls, lw=0.8, label=label)  # in the legend: no text over the points
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
    _k_axis(axes[1], "x")
    _k_axis(axes[1], "y")
    _legend_outside(axes[1])
    fig.suptitle("Optimal vocabulary size — cf. paper §2.5 (inference- and memory-optimal vocabulary)", y=1.02)
    fig.tight_layout()
    return save(fig, "optimal_vocab", out_dir)


ROUND_METRIC = "speed_measured_ratio_round"  # one row per timing round (``round`` column), when the record has them


def _rounds(sc: pd.DataFrame) -> pd.DataFrame:
    """The per-round measured speed ratios of a costs record (empty for records that kept only the best round)."""
    return sc[sc["metric"] == ROUND_METRIC] if "metric" in sc.columns else sc.iloc[:0]


def speed_check(df: pd.DataFrame, local: str, out_dir: str | Path) -> list[Path] | None:
    """Measured vs predicted generation-speed ratio (bytes/s over the anchor tokenizer) per vocab size.

    Draws the ``costs`` run's ``speed_measured_ratio`` points (the best of its timing rounds) with every
    round's ratio (``speed_measured_ratio_round`` rows, when the record has them) as small dots and their
    range as an error bar, and one ``speed_predicted_ratio`` line per cost-model regime (the primary regime
    solid), its ``speed_prediction_mae`` in the legend. Vocabulary sizes are the x ticks: no point labels.
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
    maes = {r["regime"]: r["value"] for _, r in mae.iterrows()}
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for regime, g in sorted(pred.groupby("regime"), key=lambda kv: (kv[0] != primary, kv[0])):
        g = g.sort_values("vocab_size")
        err = f"; mean abs. error {maes[regime]:.0%}" if regime in maes else ""
        ax.plot(g["vocab_size"], g["value"], marker="x", ls="-" if regime == primary else ":",
                label=f"predicted, {regime} regime{' (primary)' if regime == primary else ''}{err}")
    rounds = _rounds(sc)
    for source, g in meas.groupby("source"):
        g = g.sort_values("vocab_size")
        r = rounds[rounds["source"] == source] if "source" in rounds.columns else rounds.iloc[:0]
        n = int(r["round"].nunique()) if "round" in r.columns and not r.empty else 0
        ax.plot(g["vocab_size"], g["value"], "o", ms=8, color="k", ls="none",
                label=f"measured ({source}{f', best of {n} rounds' if n else ''})")
        if n:
            ax.plot(r["vocab_size"], r["value"], ".", ms=4, color="grey", ls="none", label="each timing round")
            span = r.groupby("vocab_size")["value"].agg(["min", "max"]).reindex(g["vocab_size"])
            ax.errorbar(g["vocab_size"], g["value"], yerr=[g["value"].to_numpy() - span["min"].to_numpy(),
                                                           span["max"].to_numpy() - g["value"].to_numpy()],
                        fmt="none", ecolor="k", elinewidth=0.8, capsize=3)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    anchor = meas["anchor"].iloc[0] if "anchor" in meas.columns else "anchor"
    _vocab_axis(ax, pd.concat([meas["vocab_size"], pred["vocab_size"]]))
    ax.set(xlabel="vocabulary size", ylabel=f"generation bytes/s relative to {anchor}",
           title=f"Cost model vs measured generation speed ({local})")
    _legend_outside(ax)
    return save(fig, "speed_check", out_dir)


ABLATION_PANELS = (("regex", "pre-tokenization regex (paper Table 2)"), ("vocab", "vocabulary size (paper Table 3)"),
                   ("transfer", "embedding init (paper Table 4)"), ("beyond", "FOCUS and SuperBPE (beyond the paper)"),
                   ("budget", "each fine-tune vs the base"))


def model_ablations(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Forest plot of the ``model_ablations`` table (``tokstudy.stages.ablations``).

    Left, ours: every fine-tune's paired difference in HumanEval canonical-solution bits/byte from its
    reference run (``ref_run``; lower is better), with the interval over seeds and problems; a filled marker
    where that interval excludes 0 (``significant``), a hollow one where it does not, each seed's own difference
    as small dots. Right, the paper's: its HumanEval pass@1 difference (points; higher is better) for the
    matching question, labelled with the paper's own condition (its vocab sizes are not ours): a panel of its
    own, never a second axis on ours, and no paper value drawn at one of our rows."""
    t = table[table["diff_vs_ref"].notna()].reset_index(drop=True)
    order = [c for c, _ in ABLATION_PANELS] + sorted(set(t["comparison"]) - {c for c, _ in ABLATION_PANELS})
    t = t.assign(_o=t["comparison"].map({c: i for i, c in enumerate(order)})).sort_values("_o", kind="stable")
    paper = t[t["paper_diff_vs_ref"].notna()] if "paper_diff_vs_ref" in t else t.iloc[0:0]
    fig, (ax, px) = plt.subplots(1, 2, figsize=(14, 2.2 + 0.36 * len(t)), gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(t)))[::-1]
    colors = dict(zip(order, sns.color_palette("tab10"), strict=False))
    for y, (_, r) in zip(ys, t.iterrows(), strict=True):
        c = colors[r["comparison"]]
        ax.errorbar([r["diff_vs_ref"]], [y], xerr=[[r["diff_vs_ref"] - r["diff_ci_low"]],
                                                   [r["diff_ci_high"] - r["diff_vs_ref"]]],
                    fmt="o", ms=7, capsize=3, color=c, mfc=c if bool(r["significant"]) else "white")
        seeds = [float(s) for s in str(r.get("diff_by_seed") or "").split()]
        ax.plot(seeds, [y] * len(seeds), "|", ms=9, color=c, alpha=0.6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ys, [f"{r.comparison}: {r.label}  vs {r.ref_run}" for r in t.itertuples()])
    n = int(t["seeds"].max()) if "seeds" in t and len(t) else 1
    ax.set(xlabel="Δ HumanEval solution bits/byte vs the reference run\n(lower is better)",
           title=f"ours: paired differences, 95% interval over {n} seeds x problems\n"
                 "(filled: excludes 0; | : one seed)")
    pys = list(range(len(paper)))[::-1]
    px.barh(pys, paper["paper_diff_vs_ref"], color=[colors[c] for c in paper["comparison"]])
    px.axvline(0, color="black", lw=0.8)
    px.set_yticks(pys, [f"{r.comparison}: {r.paper_label} (paper)" for r in paper.itertuples()])
    px.yaxis.tick_right()
    sources = "; ".join(sorted(set(paper["paper_source"].dropna().astype(str)))) or "no paper values"
    px.set(xlabel="Δ HumanEval pass@1 (points) vs the paper's gpt4-32k FVT run\n(higher is better)",
           title="the paper's own conditions (1.5B model)\nits vocab sizes, not ours")
    fig.text(0.99, 0.005, f"paper values: {sources}", ha="right", va="bottom", fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
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
