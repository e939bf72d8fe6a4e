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
# # 01 · Train a tokenizer
#
# Trains one tokenizer variant of `params.yaml` (`tokenizers:`; a variant of `truncations:` is instead cut from its trained variant, the same tokenizer as training at that size on the same text — docs/paper.md#tokenizer-training): a byte-level BPE with the variant's pre-tokenization regex (docs/paper.md#pre-tokenization-regexes), vocabulary size and code/English mix (docs/paper.md#tokenizer-training), in the authors' layout (6 special tokens, 256 byte symbols, merges up to exactly V) — `tokstudy.stages.tokenizers.train_tokenizer`, the same step as `tokstudy train --variant NAME`. Writes `data/<profile>/tokenizers/<variant>/` and `results/<profile>/runs/tokenizer_train-<variant>.json`, then measures its compression on the test split (`tokstudy.stages.tokenizers.compression`, `compression-<variant>.json`).

# %% tags=["parameters"]
profile = "smoke"
variant = "gpt4-m"

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import tokenizers

P = params.load(profile)
train_run = tokenizers.train_tokenizer(P, variant)
tok = tokenizers.handle(P, variant)
sample = "def f(x):\r\n\treturn x  # \x00 😀 日本語"
assert tok.vocab_size == P.tokenizer(variant).vocab_size and tok.decode(tok.encode(sample)) == sample
pd.DataFrame(results.read_run(train_run)["rows"])

# %% [markdown]
# The tokenizer has exactly the variant's vocabulary size and round-trips any byte string (control characters, emoji, CJK) because all 256 byte symbols are in the vocabulary. `train_seconds` is the training time on this machine's share of the corpus (`train_bytes`).

# %%
compression_run = tokenizers.compression(P, variant)
rows = pd.DataFrame(results.read_run(compression_run)["rows"])
assert rows.loc[rows.metric == "nsl", "value"].between(0, 20).all()
rows[rows.metric.isin(["bytes_per_token", "nsl", "renyi_efficiency"])].pivot_table(
    index="dataset", columns="metric", values="value", sort=False).round(3)

# %% [markdown]
# Compression per dataset of the test split: bytes per token (higher is better), NSL against the base tokenizer (below 1 means fewer tokens than Llama 2) and Rényi efficiency. A code-heavy mix compresses code better than English; on the tiny smoke corpus the numbers only show the machinery works.
