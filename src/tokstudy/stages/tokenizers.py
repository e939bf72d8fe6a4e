"""Pipeline steps of the tokenizer side (notebooks 01, 02): train or truncate a variant, measure compression.

Each step takes the resolved params ``P`` (``params.load(profile)``) plus its item name,
resolves that item once (``P.tokenizer(name)``: a :class:`~tokstudy.params.TokenizerVariant`),
passes plain values down to the library (:mod:`tokstudy.bpe`, :mod:`tokstudy.metrics`), writes
its run record (``results/<profile>/runs/<kind>-<name>.json``, with provenance) and returns its path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tokstudy import bpe, corpus, metrics, paths, reference, results, superbpe, tokenizer
from tokstudy.errors import TokenizerError
from tokstudy.params import Params, TokenizerVariant
from tokstudy.stages import inputs


def train_texts(P: Params, v: TokenizerVariant) -> list[str]:
    """The training texts of variant ``v``: its mix, sampled from the train split of the profile's corpus."""
    docs = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    return corpus.sample_mix(docs, P.mix(v.mix), v.train_bytes, P.seed)


def handle(P: Params, name: str) -> tokenizer.TokenizerHandle:
    """A trained variant of ``P`` (missing: :class:`~tokstudy.errors.MissingInput`), else a reference name or path."""
    if name in P.tokenizers:
        return tokenizer.load(inputs.tokenizer_file(P, name).parent)
    return tokenizer.load(name)


def train_tokenizer(P: Params, variant: str) -> Path:
    """Train tokenizer ``variant`` of ``params.yaml`` on its mix of the train split and save it to
    ``data/<profile>/tokenizers/<variant>/``; run record ``tokenizer_train-<variant>.json``.
    A variant of ``truncations:`` is cut from its trained variant instead (:func:`truncate_tokenizer`).
    The one place a variant is trained and saved (notebook 01 and ``tokstudy train --variant``).
    """
    v = P.tokenizer(variant)
    if v.truncate_of:
        return truncate_tokenizer(P, variant)
    texts = train_texts(P, v)
    info: dict = {}
    if v.transition is None:
        tok = bpe.train(texts, v, seed=P.seed, info=info)
    else:  # SuperBPE: the regex up to t, then no whitespace split (docs/paper.md#superbpe)
        tok = superbpe.train(texts, v, v.transition_vocab, boundaries=v.stage2_boundaries,
                             max_superword_parts=v.max_superword_parts, seed=P.seed, info=info)
    source = {"data": f"corpus {P.profile}:train, mix {v.mix}, {v.train_bytes} bytes, seed {P.seed}",
              "data_sha256": info["train_texts_sha256"], "data_sha256_of": "the training texts (texts_sha256)"}
    out = bpe.save(tok, paths.tokenizer_dir(P.profile, variant), {"variant": v, "profile": P.profile, **info, **source})
    measured = {"train_seconds": info["train_seconds"], "train_bytes": info["train_bytes"],
                "train_pieces": info["train_pieces"], "vocab_size": tok.get_vocab_size(with_added_tokens=True)}
    method = info["engine"] if v.transition is None else "superbpe"
    return _train_record(P, v, method, measured, [paths.corpus_dir(P.profile) / "train.jsonl", out])


