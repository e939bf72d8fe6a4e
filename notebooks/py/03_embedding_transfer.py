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
# # 03 · Embedding transfer: switch the base model's tokenizer
#
# Paper §3.3 / Table 4 (`docs/paper.md`): the base LM (pretrained with the general tokenizer
# `transfer.base_tokenizer`) gets each code tokenizer of `targets`. New embedding and LM-head rows are
# initialised by each of `methods` (default: `transfer.methods` of `params.yaml`): `fvt` (Fast Vocabulary
# Transfer: exact byte matches copied, other tokens = mean of the old tokenizer's pieces), `random`
# (the no-FVT baseline), `mean`, or `merged` (old vocabulary extended with the new tokens).
# One call, `stages.transfer.transfer_all`, loads the base model once and writes, per method,
# `data/<profile>/models/<target>-<method>-init` and the run record `transfer-<target>-<method>.json`.
#
# `base_model` is a local HF model directory holding its tokenizer; by default the pipeline's base run
# (`notebooks/04_pretrain_base.ipynb`). A missing base model is an error naming
# `dvc repro pretrain`. There is no random stand-in model.

# %% tags=["parameters"]
profile = "smoke"
targets = ["gpt4-m"]  # `transfer.targets` (DVC: all of them, one kernel)
methods = None
base_model = None

# %%
import logging

import pandas as pd

from tokstudy import params, results
from tokstudy.stages import transfer

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# %%
P = params.load(profile)
runs = {target: transfer.transfer_all(P, target, methods, base_model=base_model) for target in targets}
assert all([results.read_run(r)["rows"][0]["method"] for r in rs] == list(methods or P.transfer.methods)
           for rs in runs.values())
runs

# %%
mapping = pd.DataFrame([{**row, "target": t} for t, rs in runs.items() for r in rs
                        for row in results.read_run(r)["rows"]])
mapping.pivot_table(index=["target", "metric"], columns="method", values="value", sort=False)

# %% [markdown]
# Each column is one way to initialise the new rows; the mapping behind them is the same.
# `exact_share` is the share of the target's tokens whose bytes are a single base-tokenizer token (copied
# as-is by `fvt` and `mean`), and `mean_pieces` is how many old rows FVT averages for a new token on
# average. `merged` keeps the old vocabulary and describes only the `n_added` appended tokens, so its
# exact share is 0 by construction; `padded_vocab_size` is the embedding size after padding.
