# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.17.3
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Figures
#
# `tokstudy.stages.figures.figures` collects every run record of the profile into one tidy CSV (`results/<profile>/results.csv`, with the paper's numbers as `profile = "paper"` rows and the committed `gpu` runs beside any other profile) and writes Table 1 (NSL per domain, ours beside the paper's) as `results/<profile>/table1_nsl.{csv,md,tex}`, and draws every figure whose rows exist, with seaborn, as PNG + PDF (`figures/` for the cpu profile, `figures/<profile>/` otherwise). `tokstudy.plots` only draws columns of that CSV; it computes nothing.

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd
from IPython.display import Image, display

from tokstudy import params, paths
from tokstudy.stages import figures

P = params.load(profile)
drawn = figures.figures(P)
assert drawn, "no figure could be drawn: run the upstream notebooks first"
assert all(p.is_file() for out in drawn.values() for p in out)
pd.read_csv(paths.results_csv(profile), low_memory=False).groupby(["profile", "kind"]).size()

# %% [markdown]
# Rows per profile and kind of run in the results table: `paper` rows are the authors' numbers, the others are our run records. A figure is drawn only when its rows exist, so the figures below are exactly those the upstream steps have produced.

# %%
table1 = pd.read_csv(paths.results_csv(profile).with_name("table1_nsl.csv"), index_col="tokenizer")
assert {"Avg", "Code", "English", "Multilingual", "paper Code"} <= set(table1.columns)
table1.round(3)

# %% [markdown]
# Table 1 like the paper's: NSL against Llama 2 per domain (a domain = the unweighted mean of its datasets), Avg = the mean of the three domain means, empty where a domain is missing from the corpus; the `paper` columns hold the authors' value for the same tokenizer and size, with its source tag. In the smoke profile our variants are tiny, so no paper value is set beside them.

# %%
for png, _pdf in drawn.values():
    display(Image(filename=str(png)))

# %% [markdown]
# Each figure names the paper figure or table it reproduces in its title and draws the paper's numbers beside ours where the paper has them. On the smoke profile the vocabularies and corpus are tiny, so only the shape of each figure (not its values) is meaningful.

# %%
from tokstudy.stages import summary

written = summary.summary(P)
assert all(p.exists() for p in written.values())
models = pd.DataFrame.from_dict(summary.read_metric_folder(written["lm"]), orient="index")
display(models)
pd.DataFrame.from_dict(summary.read_metric_folder(written["nsl"]), orient="index").sort_values("nsl_code")

# %% [markdown]
# **Headline numbers.** `tokstudy.stages.summary` writes what `dvc metrics show` / `dvc exp show` compare (`results/<profile>/metrics/lm/<run>.json`: bits per byte per domain and pass@k of each model run; `metrics/nsl/<tokenizer>.json`: NSL per domain of each tokenizer, relative to Llama 2, lower is better; one small file each so the table fits a terminal) and the two tables `dvc plots show` draws (`results/<profile>/plots/`). In the tables above, a fine-tuned model is better than `base` on code when its `bpb_code` is lower; a tokenizer compresses better than Llama 2 where its NSL is below 1.
#
