"""Pipeline step ``train`` (notebooks 04, 05; ``python -m tokstudy.stages train``, also under torchrun).

:func:`train` ``(P, run)`` pre-trains the base or fine-tunes a run of params.yaml ``models:``:
packs its data (:func:`run_texts`, :func:`budget_texts`), starts from a fresh model or from
the model directory its ``init`` names (another run, or a transfer output; missing: a
:class:`~tokstudy.errors.MissingInput` naming the stage that makes it), trains
(:func:`tokstudy.training.train`), saves ``data/<p>/models/<run>``, the training curve
``results/<p>/curves/<run>.csv`` (thinned for ``dvc plots``) and ``results/<p>/runs/train-<run>.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from tokstudy import corpus, distributed, packing, paths, results, training
from tokstudy.errors import DataError, SummaryError
from tokstudy.model import build_model, load_model, save_model
from tokstudy.params import ModelRun, Params, TrainParams
from tokstudy.stages import inputs

log = logging.getLogger(__name__)

MAX_CURVE_ROWS = 100
CURVE_COLUMNS = ("step", "tokens", "loss")


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
    docs = corpus.read_split(inputs.corpus_file(P, f"{split}.jsonl"))
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
        raise DataError(
            f"no {split} documents for mix {spec.mix!r} in the corpus of profile {P.profile!r}: "
            f"rebuild it (`dvc repro corpus`) with sources of that mix's domains"
        )
    return texts


def budget_texts(texts: Sequence[str], n_bytes: int, run: str) -> list[str]:
    """The leading ``texts`` that hold ``n_bytes`` UTF-8 bytes, the last one cut (at a character boundary).

    A fine-tune's budget is bytes of text, so runs with different tokenizers see the same text.
    Fewer bytes than the budget is a :class:`~tokstudy.DataError` naming ``train.budget_bytes``.
    """
    out, left = [], n_bytes
    for text in texts:
        if left <= 0:
            break
        raw = text.encode("utf-8")
        out.append(text if len(raw) <= left else raw[:left].decode("utf-8", errors="ignore"))
        left -= len(raw)
    if left > 0:
        raise DataError(
            f"run {run!r}: its training split holds {n_bytes - left} bytes, fewer than its budget of {n_bytes}; "
            f"lower train.budget_bytes in params.yaml or build a larger corpus (corpus.budget_bytes)"
        )
    return out


def initial_model(P: Params, spec: ModelRun, vocab_size: int, cfg: TrainParams):
    """The model a ``models:`` run starts from: a fresh ``cfg.size`` model, or the directory ``spec.init`` names."""
    if spec.init_model is None:
        return build_model(cfg.size, vocab_size, seed=P.seed, max_seq_len=max(cfg.seq_len, 2048))
    return load_model(inputs.model_dir(P, spec.init_model), vocab_size)


def _pack(P: Params, spec: ModelRun, cfg: TrainParams) -> Path:
    """Pack the run's train and validation data (reused when up to date); returns the tokenizer.json."""
    tok_path = inputs.tokenizer_file(P, spec.tokenizer)
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

    Packs its train/validation data, builds (pre-train) or loads (:func:`initial_model`) the
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
            init_dir = inputs.model_dir(P, spec.init_model)
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
    write_curve(P.profile, run, run_dir(P, run) / "curve.csv")  # results/<p>/curves/<run>.csv: dvc plots
    return results.write_run(
        P.profile, "train", run,
        result.rows(model=run, tokenizer=spec.tokenizer, method=spec.method, stage=spec.stage, tokens=tokens,
                    budget_bytes=spec.bytes),
        params={"run": spec, "train": cfg}, seed=P.seed,
        inputs=[tok_path, *([init_dir] if init_dir else []), train_dir / packing.META, val_dir / packing.META],
        extra={"metrics": result.metrics, "model_dir": paths.relative(model_dir), "init_model": spec.init_model},
    )


def curves_dir(profile: str) -> Path:
    return paths.results_dir(profile) / "curves"


def thin(rows: list[dict], limit: int = MAX_CURVE_ROWS) -> list[dict]:
    """At most ``limit`` rows, evenly spaced, always keeping the first and the last.

    >>> [r["step"] for r in thin([{"step": i} for i in range(10)], 4)]
    [0, 3, 6, 9]
    """
    if len(rows) <= limit:
        return list(rows)
    picks = sorted({round(i * (len(rows) - 1) / (limit - 1)) for i in range(limit)})
    return [rows[i] for i in picks]


def write_curve(profile: str, run: str, curve_csv: str | Path) -> Path:
    """Copy a run's ``curve.csv`` (step, tokens, loss) thinned to ``results/<profile>/curves/<run>.csv``."""
    curve_csv = Path(curve_csv)
    if not curve_csv.is_file():
        raise SummaryError(f"{curve_csv}: no training curve; train the run first (dvc repro pretrain / finetune)")
    with open(curve_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not set(CURVE_COLUMNS) <= set(rows[0]):
        raise SummaryError(f"{curve_csv}: expected a header with {', '.join(CURVE_COLUMNS)} and at least one row; "
                           "retrain the run (dvc repro --force the stage that trains it)")
    out = curves_dir(profile) / f"{run}.csv"
    lines = [",".join(CURVE_COLUMNS)] + [",".join(r[c] for c in CURVE_COLUMNS) for r in thin(rows)]
    paths.atomic_write(out, "\n".join(lines) + "\n")
    return out


__all__ = ["budget_texts", "curves_dir", "initial_model", "packed_dir", "run_dir", "run_texts", "thin", "train",
           "write_curve"]
