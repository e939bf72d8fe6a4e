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
# # 02 · Tokenizer compression metrics
#
# Encodes the test split of the corpus (first `metrics.max_docs` documents of every dataset) with each tokenizer and with the base tokenizer (Llama 2, counts cached per profile) and writes every compression metric of paper §2.1 / Table 1 as tidy rows (`tokstudy.stages.tokenizers.compression`, one `compression-<name>.json` per tokenizer): bytes and chars per token, NSL (ratio of sums per dataset, then the unweighted mean over a domain's datasets), Rényi efficiency (α = 2.5) and vocabulary utilisation. `tokenizers`: variants of `params.yaml` (trained by `01_train_tokenizer`) or reference names (`gpt2`, `cl100k`, `llama2`, and the code-LLM tokenizers `starcoder`, `deepseek-coder`, `llama3`, `qwen2` read from llama.cpp's GGUF files — the first use fetches the 76 MB `llama-cpp-python` sdist once).

# %% tags=["parameters"]
profile = "smoke"
tokenizers = ["gpt4-m"]

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import tokenizers as steps

P = params.load(profile)
runs = [steps.compression(P, name) for name in tokenizers]
rows = pd.concat(pd.DataFrame(results.read_run(run)["rows"]) for run in runs)
assert len(runs) == len(tokenizers) and all(run.is_file() for run in runs)
assert rows.loc[rows.metric == "nsl", "value"].between(0, 20).all()
rows[rows.dataset.isin(["mean:code", "mean:english", "average"])
     & rows.metric.isin(["bytes_per_token", "nsl", "renyi_efficiency", "utilisation"])].pivot_table(
    index=["tokenizer", "dataset"], columns="metric", values="value", sort=False).round(3)

# %% [markdown]
# Per tokenizer: the code and English means over datasets and their average. NSL below 1 means the tokenizer needs fewer tokens than Llama 2 for the same text; a larger vocabulary or a code-heavy mix lowers the code NSL, the paper's Table 1 effect. Utilisation is the share of the vocabulary the test split actually uses.
