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
# Reads the evaluate records of the `models:` fine-tunes at the largest byte budget and groups them as the paper's Tables 2–4 do (docs/paper.md#model-side-study): **regex** (FVT runs of one vocab size with the GPT-4 / Punct / Identity regexes), **vocab** (FVT runs of GPT-4-regex tokenizers of different sizes) **transfer** (one tokenizer with FVT, random init, and `keep` for reference), **beyond** (FOCUS instead of FVT, a SuperBPE tokenizer instead of the GPT-4 regex) and **budget** (every fine-tune against the base). Each row holds, over the run's replicates, held-out code bits/byte and canonical-solution bits/byte with an interval over seeds and problems, the mean per-problem difference from its reference run with such an interval, and the paper's HumanEval pass@1 for the matching condition — `tokstudy.stages.ablations.model_ablations`, which writes `results/<profile>/model_ablations.csv` (the figures notebook draws it).

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from tokstudy import params
from tokstudy.stages import ablations

P = params.load(profile)
out = ablations.model_ablations(P)
table = pd.read_csv(out)
assert set(table.comparison) == {"regex", "vocab", "transfer", "beyond", "budget"}
assert table.loc[table.comparison != "budget", "ref_run"].nunique() == 1 and (table.seeds >= 1).all()
table[["comparison", "label", "run", "seeds", "solution_bpb", "diff_vs_ref", "diff_ci_low", "diff_ci_high",
       "significant", "diff_by_seed", "paper_pass1", "paper_diff_vs_ref"]]

# %% [markdown]
# **Reading.** `diff_vs_ref` is the mean per-problem difference in canonical-solution bits/byte from the reference run
# (`ref_run`: the gpt4-m FVT run; for the `budget` rows the base model; negative = better than it), averaged over the
# run's replicates (`seeds`: data seeds that pick other chunks of the budget and another order, paired by index with
# the reference's). Its interval resamples seeds and problems, so `significant` (the interval excludes 0) means the
# difference survives both another training run and another draw of problems; `diff_by_seed` shows each seed alone.
# `paper_pass1` is the paper's HumanEval pass@1 (%) of a 1.5B model at the paper's sizes for the matching condition,
# and `paper_diff_vs_ref` its difference from the paper's gpt4-32k FVT run (points, higher = better): directions to
# compare, not numbers ours should reach at this scale. `beyond` rows (FOCUS, SuperBPE) have no paper value.
