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
# # 04 · Pre-train the base model
#
# The stand-in for the paper's NL 1.5B (§3, `docs/paper.md`): a small `LlamaForCausalLM` trained from
# scratch with the general-purpose tokenizer of the `base` run in `params.yaml` `models:` (`general-m`),
# on the run's document mix. Size, sequence length, batch, learning rate, token budget and checkpoint
# interval come from `train:` of the profile. `stages.train.train` packs the data, trains (resuming
# from the last checkpoint in `data/<profile>/train/base/` if one exists), saves the model and writes
# the run record.
#
# Writes `data/<profile>/models/base` (HF model + tokenizer), `data/<profile>/train/base/{curve,evals}.csv`
# and `results/<profile>/runs/train-base.json` (final loss, validation bits/byte, tokens/s, MFU,
# parameter counts). Scale out with
# `torchrun --nproc_per_node N -m tokstudy.stages train base --profile <p>` (same function, same record).

# %% tags=["parameters"]
profile = "smoke"
runs = ["base"]  # `models.pretrain` runs (DVC: all of them, one kernel)

# %%
import logging

import pandas as pd

from tokstudy import params, results
from tokstudy.stages import train

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# %%
P = params.load(profile)
records = {run: train.train(P, run) for run in runs}
metrics = pd.DataFrame({run: results.read_run(r)["extra"]["metrics"] for run, r in records.items()}).T
assert (metrics.steps == metrics.max_steps).all() and (metrics.final_loss < metrics.initial_loss).all(), metrics
metrics[["tokens", "steps", "initial_loss", "final_loss", "val_bits_per_byte", "tokens_per_s"]]

# %%
curves = pd.concat([pd.read_csv(train.run_dir(P, run) / "curve.csv").assign(run=run) for run in runs])
curves.pivot_table(index="tokens", columns="run", values="loss").plot(title="training loss (nats per token)");

# %%
pd.DataFrame([row for r in records.values() for row in results.read_run(r)["rows"]]).pivot_table(
    index="metric", columns="model", values="value", sort=False)

# %% [markdown]
# The curve is the mean training cross-entropy per token between log steps; it should fall
# steeply at first and flatten as the cosine schedule decays. In the table, `val_bits_per_byte` (on the
# held-out validation split) is the number that stays comparable once runs use other tokenizers;
# `tokens_per_s` and `mfu` describe this machine (on CPU the MFU peak is a measured matmul rate, so it is
# approximate).
# The curve is also kept, thinned to at most 100 points, in `results/<profile>/curves/<run>.csv`, which
# `dvc plots show` draws for every run (`dvc plots diff` overlays two revisions).