def truncate_tokenizer(P: Params, variant: str) -> Path:
    """Save the first ``vocab_size`` tokens of the trained variant ``truncate_of`` as ``variant``
    (``bpe.truncate``: the same tokenizer as training at that size on the same text); run record
    ``tokenizer_train-<variant>.json`` with ``method`` = ``truncate``."""
    from tokenizers import Tokenizer

    v = P.tokenizer(variant)
    of = P.tokenizer(v.truncate_of)
    if of.transition is not None and v.vocab_size < of.transition_vocab:
        raise TokenizerError(f"truncations.{variant}: {v.vocab_size} is below the SuperBPE transition "
                             f"{of.transition_vocab} of {v.truncate_of!r}, where its stage-2 pre-tokenizer no longer "
                             f"matches; truncate to at least {of.transition_vocab} or train the size on its own")
    parent = inputs.tokenizer_file(P, v.truncate_of)
    t0 = time.perf_counter()
    tok = bpe.truncate(Tokenizer.from_file(str(parent)), v.vocab_size)
    seconds = time.perf_counter() - t0
    meta = json.loads((parent.parent / "meta.json").read_text(encoding="utf-8"))
    keep = {k: meta[k] for k in ("engine", "regex", "pattern", "train_bytes", "train_texts_sha256", "data",
                                 "data_sha256", "data_sha256_of", "seed") if k in meta}
    out = bpe.save(tok, paths.tokenizer_dir(P.profile, variant),
                   {"variant": v, "profile": P.profile, **keep, "truncated_from": v.truncate_of,
                    "truncated_from_sha256": meta.get("tokenizer_sha256"), "truncate_seconds": seconds})
    measured = {"truncate_seconds": seconds, "train_bytes": meta.get("train_bytes"),
                "vocab_size": tok.get_vocab_size(with_added_tokens=True)}
    return _train_record(P, v, "truncate", measured, [parent, out])


def _train_record(P: Params, v: TokenizerVariant, method: str, measured: dict, files: list[Path]) -> Path:
    labels = {"tokenizer": v.name, "vocab_size": v.vocab_size, "regex": v.regex, "mix": v.mix, "method": method,
              "truncate_of": v.truncate_of, "transition": v.transition_vocab}
    return results.write_run(
        P.profile, "tokenizer_train", v.name,
        rows=[{**labels, "metric": metric, "value": value} for metric, value in measured.items()],
        params=v, seed=P.seed, inputs=files,
    )


def compression(P: Params, name: str) -> Path:
    """Measure one tokenizer (a variant of ``params.yaml`` or a reference name) on the test split;
    run record ``compression-<name>.json`` (bytes/token, NSL against ``metrics.base``, Rényi
    efficiency, utilisation — ``metrics.compression_rows``; a bootstrap interval over documents on each
    domain's mean NSL, ``metrics.nsl_interval``; long and line-crossing tokens, ``metrics.token_shape_rows``) and
    every document's counts (``extra.documents``)."""
    M = P.metrics
    test = inputs.corpus_file(P, "test.jsonl")
    ds = metrics.limit_docs(corpus.datasets(corpus.read_split(test)), M.max_docs)
    variant = P.tokenizers.get(name)
    extra = {"variant": name, "mix": variant.mix, "vocab_size": variant.vocab_size,
             "mix_code_share": P.mix(variant.mix).get("code", 0.0), "transition": variant.transition,
             # a SuperBPE variant is its own pre-tokenization row (regex ablation, Table 1), not a GPT-4-regex one
             "regex": variant.regex if variant.transition is None else f"superbpe t={variant.transition:g}"
             } if variant else {}
    base = handle(P, M.base)
    base_counts = metrics.base_counts(base, ds, cache_dir=paths.data_dir(P.profile) / "metrics")
    h = handle(P, name)
    counts = metrics.dataset_counts(h, ds)
    rows = metrics.compression_rows(h, ds, base_counts, M.renyi_alpha, extra={**extra, "base": base.name},
                                    counts=counts, n_boot=M.nsl_interval.n_boot,
                                    confidence=M.nsl_interval.confidence, seed=P.seed)
    rows += metrics.token_shape_rows(h, counts, {d: dom for d, (dom, _texts) in ds.items()},
                                     extra={**extra, "base": base.name})
    tok_file = inputs.tokenizer_file(P, name) if variant else reference.fetch(name)
    return results.write_run(P.profile, "compression", name, rows,
                             params={"metrics": M, "tokenizer": variant or name}, seed=P.seed,
                             inputs=[tok_file, test], extra={"documents": metrics.document_counts(counts, base_counts)})


__all__ = ["compression", "handle", "train_texts", "train_tokenizer", "truncate_tokenizer"]
