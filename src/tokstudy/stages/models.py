"""The model-side pipeline steps: train a ``models:`` run, transfer the base model to a new tokenizer.

Steps (each takes ``P = params.load(profile)`` plus its item, writes its run record, returns its Path)
    :func:`train` ``(P, run)``
        pre-train the base or fine-tune a run of params.yaml ``models:``:
        ``data/<p>/models/<run>``, ``results/<p>/runs/train-<run>.json``
    :func:`transfer` ``(P, target, method)``
        the base model with tokenizer variant ``target``:
        ``data/<p>/models/<target>-<method>-init``, ``transfer-<target>-<method>.json``
    :func:`transfer_all` ``(P, target)``
        :func:`transfer` for every method of ``transfer.methods``, loading the base model once

Model-side inputs
    :func:`packed_dir` / :func:`run_texts` (a run's packed data and its documents), :func:`run_dir`
    (checkpoints and curves), :func:`init_model_dir` / :func:`initial_model` (what a run starts
    from), :func:`base_model_dir` (the model :func:`transfer` starts from).

Missing inputs
    Only in the ``smoke`` profile (and not under ``torchrun``) is a missing base model or transfer
    output made on the spot, so a notebook runs top to bottom on its own. In every other profile a
    missing model is an error naming the DVC stage that makes it; nothing is written.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from tokstudy import distributed, packing, paths, results, training
from tokstudy import transfer as transfer_mod
from tokstudy.errors import TrainError, TransferError
from tokstudy.model import build_model, load_model, save_model
from tokstudy.params import ModelRun, Params, TrainParams
from tokstudy.stages import inputs, summary

log = logging.getLogger(__name__)

SMOKE = "smoke"
BASE_RUN = "base"  # the `models:` run that pre-trains the base model (DVC stage pretrain@base)


# --------------------------------------------------------------------------- inputs


def run_dir(P: Params, run: str) -> Path:
    """Checkpoints, curves and metrics of a run: ``data/<profile>/train/<run>``."""
    return paths.data_dir(P.profile) / "train" / run


def packed_dir(P: Params, run: str, split: str) -> Path:
    """Where a run's packed ``split`` lives: ``data/<profile>/packed/<run>/<split>``."""
    return paths.data_dir(P.profile) / "packed" / run / split


def run_texts(P: Params, spec: ModelRun, split: str) -> list[str]:
    """The documents a model run trains (or validates) on, from the profile's corpus ``split``.

    ``spec.mix`` names a mix of ``params.mixes``. A pure mix (``code100``) keeps
    exactly that domain's documents; a blend goes through ``corpus.sample_mix``
    over the whole split. Either way the documents are then shuffled with the
    profile's seed, so a ``max_tokens`` cut samples every source.
    """
    from tokstudy import corpus

    docs = inputs.corpus_split(P, split)
    mix = P.mix(spec.mix)
    domains = [d for d, share in mix.items() if share > 0]
    if len(domains) == 1:
        texts = [d.text for d in docs if d.domain == domains[0]]
    else:
        avail = {dom: sum(len(d.text.encode("utf-8")) for d in docs if d.domain == dom) for dom in domains}
        budget = int(min(avail[dom] / mix[dom] for dom in domains))  # the most the mix allows
        texts = list(corpus.sample_mix(docs, mix, budget, P.seed))
    # corpus order groups documents by source; a token budget cut must not keep only the first source
    random.Random(P.seed).shuffle(texts)
    if not texts:
        raise packing.DataError(
            f"no {split} documents for mix {spec.mix!r} in the corpus of profile {P.profile!r}: "
            f"rebuild it (`dvc repro corpus`) with sources of that mix's domains"
        )
    return texts


def budget_texts(texts: Sequence[str], n_bytes: int, run: str) -> list[str]:
    """The leading ``texts`` that hold ``n_bytes`` UTF-8 bytes, the last one cut (at a character boundary).

    A fine-tune's budget is bytes of text, so runs with different tokenizers see the same text.
    Fewer bytes than the budget is a :class:`~tokstudy.packing.DataError` naming ``train.budget_bytes``.
    """
    out, left = [], n_bytes
    for text in texts:
        if left <= 0:
            break
        raw = text.encode("utf-8")
        out.append(text if len(raw) <= left else raw[:left].decode("utf-8", errors="ignore"))
        left -= len(raw)
    if left > 0:
        raise packing.DataError(
            f"run {run!r}: its training split holds {n_bytes - left} bytes, fewer than its budget of {n_bytes}; "
            f"lower train.budget_bytes in params.yaml or build a larger corpus (corpus.budget_bytes)"
        )
    return out


def _missing(P: Params, directory: Path, stage: str, notebook: str, error: type[Exception]) -> Exception:
    return error(
        f"no model in {directory} (profile {P.profile!r}): run `dvc repro {stage}` "
        f"(or notebooks/{notebook} -p profile {P.profile})"
    )


