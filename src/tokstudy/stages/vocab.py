"""Pipeline step ``vocab_analysis`` (notebook 09) and the vocab-size sweep (``tokstudy sweep``).

:func:`vocab_analysis` writes the vocabulary overlap of ``analysis.overlap`` (``overlap-vocab.json``)
and the sweep of ``analysis.sweep_variant`` (``sweep-<variant>.json``); :func:`sweep` is the sweep alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokstudy import bpe, metrics, paths, results
from tokstudy.errors import MetricsError
from tokstudy.params import Params
from tokstudy.stages import inputs
from tokstudy.stages.tokenizers import handle, train_texts


def vocab_analysis(P: Params) -> list[Path]:
    """Vocabulary overlap of ``analysis.overlap`` (run record ``overlap-vocab.json``) and the
    vocab-size sweep from one training run of ``analysis.sweep_variant`` (``sweep-<variant>.json``)."""
    A = P.analysis
    handles = {name: handle(P, name) for name in A.overlap}
    overlap = results.write_run(P.profile, "overlap", "vocab", metrics.overlap_rows(handles), params=A, seed=P.seed,
                                inputs=[inputs.tokenizer_file(P, n) for n in A.overlap if n in P.tokenizers])
    return [overlap, sweep(P, A.sweep_variant, compare=[P.vocab_sizes[k] for k in A.sweep_compare])]


def sweep(P: Params, variant: str, compare: bool | list[int] = False, sizes: list[int] | None = None) -> Path:
    """The vocab-size sweep of ``variant``: without ``sizes``, the trained variant (its ``tokenizers_*`` stage)
    truncated to each of its ``truncations:``; with ``sizes`` (``tokstudy sweep``), one new training run
    at the largest size truncated to the others. ``compare`` (True: every size, or a list of sizes)
    also trains those sizes on their own on the same texts to check the truncation is identical
    (``bpe.sweep_from_one_run``). Run record ``sweep-<variant>.json``."""
    from tokenizers import Tokenizer

    v = P.tokenizer(variant)
    texts = train_texts(P, v)
    files = [paths.corpus_dir(P.profile) / "train.jsonl"]
    if sizes is not None:
        rows = bpe.sweep_from_one_run(texts, v, sizes, seed=P.seed, compare=compare)
    else:
        f = inputs.tokenizer_file(P, variant)
        sizes = sorted({t.vocab_size for t in P.tokenizers.values() if t.truncate_of == variant} | {v.vocab_size})
        meta = json.loads((f.parent / "meta.json").read_text(encoding="utf-8"))
        if meta.get("train_texts_sha256") != bpe.texts_sha256(texts):
            raise MetricsError(f"{f} was trained on other texts than the corpus gives now: run "
                               f"{inputs.hint(P, 'tokenizer', variant)} first")
        record = inputs.run_record(P, "tokenizer_train", variant)  # the timing (meta.json holds none)
        one_run = {r["metric"]: r["value"] for r in results.read_run(record)["rows"]}.get("train_seconds")
        rows = bpe.sweep_from_one_run(texts, v, sizes, seed=P.seed, compare=compare,
                                      big=Tokenizer.from_file(str(f)), one_run_seconds=one_run)
        files += [f, record]
    return results.write_run(P.profile, "sweep", v.name, rows, params=v, seed=P.seed, inputs=files)


__all__ = ["sweep", "vocab_analysis"]
