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
# # 09 · Vocabulary analyses
# %% [markdown]
# # 10 · Model-side ablations beside the paper
#
# Reads the evaluate records of the `models:` fine-tunes at the largest byte budget and groups them as the paper's Tables 2–4 do (docs/paper.md#model-side-study): **regex** (FVT runs of one vocab size with the GPT-4 / Punct / Identity regexes), **vocab** (FVT runs of GPT-4-regex tokenizers of different sizes) and **transfer** (one tokenizer with FVT, random init, and `keep` for reference). Each row holds held-out code bits/byte, canonical-solution bits/byte with its CI, the mean per-problem difference from the GPT-4 FVT run with a paired bootstrap CI, and the paper's HumanEval pass@1 for the matching condition — `tokstudy.stages.ablations.model_ablations`, which writes `results/<profile>/model_ablations.csv` (the figures notebook draws it).

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from tokstudy import params
from tokstudy.stages import ablations

P = params.load(profile)
out = ablations.model_ablations(P)
table = pd.read_csv(out)
assert set(table.comparison) == {"regex", "vocab", "transfer"} and table.ref_run.nunique() == 1
table[["comparison", "label", "run", "solution_bpb", "diff_vs_ref", "diff_ci_low", "diff_ci_high", "paper_pass1"]]

# %% [markdown]
# **Reading.** `diff_vs_ref` is the mean per-problem difference in canonical-solution bits/byte from the reference run (`ref_run`, negative = better than it), with a paired bootstrap interval over problems: a difference counts only where that interval excludes 0. The interval covers the sampling of problems, not training randomness (one seed per run). `paper_pass1` is the paper's HumanEval pass@1 (%) of a 1.5B model at the paper's sizes, for the matching condition: it shows the direction the paper found, not a number ours should reach at this scale.
