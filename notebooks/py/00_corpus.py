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
# # 00 · Corpus
#
# Builds the code + English corpus of the chosen profile from software installed on this machine (`sources:` in `params.yaml`) and writes `data/<profile>/corpus/` (train/validation/test JSONL + `manifest.json` with package versions, hashes and skip counts) and the run record `results/<profile>/runs/corpus-corpus.json`: `tokstudy.stages.build_corpus` (filters, byte budget and hash split: `tokstudy.corpus`).

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from tokstudy import params, stages
from tokstudy.stages import inputs

P = params.load(profile)
run = stages.build_corpus(P)
manifest = inputs.corpus_manifest(P)
sources = pd.DataFrame.from_dict(manifest["sources"], orient="index")
assert run.is_file() and manifest["bytes"] <= P.corpus.budget_bytes
assert all(split["documents"] > 0 for split in manifest["splits"].values())
assert sources.loc[(sources.domain == "code") & (sources.files > 0), "language"].nunique() >= 4
skipped = pd.DataFrame.from_dict({k: v["skipped"] for k, v in manifest["sources"].items()}, orient="index")
sources[["language", "domain", "versions", "candidates", "files", "bytes"]].join(skipped)

# %% [markdown]
# Per source: the package versions read, candidate files, files and bytes kept, and files skipped by reason. Code sources are capped by an even byte share per domain, so the small sources are kept whole while the large ones fill the rest of the budget; the skip columns show how much generated, minified or oversized text the filters removed.

# %%
pd.DataFrame({s: {lang: v["bytes"] for lang, v in manifest["splits"][s]["languages"].items()}
              for s in manifest["splits"]})

# %% [markdown]
# Bytes per language and split. The split is a hash of each document's content, so every language lands in train, validation and test in roughly the configured fractions, and no document is in two splits.
