"""What DVC shows: headline metrics, plot tables and training curves of a profile, as small tracked files.

``dvc metrics show/diff`` and ``dvc exp show`` read the JSON under ``results/<profile>/metrics/``;
``dvc plots show/diff`` read the CSVs under ``results/<profile>/plots/`` and ``results/<profile>/curves/``
(dvc.yaml declares them). Everything here is derived from run records that other steps wrote (the train step writes
``curves/<run>.csv`` itself, :func:`tokstudy.stages.train.write_curve`); nothing is measured here.

- :func:`summary` (notebook 08, after :func:`tokstudy.stages.figures`): from ``results/<p>/results.csv``
  writes ``metrics/nsl/<tokenizer>.json`` (NSL per domain), ``metrics/lm/<run>.json`` (each language-model
  run's bits/byte per domain and pass@k), ``plots/nsl_vs_vocab.csv`` (the sweep variant's regex and mix over
  vocabulary sizes) and ``plots/bpb_vs_budget.csv`` (fine-tuned bits/byte on code per method over budgets).

One small file per tokenizer or run, not one file for all: ``dvc metrics show`` prints a row per file and a
column per key of any file, so a file holding every tokenizer was one row ~2,400 characters wide; files of a
few keys give a table under 120 wide (117 on the cpu results) with one row per tokenizer or run; the
folder names are short because the longest path sets the first column's width.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokstudy import paths
from tokstudy.errors import SummaryError
from tokstudy.params import Params

DOMAINS = ("code", "english")
DIGITS = 6  # rounding of the metric files: enough for a diff, no float noise


def metrics_dir(profile: str) -> Path:
    return paths.results_dir(profile) / "metrics"


def plots_dir(profile: str) -> Path:
    return paths.results_dir(profile) / "plots"


def _round(x: float) -> float:
    return round(float(x), DIGITS)


def tokenizer_metrics(df) -> dict[str, dict[str, float]]:
    """``{tokenizer: {"nsl_code": .., "nsl_english": ..}}`` from the compression rows' per-domain means."""
    rows = df[(df["kind"] == "compression") & (df["metric"] == "nsl")
              & df["dataset"].isin([f"mean:{d}" for d in DOMAINS])]
    out: dict[str, dict[str, float]] = {}
    for r in rows.sort_values(["run", "domain"]).itertuples():
        out.setdefault(r.run, {})[f"nsl_{r.domain}"] = _round(r.value)
    return out


def model_metrics(df) -> dict[str, dict[str, float]]:
    """``{run: {"bpb_code": .., "bpb_english": .., "<bench>_pass@k": ..}}`` from the evaluate rows."""
    ev = df[df["kind"] == "evaluate"]
    bpb = ev[(ev["metric"] == "bits_per_byte") & ev["dataset"].isin([f"mean:{d}" for d in DOMAINS])]
    passk = ev[ev["metric"].astype(str).str.contains("_pass@", regex=False)]
    out: dict[str, dict[str, float]] = {}
    for r in bpb.sort_values(["run", "domain"]).itertuples():
        out.setdefault(r.run, {})[f"bpb_{r.domain}"] = _round(r.value)
    for r in passk.sort_values(["run", "metric"]).itertuples():
        out.setdefault(r.run, {})[r.metric] = _round(r.value)
    return dict(sorted(out.items()))


def nsl_vs_vocab(df, regex: str | None, mix: str):
    """Columns vocab_size, nsl_code, nsl_english of the trained tokenizers with ``regex`` and ``mix``."""
    import pandas as pd

    c = df[(df["kind"] == "compression") & (df["metric"] == "nsl") & (df["regex"] == regex) & (df["mix"] == mix)
           & df["dataset"].isin([f"mean:{d}" for d in DOMAINS])]
    if c.empty:  # a profile without these tokenizers' records: the header alone (an empty plot)
        return pd.DataFrame(columns=["vocab_size", *(f"nsl_{d}" for d in DOMAINS)])
    wide = c.pivot_table(index="vocab_size", columns="domain", values="value", aggfunc="first")
    wide = wide.rename(columns=lambda d: f"nsl_{d}").reset_index().sort_values("vocab_size")
    wide["vocab_size"] = wide["vocab_size"].astype(int)
    return wide.round(DIGITS)


