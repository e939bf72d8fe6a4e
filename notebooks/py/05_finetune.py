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
# Paper §3.1 / Table 4 / Fig. 6 (`docs/paper.md`): the base model is fine-tuned on **code only** for a
# token budget, either keeping its tokenizer (`keep`) or after switching to the code tokenizer `gpt4-m`
# with FVT or random embedding init (the starting model is the output of notebook 03,
# `data/<profile>/models/<tokenizer>-<method>-init`). `run` is a key of `params.yaml` `models:`
# (`keep-b1`, `fvt-b2`, `random-b3`, ...); the budget is `profiles.<p>.train.budgets[run.budget]`.
# Outside the smoke profile a missing starting model is an error naming the DVC stage that makes it.
#
# Writes `data/<profile>/models/<run>`, curves under `data/<profile>/train/<run>/` and the run record
# `results/<profile>/runs/train-<run>.json` with `tokens` = the budget. Scale out with
# `torchrun --nproc_per_node N -m tokstudy.stages train <run> --profile <p>`.

# %% tags=["parameters"]
profile = "smoke"
run = "fvt-b1"

# %%
import logging

import pandas as pd

from tokstudy import params, results
from tokstudy.stages import models

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# %%
P = params.load(profile)
record = models.train(P, run)
metrics = results.read_run(record)["extra"]["metrics"]
assert metrics["steps"] == metrics["max_steps"] and metrics["tokens"] >= P.model(run).tokens, metrics
record

# %%
curve = pd.read_csv(models.run_dir(P, run) / "curve.csv")
curve.plot(x="tokens", y="loss", title=f"{run}: training loss (nats per token)", legend=False);

# %%
pd.DataFrame(results.read_run(record)["rows"])[["metric", "value"]]

# %% [markdown]
# The curve shows the per-token loss on code during fine-tuning. Its level is *not* comparable
# between runs with different tokenizers (a token covers a different number of bytes): compare runs by
# `val_bits_per_byte` in the table, or by pass@k in notebook 06. A switched tokenizer typically starts
# higher than `keep` and has to recover within the budget, which is the paper's Fig. 6 question.
# The curve is also kept, thinned to at most 100 points, in `results/<profile>/curves/<run>.csv`, which
# `dvc plots show` draws for every run (`dvc plots diff` overlays two revisions).
