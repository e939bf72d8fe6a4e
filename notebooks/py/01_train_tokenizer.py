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
# Trains tokenizer variants of `params.yaml` (`tokenizers:`; DVC's `train_tokenizer@<variant>` runs one, and `truncate_tokenizers` cuts every variant of `truncations:` from its trained parent, the same tokenizer as training at that size on the same text — docs/paper.md#tokenizer-training): a byte-level BPE with the variant's pre-tokenization regex (docs/paper.md#pre-tokenization-regexes), vocabulary size and code/English mix (docs/paper.md#tokenizer-training), in the authors' layout (6 special tokens, 256 byte symbols, merges up to exactly V) — `tokstudy.stages.tokenizers.train_tokenizer`, the same step as `tokstudy train --variant NAME`. Writes `data/<profile>/tokenizers/<variant>/` and `results/<profile>/runs/tokenizer_train-<variant>.json`, then measures its compression on the test split (`tokstudy.stages.tokenizers.compression`, `compression-<variant>.json`).

# %% tags=["parameters"]
profile = "smoke"
variants = ["gpt4-m"]  # `tokenizers:` variants to train, or `truncations:` variants to cut (DVC: one or all)

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import tokenizers

P = params.load(profile)
train_runs = [tokenizers.train_tokenizer(P, variant) for variant in variants]
sample = "def f(x):\r\n\treturn x  # \x00 😀 日本語"
for variant in variants:
    tok = tokenizers.handle(P, variant)
    assert tok.vocab_size == P.tokenizer(variant).vocab_size and tok.decode(tok.encode(sample)) == sample
pd.DataFrame([row for run in train_runs for row in results.read_run(run)["rows"]])

# %% [markdown]
# The tokenizer has exactly the variant's vocabulary size and round-trips any byte string (control characters, emoji, CJK) because all 256 byte symbols are in the vocabulary. `train_seconds` is the training time on this machine's share of the corpus (`train_bytes`).

# %%
compression_runs = [tokenizers.compression(P, variant) for variant in variants]
rows = pd.DataFrame([row for run in compression_runs for row in results.read_run(run)["rows"]])
assert rows.loc[rows.metric == "nsl", "value"].between(0, 20).all()
rows[rows.metric.isin(["bytes_per_token", "nsl", "renyi_efficiency"])].pivot_table(
    index="dataset", columns=["tokenizer", "metric"], values="value", sort=False).round(3)

# %% [markdown]
# Compression per dataset of the test split: bytes per token (higher is better), NSL against the base tokenizer (below 1 means fewer tokens than Llama 2) and Rényi efficiency. A code-heavy mix compresses code better than English; on the tiny smoke corpus the numbers only show the machinery works.
