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
#
# `tokstudy.stages.vocab_analysis` (settings: the `analysis:` section of `params.yaml`):
#
# 1. **Vocabulary overlap** between our tokenizers and the reference ones: Jaccard overlap of token byte-strings, tokens unique to each, token-length distributions (`tokstudy.metrics.overlap_rows`; `overlap-vocab.json`).
# 2. **Vocab-size sweep from one training run**: the trained `sweep_variant` (`gpt4-256k`) truncated to every size of its `truncations:` (`tokstudy.bpe.sweep_from_one_run`), and the `sweep_compare` sizes (32k) trained separately on the same text to check they are identical and to measure the time saved (`sweep-<sweep_variant>.json`). The authors' 125-size NSL sweep (paper Table 3 data) is almost certainly built this way.

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import vocab

P = params.load(profile)
overlap_run, sweep_run = vocab.vocab_analysis(P)
overlap = pd.DataFrame(results.read_run(overlap_run)["rows"])
jaccard = overlap[overlap.metric == "vocab_jaccard"]
assert len(jaccard) == len(P.analysis.overlap) * (len(P.analysis.overlap) - 1) // 2
assert jaccard.value.between(0, 1).all()
jaccard.pivot_table(index="tokenizer", columns="other", values="value").round(3)

# %% [markdown]
# Jaccard overlap of the vocabularies (token byte-strings, special tokens skipped). Tokenizers trained on the same corpus share most of their tokens whatever their regex; reference tokenizers trained on other data overlap far less, and a small vocabulary is mostly contained in a larger one.

# %%
sweep = pd.DataFrame(results.read_run(sweep_run)["rows"])
assert not P.analysis.sweep_compare or (sweep.loc[sweep.metric == "identical", "value"] == 1).all()
sweep[sweep.metric.isin(["identical", "train_seconds_separate"])][["metric", "vocab_size", "value"]]

# %% [markdown]
# Each `sweep_compare` size trained on its own is byte-identical to the truncation of the one large run (`identical` = 1), so the whole 32k–256k sweep costs one training run; `train_seconds_separate` against `truncate_seconds` measures what that saves.
