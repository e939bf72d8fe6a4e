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
# # 07 · Inference costs and optimal vocabulary size
#
# From the compression runs of the vocabulary sweep (`costs.sweep` in `params.yaml`, written by `02_tokenizer_metrics`) `tokstudy.stages.costs.costs` computes, for every model shape of `costs.shapes`: parameters, FLOPs per byte, effective context in bytes, KV-cache bytes per document and the predicted generation speed against the base tokenizer (`tokstudy.costs`, formulas and sources in its docstrings; docs/paper.md). It fits NSL(V) = a + b·(V/1000)^-c to the sweep, finds the compute- and memory-optimal vocabulary size per shape, and checks the speed prediction against random-weight models of the training shape generating the same prompts. Writes `results/<profile>/runs/costs-costs.json`; figures are drawn by `08_figures`.

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import costs

P = params.load(profile)
run = costs.costs(P)
rows = pd.DataFrame(results.read_run(run)["rows"])
optimal = rows[rows.metric == "optimal_vocab_size"]
assert optimal.value.between(P.costs.vocab_min, P.costs.vocab_max).all() and len(optimal) > 0
optimal.pivot_table(index=["model", "batch", "seq_len"], columns=["nsl_source", "objective"],
                    values="value", dropna=False)

# %% [markdown]
# The optimal vocabulary size per model shape, from our sweep and from the authors' 125-size sweep, for compute and for memory at each batch × sequence length. Reading across a row shows how the optimum moves with the model shape and the memory setting: the embedding and head grow with V, while a better compression shortens sequences and saves attention and KV-cache.

# %%
speed = rows[rows.metric.isin(["speed_measured_ratio", "speed_predicted_ratio"])]
speed.pivot_table(index="tokenizer", columns=["metric", "regime"], values="value", dropna=False).round(3)

# %% [markdown]
# Measured against predicted bytes/s ratio over the smallest vocabulary, per regime (`steps` is the primary one for batch-1 decoding of small models). On the smoke profile one short timing round only shows the machinery; the cpu and gpu profiles give the comparison that matters.