def init_model_dir(P: Params, spec: ModelRun, make_missing: bool | None = None) -> Path:
    """The model directory run ``spec`` starts from (``spec.init_model``); its config.json must exist.

    A ``keep`` run starts from another ``models:`` run, an ``fvt``/``random`` run from the
    transfer output ``<tokenizer>-<method>-init``. ``make_missing`` (default: smoke profile only)
    trains / transfers a missing one first; otherwise a :class:`TrainError` names the DVC stage.
    """
    directory = paths.model_dir(P.profile, spec.init_model)
    if (directory / "config.json").is_file():
        return directory
    if spec.method == "keep":  # another models: run; its DVC stage is its group (pretrain / finetune)
        stage = f"{P.model(spec.init_model).stage}@{spec.init_model}"
        book = "04_pretrain_base" if P.model(spec.init_model).stage == "pretrain" else "05_finetune"
        notebook = f"{book}.ipynb -p run {spec.init_model}"
    else:
        stage, notebook = f"transfer@{spec.tokenizer}", f"03_embedding_transfer.ipynb -p target {spec.tokenizer}"
    if not (P.profile == SMOKE if make_missing is None else make_missing):
        raise _missing(P, directory, stage, notebook, TrainError)
    log.info("%s: making the missing starting model %s (%s profile)", spec.name, directory, P.profile)
    if spec.method == "keep":
        train(P, spec.init_model)
    else:
        transfer(P, spec.tokenizer, spec.method)
    return directory


def initial_model(P: Params, spec: ModelRun, vocab_size: int, cfg: TrainParams):
    """The model a ``models:`` run starts from: a fresh ``cfg.size`` model, or its :func:`init_model_dir`."""
    if spec.init_model is None:
        return build_model(cfg.size, vocab_size, seed=P.seed, max_seq_len=max(cfg.seq_len, 2048))
    return load_model(init_model_dir(P, spec, make_missing=False), vocab_size)


def base_model_dir(P: Params, base_model: str | Path | None = None) -> Path:
    """The model :func:`transfer` starts from: ``base_model`` (a local HF model dir), else the pipeline's base run.

    A missing pipeline base model is trained first in the smoke profile only; in any other
    profile it is a :class:`TransferError` naming ``dvc repro pretrain@base``. Never a random model.
    """
    if base_model is not None:
        return transfer_mod.check_model_dir(base_model)
    directory = paths.model_dir(P.profile, BASE_RUN)
    if not (directory / "config.json").is_file():
        if P.profile != SMOKE:
            raise TransferError(
                f"no base model in {directory} (profile {P.profile!r}): run `dvc repro pretrain@{BASE_RUN}` (or "
                f"notebooks/04_pretrain_base.ipynb -p profile {P.profile}), or pass base_model= a local HF model dir"
            )
        log.info("no base model in %s: training it first (%s profile)", directory, P.profile)
        train(P, BASE_RUN)
    return transfer_mod.check_model_dir(directory)


# --------------------------------------------------------------------------- train


def _rel(path: Path) -> str:
    """``path`` relative to the project root when under it (as run records name inputs), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(paths.ROOT)) if path.is_relative_to(paths.ROOT) else str(path)


def _pack(P: Params, spec: ModelRun, cfg: TrainParams) -> Path:
    """Pack the run's train and validation data (reused when up to date); returns the tokenizer.json."""
    tok_path = inputs.tokenizer_path(P, spec.tokenizer)
    texts = run_texts(P, spec, "train")
    if spec.bytes is not None:  # a fine-tune: one pass over its byte budget of text
        texts = budget_texts(texts, spec.bytes, spec.name)
    packing.pack(texts, tok_path, packed_dir(P, spec.name, "train"), cfg.seq_len, max_tokens=spec.tokens)
    packing.pack(run_texts(P, spec, "validation"), tok_path, packed_dir(P, spec.name, "validation"), cfg.seq_len,
                 max_tokens=cfg.val_tokens)
    return tok_path


