"""The inputs a pipeline step reads: corpus splits and trained tokenizers of a profile.

Every function takes the resolved params ``P`` (``params.load(profile)``).
Only in the ``smoke`` profile is a missing input made on the spot (so a notebook
opened on its own runs top to bottom); in every other profile a missing input is
an error naming the DVC stage that makes it — never a quiet fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokstudy import corpus, paths, tokenizer
from tokstudy.errors import CorpusError, TokenizerError
from tokstudy.params import Params
from tokstudy.sources import Document
from tokstudy.tokenizer import TokenizerHandle

SMOKE = "smoke"


def _corpus_file(P: Params, name: str) -> Path:
    f = paths.corpus_dir(P.profile) / name
    if not f.is_file():
        if P.profile != SMOKE:
            raise CorpusError(f"no corpus for profile {P.profile!r} at {f}: run `dvc repro corpus` "
                              f"(or notebooks/00_corpus.ipynb -p profile {P.profile})")
        from tokstudy.stages.tokenizers import build_corpus

        build_corpus(P)
    return f


def corpus_split(P: Params, split: str) -> list[Document]:
    """The documents of one split of ``data/<profile>/corpus`` (smoke: built first if missing)."""
    if split not in corpus.SPLITS:
        raise CorpusError(f"unknown corpus split {split!r}; use one of {corpus.SPLITS}")
    return corpus.read_split(_corpus_file(P, f"{split}.jsonl"))


def corpus_manifest(P: Params) -> dict:
    """The ``manifest.json`` of the profile's corpus (smoke: built first if missing)."""
    return json.loads(_corpus_file(P, "manifest.json").read_text(encoding="utf-8"))


def train_texts(P: Params, variant: str) -> list[str]:
    """The training texts of tokenizer ``variant``: its mix, sampled from the train split."""
    v = P.tokenizer(variant)
    return corpus.sample_mix(corpus_split(P, "train"), P.mix(v.mix), v.train_bytes, P.seed)


def tokenizer_path(P: Params, name: str) -> Path:
    """The ``tokenizer.json`` of trained variant ``name`` (smoke: trained first if missing)."""
    stage = "truncate_tokenizer" if P.tokenizer(name).truncate_of else "train_tokenizer"  # unknown: ParamsError
    f = paths.tokenizer_dir(P.profile, name) / "tokenizer.json"
    if not f.is_file():
        if P.profile != SMOKE:
            raise TokenizerError(
                f"tokenizer {name!r} of profile {P.profile!r} is not trained (no {f}): run "
                f"`dvc repro {stage}@{name}` (or notebooks/01_train_tokenizer.ipynb "
                f"-p profile {P.profile} -p variant {name})")
        from tokstudy.stages.tokenizers import train_tokenizer

        train_tokenizer(P, name)
    return f


def tokenizer_variant(P: Params, name: str) -> TokenizerHandle:
    """The trained tokenizer variant ``name`` of ``params.yaml`` (smoke: trained first if missing)."""
    return tokenizer.load(tokenizer_path(P, name).parent)


def named_tokenizer(P: Params, name: str) -> TokenizerHandle:
    """A variant of ``params.yaml`` (:func:`tokenizer_variant`), else a reference name or a path."""
    return tokenizer_variant(P, name) if name in P.tokenizers else tokenizer.load(name)


__all__ = ["corpus_manifest", "corpus_split", "named_tokenizer", "tokenizer_path", "tokenizer_variant", "train_texts"]