def bpb_vs_budget(df):
    """Columns budget_bytes, bpb_<method>...: fine-tuned bits/byte on held-out code per fine-tuning byte budget,
    the mean over the run's replicates (``train.finetune.seeds``).

    Only the transfer comparison: ``keep``, ``fvt`` and ``random`` runs of ``keep`` and of the tokenizer that
    ``random`` runs switch to (the other runs are the ablations, ``stages.ablations``), so each cell is one run.
    """
    import pandas as pd

    ev = df[(df["kind"] == "evaluate") & (df["metric"] == "bits_per_byte") & (df["dataset"] == "mean:code")
            & (df["stage"] == "finetune")]
    if "budget_bytes" in ev:
        switched = set(ev.loc[ev["method"] == "random", "tokenizer"])
        ev = ev[ev["method"].isin(["keep", "fvt", "random"]) & ((ev["method"] == "keep") | ev["tokenizer"].isin(
            switched))].dropna(subset=["budget_bytes"])
    if ev.empty:  # no fine-tuned model evaluated yet: the header alone (an empty plot)
        return pd.DataFrame(columns=["budget_bytes"])
    run = ev["run"].fillna(ev["model"]) if "run" in ev else ev["model"]
    runs = ev.assign(_run=run).groupby(["budget_bytes", "method"])["_run"].unique()
    runs = runs[runs.map(len) > 1]
    if len(runs):
        clash = sorted(f"{method} at {int(budget)} bytes: {', '.join(sorted(names))}"
                       for (budget, method), names in runs.items())
        raise SummaryError(f"two fine-tunes share method and budget ({', '.join(clash)}); give each transfer "
                           "comparison one run per method and budget in params.yaml `models`")
    wide = ev.pivot_table(index="budget_bytes", columns="method", values="value", aggfunc="mean")
    wide = wide.rename(columns=lambda m: f"bpb_{m}").reset_index().sort_values("budget_bytes")
    wide["budget_bytes"] = wide["budget_bytes"].astype(int)
    return wide.round(DIGITS)


def write_metric_folder(folder: Path, data: dict[str, dict[str, float]]) -> Path:
    """``folder/<item>.json`` holding ``data[item]`` for every item, replacing the whole folder at once (a
    tokenizer or run gone from the results leaves no stale file); returns ``folder``."""
    with paths.atomic_dir(folder) as tmp:
        for item, values in data.items():
            if not item or "/" in item or item.startswith("."):
                raise SummaryError(f"{item!r}: not a usable metric file name (a run name in results.csv)")
            (tmp / f"{item}.json").write_text(json.dumps(values, indent=1) + "\n", encoding="utf-8")
    return folder


def read_metric_folder(folder: Path) -> dict[str, dict[str, float]]:
    """``{item: {key: value}}`` from a folder :func:`write_metric_folder` wrote (a table for a notebook)."""
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in sorted(Path(folder).glob("*.json"))}


def summary(P: Params) -> dict[str, Path]:
    """Write the metric folders and plot tables of ``P.profile`` from its ``results.csv``; returns ``{name: path}``
    (``nsl`` and ``lm``: folders of one JSON per tokenizer / model run; ``nsl_vs_vocab``, ``bpb_vs_budget``: CSVs).

    Only this profile's rows count (results.csv also holds the paper's and the committed gpu rows).
    """
    import pandas as pd

    src = paths.results_csv(P.profile)
    if not src.is_file():
        raise SummaryError(f"{src}: missing; run tokstudy.stages.figures first (notebook 08, dvc stage figures)")
    df = pd.read_csv(src, low_memory=False)
    df = df[df["profile"] == P.profile]
    for col in ("regex", "mix", "stage", "method", "tokens", "vocab_size", "domain", "tokenizer", "budget_bytes",
                "model"):
        if col not in df.columns:
            df[col] = pd.NA
    sweep = P.tokenizer(P.analysis.sweep_variant)
    written = {}
    for name, data in (("nsl", tokenizer_metrics(df)), ("lm", model_metrics(df))):
        written[name] = write_metric_folder(metrics_dir(P.profile) / name, data)
    tables = {"nsl_vs_vocab": nsl_vs_vocab(df, sweep.regex, sweep.mix), "bpb_vs_budget": bpb_vs_budget(df)}
    for name, table in tables.items():
        path = plots_dir(P.profile) / f"{name}.csv"
        written[name] = paths.atomic_write(path, table.to_csv(index=False))
    return written


__all__ = ["bpb_vs_budget", "model_metrics", "nsl_vs_vocab", "read_metric_folder", "summary", "tokenizer_metrics",
           "write_metric_folder"]
