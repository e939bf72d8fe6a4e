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
# # 05 · Fine-tune on code: keep or switch the tokenizer
#
# Paper §3.1 / Tables 2-4 / Fig. 6 (`docs/paper.md#model-side-study`): the base model is fine-tuned on
# **code only** for one pass over a **byte** budget of text (the same text whatever the tokenizer), either
# keeping its tokenizer (`keep`) or after switching to a code tokenizer with FVT or random embedding init
# (the starting model is the output of notebook 03, `data/<profile>/models/<tokenizer>-<method>-init`).
# `runs` are keys of `params.yaml` `models:`, one kernel for all (`keep-b1`, `fvt-b2`, `random-b1`, the regex / vocab ablations
# `fvt-punct-m-b2`, `fvt-gpt4-l-b2`, ...); the budget is `profiles.<p>.train.budget_bytes[run.budget]`.
# Outside the smoke profile a missing starting model is an error naming the DVC stage that makes it.
#
# Writes `data/<profile>/models/<run>`, curves under `data/<profile>/train/<run>/` and the run record
# `results/<profile>/runs/train-<run>.json` with `budget_bytes` and `tokens` = what the tokenizer made of
# that text. Scale out with `torchrun --nproc_per_node N -m tokstudy.stages train <run> --profile <p>`.

# %% tags=["parameters"]
profile = "smoke"
runs = ["fvt-b1"]  # `models.finetune` runs (DVC: all of them, one kernel)

# %%
import logging

import pandas as pd

from tokstudy import params, results
from tokstudy.stages import train

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# %%
P = params.load(profile)
records = {name: train.train(P, run, replicate=k)  # each run, then its replicates (train.finetune.seeds)
           for run in runs for k, (name, _seed) in enumerate(P.model(run).replicates(P.seed))}
metrics = pd.DataFrame({name: results.read_run(r)["extra"]["metrics"] for name, r in records.items()}).T
packed = pd.Series({name: results.read_run(r)["rows"][0]["tokens"] for name, r in records.items()})  # budget's tokens
assert (metrics.steps == metrics.max_steps).all() and (metrics.tokens >= packed).all() and (packed > 0).all(), metrics
metrics.assign(packed=packed)[["packed", "tokens", "steps", "initial_loss", "final_loss", "val_bits_per_byte",
                               "tokens_per_s"]]

# %%
curves = pd.concat([pd.read_csv(train.run_dir(P, name) / "curve.csv").assign(run=name) for name in records])
curves.pivot_table(index="tokens", columns="run", values="loss").plot(title="training loss (nats per token)");

# %%
pd.DataFrame([row for r in records.values() for row in results.read_run(r)["rows"]]).pivot_table(
    index="metric", columns="model", values="value", sort=False)

# %% [markdown]
# The curve shows the per-token loss on code during fine-tuning. Its level is *not* comparable
# between runs with different tokenizers (a token covers a different number of bytes): compare runs by
# `val_bits_per_byte` in the table, or by held-out and canonical-solution bits/byte in notebook 06. A switched
# tokenizer typically starts higher than `keep` and has to recover within the budget, which is the paper's Fig. 6 question.
# The curve is also kept, thinned to at most 100 points, in `results/<profile>/curves/<run>.csv`, which
# `dvc plots show` draws for every run (`dvc plots diff` overlays two revisions).
