"""Pipeline step ``train`` (notebooks 04, 05; ``python -m tokstudy.stages train``, also under torchrun).

:func:`train` ``(P, run)`` pre-trains the base or fine-tunes a run of params.yaml ``models:``:
packs its data (:func:`run_texts`, :func:`finetune_texts`), starts from a fresh model or from
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
from pathlib import Path

from tokstudy import corpus, distributed, finetune_data, packing, paths, results, training
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


def finetune_texts(P: Params, spec: ModelRun, n_bytes: int, chunk_bytes: int, data_seed: int) -> list[str]:
    """A fine-tune's ``n_bytes`` of training text: chunks of many files, stratified over languages.

    The train split's documents of each domain of ``spec.mix`` (that domain's share of
    ``n_bytes``) go through :func:`tokstudy.finetune_data.sample`: chunks of at most
    ``chunk_bytes`` at line ends, equal bytes per language, a ``data_seed``-shuffled pick. The
    text depends on the corpus, the budget, ``chunk_bytes`` and ``data_seed`` alone, never on the
    run's tokenizer. Too little text is a :class:`~tokstudy.errors.DataError` naming ``train.budget_bytes``.
    """
    docs = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    mix = P.mix(spec.mix)
    domains = [d for d, share in mix.items() if share > 0]
    languages = corpus.datasets(docs)
    out, left = [], n_bytes
    for i, dom in enumerate(domains):
        dom_bytes = left if i == len(domains) - 1 else round(n_bytes * mix[dom])
        left -= dom_bytes
        by_lang = {lang: texts for lang, (d, texts) in languages.items() if d == dom}
        try:
            out += finetune_data.sample(by_lang, dom_bytes, chunk_bytes, data_seed)
        except DataError as e:
            raise DataError(f"run {spec.name!r} ({dom} of the {P.profile!r} corpus): {e}") from None
    return out


def initial_model(P: Params, spec: ModelRun, vocab_size: int, cfg: TrainParams):
    """The model a ``models:`` run starts from: a fresh ``cfg.size`` model, or the directory ``spec.init`` names."""
    if spec.init_model is None:
        return build_model(cfg.size, vocab_size, seed=P.seed, max_seq_len=max(cfg.seq_len, 2048))
    return load_model(inputs.model_dir(P, spec.init_model), vocab_size)


def _pack(P: Params, spec: ModelRun, cfg: TrainParams, name: str, data_seed: int) -> Path:
    """Pack model ``name``'s train and validation data (a run or one of its replicates; reused when up to date):
    a fine-tune's budget sampled with ``data_seed`` (:func:`finetune_texts`), else the run's mix. Returns the
    tokenizer.json."""
    tok_path = inputs.tokenizer_file(P, spec.tokenizer)
    if spec.bytes is not None:  # a fine-tune: one pass over its byte budget of text
        texts = finetune_texts(P, spec, spec.bytes, spec.chunk_bytes, data_seed)
    else:
        texts = run_texts(P, spec, "train")
    packing.pack(texts, tok_path, packed_dir(P, name, "train"), cfg.seq_len, max_tokens=spec.tokens)
    packing.pack(run_texts(P, spec, "validation"), tok_path, packed_dir(P, name, "validation"), cfg.seq_len,
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
    replicate: int = 0,
) -> Path | None:
    """Pre-train or fine-tune the ``models:`` run ``run``; returns its run record ``train-<run>.json``.

    Packs its train/validation data, builds (pre-train) or loads (:func:`initial_model`) the
    initial model, trains with ``train.<stage>`` of the profile, resuming from the newest
    checkpoint in :func:`run_dir` unless ``resume=False``, saves the model with its tokenizer to
    ``data/<p>/models/<run>`` and writes the run record. A fine-tune trains one pass over its
    ``train.budget_bytes`` of text (:func:`finetune_texts`), however many tokens its tokenizer makes
    of it. ``replicate`` k (``train.<stage>.seeds``; :meth:`ModelRun.replicates`) trains the run again as
    ``<run>-s<k>`` with data seed ``seed + k``, which picks a fine-tune's chunks and the order the rows are
    trained in (replicate 0 is the run itself, data seed ``seed``); a fresh model's initialisation keeps the
    profile's seed. Under
    ``torchrun`` every rank trains and only rank 0 packs, saves and writes. Returns
    ``None`` where nothing was written: on other ranks, and when ``stop_after`` ended the run
    before its last step. ``fsdp`` shards with FSDP2 instead of DDP; ``max_steps`` overrides the
    run length.
    """
    spec = P.model(run)
    cfg = P.train(spec.stage)
    if not 0 <= replicate < spec.seeds:
        raise DataError(f"run {run!r} has replicates 0..{spec.seeds - 1} (train.{spec.stage}.seeds: {spec.seeds}); "
                        f"there is no replicate {replicate}")
    name, data_seed = spec.replicates(P.seed)[replicate]
    if fsdp:
        cfg = dataclasses.replace(cfg, fsdp=True)
    d = distributed.init_distributed()
    init_dir = None
    if d.is_main:  # inputs first (a missing model fails before anything is packed); not inside a process group
        if spec.init_model:
            init_dir = inputs.model_dir(P, spec.init_model)
        _pack(P, spec, cfg, name, data_seed)
    distributed.barrier(d)
    tok_path = paths.tokenizer_dir(P.profile, spec.tokenizer) / "tokenizer.json"
    train_dir, val_dir = packed_dir(P, name, "train"), packed_dir(P, name, "validation")
    ds = packing.PackedDataset(train_dir, seed=data_seed, seq_len=cfg.seq_len, tokenizer=tok_path)
    val = packing.PackedDataset(val_dir, shuffle=False, seq_len=cfg.seq_len, tokenizer=tok_path)
    model = initial_model(P, spec, ds.meta.vocab_size, cfg)
    tokens = spec.tokens if spec.tokens is not None else ds.meta.n_tokens  # a byte budget: one pass over it
    result = training.train(
        model, ds, cfg, run_dir(P, name), val_dataset=val, resume=resume, seed=P.seed, tokens=tokens,
        max_steps=max_steps, stop_after=stop_after,
    )
    if not d.is_main or result.metrics["steps"] < result.metrics["max_steps"]:
        return None
    model_dir = save_model(result.model, paths.model_dir(P.profile, name), tokenizer=tok_path)
    write_curve(P.profile, name, run_dir(P, name) / "curve.csv")  # results/<p>/curves/<name>.csv: dvc plots
    return results.write_run(
        P.profile, "train", name,
        result.rows(model=name, run=run, replicate=replicate, data_seed=data_seed, tokenizer=spec.tokenizer,
                    method=spec.method, stage=spec.stage, tokens=tokens, budget_bytes=spec.bytes),
        params={"run": spec, "train": cfg, "replicate": replicate, "data_seed": data_seed},
        seed=P.seed,
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


__all__ = ["curves_dir", "finetune_texts", "initial_model", "packed_dir", "run_dir", "run_texts", "thin", "train",
           "write_curve"]
