"""Pipeline step ``transfer`` (notebook 03): give the base model a tokenizer variant, by every method.

:func:`transfer_all` ``(P, target)`` loads the base model once and writes, per method of
``transfer.methods``, ``data/<p>/models/<target>-<method>-init`` and ``transfer-<target>-<method>.json``;
:func:`transfer` is one method. The base model is the pipeline's ``pretrain@base`` run, or any local
Hugging Face causal-LM directory (``base_model=``) holding the tokenizer it was trained with.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from tokstudy import corpus, paths, results, tokenizer
from tokstudy import transfer as transfer_mod
from tokstudy.errors import TransferError
from tokstudy.params import Params
from tokstudy.stages import inputs

BASE_RUN = "base"  # the `models:` run that pre-trains the base model (DVC stage pretrain@base)


def base_model_dir(P: Params, base_model: str | Path | None = None) -> Path:
    """``base_model`` (a local HF model dir), else the pipeline's base run (missing: MissingInput)."""
    if base_model is not None:
        return transfer_mod.check_model_dir(base_model)
    return transfer_mod.check_model_dir(inputs.model_dir(P, BASE_RUN))


def focus_aux(P: Params, target: str) -> transfer_mod.FocusAux:
    """FOCUS's auxiliary text for variant ``target``: ``transfer.focus.max_bytes`` of the train split in the
    variant's own mix (seeded like its tokenizer's sample), with ``transfer.focus`` and the profile's seed."""
    F, v = P.transfer.focus, P.tokenizer(target)
    docs = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    texts = corpus.sample_mix(docs, P.mix(v.mix), F.max_bytes, P.seed)
    return transfer_mod.FocusAux(texts=tuple(texts), dim=F.dim, epochs=F.epochs, min_count=F.min_count, seed=P.seed)


def _swap(P: Params, model, old_tok, new_tok, new_file: Path, base_dir: Path, target: str, method: str) -> Path:
    """Swap ``model``'s tokenizer to variant ``target`` by ``method`` (in place), save it, write the run record."""
    T = P.transfer
    focus = focus_aux(P, target) if method == "focus" else None
    model, stats = transfer_mod.swap_tokenizer(
        model, old_tok, new_tok, method, pad_to_multiple_of=T.pad_to_multiple_of, seed=P.seed, noise_std=T.noise_std,
        focus=focus,
    )
    name = f"{target}-{method}"
    out_dir = transfer_mod.save_transferred(model, stats.tokenizer, paths.model_dir(P.profile, f"{name}-init"), stats)
    return results.write_run(
        P.profile, "transfer", name,
        rows=stats.rows(model=f"{name}-init", base_tokenizer=old_tok.name),
        params=T, seed=P.seed,
        inputs=[base_dir, new_file] + ([inputs.corpus_file(P, "train.jsonl")] if focus else []),
        extra={"base_model": paths.relative(base_dir), "model_dir": paths.relative(out_dir),
               "special_ids": stats.special_ids, **({"focus": stats.focus} if focus else {})},
    )


def transfer(P: Params, target: str, method: str, *, base_model: str | Path | None = None) -> Path:
    """Give the base model tokenizer variant ``target`` by ``method``; returns ``transfer-<target>-<method>.json``."""
    return transfer_all(P, target, [method], base_model=base_model)[0]


def transfer_all(
    P: Params, target: str, methods: Sequence[str] | None = None, *, base_model: str | Path | None = None,
) -> list[Path]:
    """:func:`transfer` for each of ``methods`` (default ``transfer.methods``), loading the base model once."""
    methods = list(P.transfer.methods if methods is None else methods)
    for m in methods:
        if m not in transfer_mod.METHODS:
            raise TransferError(f"unknown transfer method {m!r}; choose from {transfer_mod.METHODS} (transfer.methods)")
    new_file = inputs.tokenizer_file(P, target)  # an unknown or untrained variant fails before the base loads
    new_tok = tokenizer.load(new_file.parent)
    base_dir = base_model_dir(P, base_model)
    base = transfer_mod.load_base(base_dir)
    old_tok = transfer_mod.base_tokenizer(base_dir)
    out = []
    for i, method in enumerate(methods):
        model = base if i == len(methods) - 1 else copy.deepcopy(base)  # swap_tokenizer works in place
        out.append(_swap(P, model, old_tok, new_tok, new_file, base_dir, target, method))
    return out


__all__ = ["BASE_RUN", "base_model_dir", "transfer", "transfer_all"]