def train(
    P: Params,
    run: str,
    *,
    resume: bool = True,
    fsdp: bool = False,
    max_steps: int | None = None,
    stop_after: int | None = None,
) -> Path | None:
    """Pre-train or fine-tune the ``models:`` run ``run``; returns its run record ``train-<run>.json``.

    Packs its train/validation data, builds (pre-train) or loads (:func:`init_model_dir`) the
    initial model, trains with ``train.<stage>`` of the profile, resuming from the newest
    checkpoint in :func:`run_dir` unless ``resume=False``, saves the model with its tokenizer to
    ``data/<p>/models/<run>`` and writes the run record. A fine-tune trains one pass over its
    ``train.budget_bytes`` of text (:func:`budget_texts`), however many tokens its tokenizer makes
    of it. Under ``torchrun`` every rank trains and only rank 0 packs, saves and writes. Returns
    ``None`` where nothing was written: on other ranks, and when ``stop_after`` ended the run
    before its last step. ``fsdp`` shards with FSDP2 instead of DDP; ``max_steps`` overrides the
    run length.
    """
    spec = P.model(run)
    cfg = P.train(spec.stage)
    if fsdp:
        cfg = dataclasses.replace(cfg, fsdp=True)
    d = distributed.init_distributed()
    init_dir = None
    if d.is_main:  # inputs first (a missing model fails before anything is packed); not inside a process group
        if spec.init_model:
            init_dir = init_model_dir(P, spec, make_missing=P.profile == SMOKE and not d.enabled)
        _pack(P, spec, cfg)
    distributed.barrier(d)
    tok_path = paths.tokenizer_dir(P.profile, spec.tokenizer) / "tokenizer.json"
    train_dir, val_dir = packed_dir(P, run, "train"), packed_dir(P, run, "validation")
    ds = packing.PackedDataset(train_dir, seed=P.seed, seq_len=cfg.seq_len, tokenizer=tok_path)
    val = packing.PackedDataset(val_dir, shuffle=False, seq_len=cfg.seq_len, tokenizer=tok_path)
    model = initial_model(P, spec, ds.meta.vocab_size, cfg)
    tokens = spec.tokens if spec.tokens is not None else ds.meta.n_tokens  # a byte budget: one pass over it
    result = training.train(
        model, ds, cfg, run_dir(P, run), val_dataset=val, resume=resume, seed=P.seed, tokens=tokens,
        max_steps=max_steps, stop_after=stop_after,
    )
    if not d.is_main or result.metrics["steps"] < result.metrics["max_steps"]:
        return None
    model_dir = save_model(result.model, paths.model_dir(P.profile, run), tokenizer=tok_path)
    summary.write_curve(P.profile, run, run_dir(P, run) / "curve.csv")  # results/<p>/curves/<run>.csv: dvc plots
    return results.write_run(
        P.profile, "train", run,
        result.rows(model=run, tokenizer=spec.tokenizer, method=spec.method, stage=spec.stage, tokens=tokens,
                    budget_bytes=spec.bytes),
        params={"run": spec, "train": cfg}, seed=P.seed,
        inputs=[tok_path, *([init_dir] if init_dir else []), train_dir / packing.META, val_dir / packing.META],
        extra={"metrics": result.metrics, "model_dir": _rel(model_dir), "init_model": spec.init_model},
    )


# --------------------------------------------------------------------------- transfer


def _swap(P: Params, model, old_tok, new_tok, base_dir: Path, target: str, method: str) -> Path:
    """Swap ``model``'s tokenizer to variant ``target`` by ``method`` (in place), save it, write the run record."""
    T = P.transfer
    model, stats = transfer_mod.swap_tokenizer(
        model, old_tok, new_tok, method, pad_to_multiple_of=T.pad_to_multiple_of, seed=P.seed, noise_std=T.noise_std,
    )
    name = f"{target}-{method}"
    out_dir = transfer_mod.save_transferred(model, stats.tokenizer, paths.model_dir(P.profile, f"{name}-init"), stats)
    return results.write_run(
        P.profile, "transfer", name,
        rows=stats.rows(model=f"{name}-init", base_tokenizer=old_tok.name),
        params=T, seed=P.seed,
        inputs=[base_dir, inputs.tokenizer_path(P, target)],
        extra={"base_model": _rel(base_dir), "model_dir": _rel(out_dir), "special_ids": stats.special_ids},
    )


def transfer(P: Params, target: str, method: str, *, base_model: str | Path | None = None) -> Path:
    """Give the base model tokenizer variant ``target`` by ``method``; returns ``transfer-<target>-<method>.json``.

    The base model is ``base_model`` (a local HF model directory holding the tokenizer it was
    trained with), else the pipeline's base run (:func:`base_model_dir`). Writes the model to
    ``data/<p>/models/<target>-<method>-init`` and the mapping statistics as the run record.
    """
    return transfer_all(P, target, [method], base_model=base_model)[0]


def transfer_all(
    P: Params, target: str, methods: Sequence[str] | None = None, *, base_model: str | Path | None = None,
) -> list[Path]:
    """:func:`transfer` for each of ``methods`` (default ``transfer.methods``), loading the base model once."""
    methods = list(P.transfer.methods if methods is None else methods)
    for m in methods:
        if m not in transfer_mod.METHODS:
            raise TransferError(f"unknown transfer method {m!r}; choose from {transfer_mod.METHODS} (transfer.methods)")
    new_tok = inputs.tokenizer_variant(P, target)  # an unknown or untrained variant fails before the base loads
    base_dir = base_model_dir(P, base_model)
    base = transfer_mod.load_base(base_dir)
    old_tok = transfer_mod.base_tokenizer(base_dir)
    out = []
    for i, method in enumerate(methods):
        model = base if i == len(methods) - 1 else copy.deepcopy(base)  # swap_tokenizer works in place
        out.append(_swap(P, model, old_tok, new_tok, base_dir, target, method))
    return out


__all__ = [
    "base_model_dir", "budget_texts", "init_model_dir", "initial_model", "packed_dir", "run_dir", "run_texts", "train",
    "transfer", "transfer_all",
]
