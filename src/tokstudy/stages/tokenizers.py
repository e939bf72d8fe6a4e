"""Pipeline steps of the tokenizer side: corpus, tokenizer training, compression, vocabulary analyses.

Each step takes the resolved params ``P`` (``params.load(profile)``) plus the
step's item name, writes its run record (``results.write_run``, with
provenance) to ``results/<profile>/runs/<kind>-<name>.json`` and returns its path.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tokstudy import bpe, corpus, metrics, paths, reference, results
from tokstudy.params import Params
from tokstudy.stages import inputs

log = logging.getLogger(__name__)


def build_corpus(P: Params) -> Path:
    """Build ``data/<profile>/corpus`` (``corpus.build``); run record ``corpus-corpus.json``."""
    manifest = corpus.build(P)
    rows = [{"split": "all", "metric": "documents", "value": manifest["documents"]},
            {"split": "all", "metric": "bytes", "value": manifest["bytes"]}]
    for split, s in manifest["splits"].items():
        rows += [{"split": split, "metric": "documents", "value": s["documents"]},
                 {"split": split, "metric": "bytes", "value": s["bytes"]}]
    return results.write_run(P.profile, "corpus", "corpus", rows, params=P.corpus, seed=P.seed,
                             inputs=[paths.corpus_dir(P.profile)], extra={"sha256": manifest["sha256"]})


def train_tokenizer(P: Params, variant: str) -> Path:
    """Train tokenizer ``variant`` of ``params.yaml`` on its mix of the train split and save it to
    ``data/<profile>/tokenizers/<variant>/``; run record ``tokenizer_train-<variant>.json``.
    A variant of ``truncations:`` is cut from its trained variant instead (:func:`truncate_tokenizer`).

    The one place a variant is trained and saved (notebook 01, ``tokstudy train --variant``,
    and the smoke-profile fallback of :mod:`tokstudy.stages.inputs` all call it).
    """
    v = P.tokenizer(variant)
    if v.truncate_of:
        return truncate_tokenizer(P, variant)
    texts = inputs.train_texts(P, variant)
    info: dict = {}
    tok = bpe.train(texts, v, seed=P.seed, info=info)
    source = {"data": f"corpus {P.profile}:train, mix {v.mix}, {v.train_bytes} bytes, seed {P.seed}",
              "data_sha256": info["train_texts_sha256"], "data_sha256_of": "the training texts (texts_sha256)"}
    out = bpe.save(tok, paths.tokenizer_dir(P.profile, variant), {"variant": v, "profile": P.profile, **info, **source})
    measured = {"train_seconds": info["train_seconds"], "train_bytes": info["train_bytes"],
                "train_pieces": info["train_pieces"], "vocab_size": tok.get_vocab_size(with_added_tokens=True)}
    return _train_record(P, v, info["engine"], measured, [paths.corpus_dir(P.profile) / "train.jsonl", out])


def truncate_tokenizer(P: Params, variant: str) -> Path:
    """Save the first ``vocab_size`` tokens of the trained variant ``truncate_of`` as ``variant``
    (``bpe.truncate``: the same tokenizer as training at that size on the same text); run record
    ``tokenizer_train-<variant>.json`` with ``method`` = ``truncate``."""
    from tokenizers import Tokenizer

    v = P.tokenizer(variant)
    parent = inputs.tokenizer_path(P, v.truncate_of)
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


def _train_record(P: Params, v, method: str, measured: dict, files: list[Path]) -> Path:
    labels = {"tokenizer": v.name, "vocab_size": v.vocab_size, "regex": v.regex, "mix": v.mix, "method": method,
              "truncate_of": v.truncate_of}
    return results.write_run(
        P.profile, "tokenizer_train", v.name,
        rows=[{**labels, "metric": metric, "value": value} for metric, value in measured.items()],
        params=v, seed=P.seed, inputs=files,
    )


def compression(P: Params, tokenizer: str) -> Path:
    """Measure one tokenizer (a variant of ``params.yaml`` or a reference name) on the test split;
    run record ``compression-<tokenizer>.json`` (bytes/token, NSL against ``metrics.base``, Rényi
    efficiency, utilisation — ``metrics.compression_rows``)."""
    ds = metrics.limit_docs(corpus.datasets(inputs.corpus_split(P, "test")), P.metrics.max_docs)
    variant = P.tokenizers.get(tokenizer)
    handle = inputs.named_tokenizer(P, tokenizer)
    extra = {"variant": tokenizer, "regex": variant.regex, "mix": variant.mix, "vocab_size": variant.vocab_size,
             "mix_code_share": P.mix(variant.mix).get("code", 0.0)} if variant else {}
    base = inputs.named_tokenizer(P, P.metrics.base)
    cache = paths.data_dir(P.profile) / "metrics"
    rows = metrics.compression_rows(handle, ds, metrics.base_counts(base, ds, cache_dir=cache), P.metrics.renyi_alpha,
                                    extra={**extra, "base": base.name})
    tok_file = inputs.tokenizer_path(P, tokenizer) if variant else reference.fetch(tokenizer)
    return results.write_run(P.profile, "compression", tokenizer, rows,
                             params={"metrics": P.metrics, "tokenizer": variant or tokenizer}, seed=P.seed,
                             inputs=[tok_file, paths.corpus_dir(P.profile) / "test.jsonl"])


def compression_rows(P: Params, tokenizers: list[str]) -> list[dict]:
    """The rows of the ``compression`` run records of ``tokenizers`` (smoke: measured first if missing)."""
    rows: list[dict] = []
    for name in tokenizers:
        f = paths.runs_dir(P.profile) / f"compression-{name}.json"
        if not f.is_file():
            if P.profile != inputs.SMOKE:
                v = P.tokenizers.get(name)
                stage = (f"truncate_tokenizer@{name}" if v.truncate_of else f"train_tokenizer@{name}") if v \
                    else "reference_metrics"
                raise metrics.MetricsError(
                    f"no compression results for {name!r} ({f}): run `dvc repro {stage}` (or "
                    f"notebooks/02_tokenizer_metrics.ipynb -p profile {P.profile} -p tokenizers '[\"{name}\"]')")
            compression(P, name)
        rows += results.read_run(f)["rows"]
    return rows


def vocab_analysis(P: Params) -> list[Path]:
    """Vocabulary overlap of ``analysis.overlap`` (run record ``overlap-vocab.json``) and the
    vocab-size sweep from one training run of ``analysis.sweep_variant`` (``sweep-<variant>.json``)."""
    A = P.analysis
    handles = {name: inputs.named_tokenizer(P, name) for name in A.overlap}
    overlap = results.write_run(P.profile, "overlap", "vocab", metrics.overlap_rows(handles), params=A, seed=P.seed,
                                inputs=[inputs.tokenizer_path(P, n) for n in A.overlap if n in P.tokenizers])
    return [overlap, sweep(P, A.sweep_variant, compare=[P.vocab_sizes[k] for k in A.sweep_compare])]


def sweep(P: Params, variant: str, compare: bool | list[int] = False, sizes: list[int] | None = None) -> Path:
    """The vocab-size sweep of ``variant``: without ``sizes``, the trained variant (``train_tokenizer``)
    truncated to each of its ``truncations:``; with ``sizes`` (``tokstudy sweep``), one new training run
    at the largest size truncated to the others. ``compare`` (True: every size, or a list of sizes)
    also trains those sizes on their own on the same texts to check the truncation is identical
    (``bpe.sweep_from_one_run``). Run record ``sweep-<variant>.json``."""
    from tokenizers import Tokenizer

    v = P.tokenizer(variant)
    texts = inputs.train_texts(P, variant)
    files = [paths.corpus_dir(P.profile) / "train.jsonl"]
    if sizes is not None:
        rows = bpe.sweep_from_one_run(texts, v, sizes, seed=P.seed, compare=compare)
    else:
        f = inputs.tokenizer_path(P, variant)
        sizes = sorted({t.vocab_size for t in P.tokenizers.values() if t.truncate_of == variant} | {v.vocab_size})
        meta = json.loads((f.parent / "meta.json").read_text(encoding="utf-8"))
        if meta.get("train_texts_sha256") != bpe.texts_sha256(texts):
            raise metrics.MetricsError(f"{f} was trained on other texts than the corpus gives now: run "
                                       f"`dvc repro train_tokenizer@{variant}` first")
        rows = bpe.sweep_from_one_run(texts, v, sizes, seed=P.seed, compare=compare,
                                      big=Tokenizer.from_file(str(f)), one_run_seconds=meta.get("train_seconds"))
        files.append(f)
    return results.write_run(P.profile, "sweep", v.name, rows, params=v, seed=P.seed, inputs=files)


__all__ = ["build_corpus", "compression", "compression_rows", "sweep", "train_tokenizer", "truncate_tokenizer",
           "vocab_analysis"]
