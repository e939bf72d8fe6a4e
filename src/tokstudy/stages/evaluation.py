"""Pipeline step ``evaluate``: every tokenizer-invariant metric of one model, as a run record.

:func:`evaluate` is the one way to evaluate a model: notebook 06, ``tokstudy
evaluate`` and ``python -m`` call it, and it writes
``results/<profile>/runs/evaluate-<run>.json``.  The metrics live in
:mod:`tokstudy.bpb` (bits per byte of the corpus test split and of each
HumanEval / MBPP canonical solution given its prompt),
:mod:`tokstudy.passk` (HumanEval pass@k, greedy or sampled, MBPP pass@1 on the problems of
:mod:`tokstudy.problems`, judged in :mod:`tokstudy.sandbox`) and :mod:`tokstudy.speed` (generation speed).

A missing model is a :class:`~tokstudy.errors.MissingInput` naming the DVC stage that
trains it, and no run record is written; never a stand-in model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tokstudy import corpus, lm, passk, paths, problems, results, speed
from tokstudy import sandbox as sandbox_mod
from tokstudy.bpb import bpb_rows, solution_bits_per_byte, solution_rows
from tokstudy.errors import EvaluateError
from tokstudy.metrics import limit_texts
from tokstudy.params import Params
from tokstudy.stages import inputs

log = logging.getLogger(__name__)

def heldout_datasets(P: Params) -> dict[str, tuple[str, list[str]]]:
    """``{dataset: (domain, [texts])}`` of the corpus test split, cut to ``evaluate.bpb.max_docs / max_bytes``."""
    bpb = P.evaluate.bpb
    docs = corpus.read_split(inputs.corpus_file(P, "test.jsonl"))
    return {name: (domain, limit_texts(texts, bpb.max_docs, bpb.max_bytes))
            for name, (domain, texts) in sorted(corpus.datasets(docs).items())}


def run_labels(P: Params, run: str, tokenizer=None, replicate: int = 0) -> dict[str, Any]:
    """Columns that tie a run's result rows to its experiment: model, tokenizer, method, tokens, stage.

    Runs named in ``params.yaml`` ``models`` get their tokenizer variant, init method
    (keep / fvt / random) and, for fine-tunes, their byte budget and the tokens trained on
    (from ``train-<model>.json``; None before it exists), so figures can group by them. A
    replicate (``replicate`` > 0) is labelled with its own model name, the run it repeats, its
    index and its data seed.
    """
    labels: dict[str, Any] = {"model": run}
    if tokenizer is not None:
        labels["vocab_size"] = len(tokenizer)
    spec = P.models.get(run)
    if spec is not None:
        name, data_seed = spec.replicates(P.seed)[replicate]
        labels.update(model=name, run=run, replicate=replicate, data_seed=data_seed)
        labels.update(tokenizer=spec.tokenizer, method=spec.method, stage=spec.stage, tokens=0)
        if spec.stage == "finetune":  # its byte budget, and the tokens its tokenizer made of it (train record)
            record = paths.runs_dir(P.profile) / f"train-{name}.json"
            trained = results.read_run(record)["extra"]["metrics"]["tokens"] if record.is_file() else None
            labels.update(budget_bytes=spec.bytes, tokens=trained)
    return labels


def model_path(P: Params, run: str, model_dir: str | os.PathLike | None = None) -> Path:
    """The model to evaluate: ``model_dir`` (must hold a model), default ``data/<p>/models/<run>`` (:mod:`.inputs`)."""
    if model_dir is None:
        return inputs.model_dir(P, run)
    path = Path(model_dir)
    if not lm.is_model_dir(path):
        raise EvaluateError(f"no model at {path} (config.json missing): give a Hugging Face model directory")
    return path


def _humaneval_rows(model, tok, P: Params, limit, judge: passk.Judge, labels) -> tuple[list[dict], list[dict]]:
    """HumanEval pass@k rows and per-problem outcomes: greedy pass@1 at temperature 0, else sampled pass@k."""
    he = P.evaluate.humaneval
    probs = problems.humaneval_problems(limit)
    if he.temperature == 0:  # params guarantee n == 1, k == [1]
        res = passk.solve(model, tok, probs, max_new_tokens=he.max_new_tokens, batch_size=he.batch_size, judge=judge,
                          desc="humaneval")
        return passk.pass_rows(res, extra={**labels, "samples": 1, "temperature": 0.0}), res.per_problem()
    res = passk.solve_sampled(model, tok, probs, n=he.n, ks=he.k, temperature=he.temperature, top_p=he.top_p,
                              seed=P.seed, max_new_tokens=he.max_new_tokens, batch_size=he.batch_size, judge=judge,
                              desc="humaneval")
    extra = {**labels, "temperature": he.temperature, "top_p": he.top_p}
    return passk.sampled_rows(res, "humaneval", extra), res.per_problem()


def _solution_rows(model, tok, P: Params, mbpp_set, labels) -> tuple[list[dict], dict]:
    """Canonical-solution bits/byte of HumanEval (and MBPP when given), mean over problems with its CI.

    Also returns ``{dataset: {task_id: bits/byte}}`` for the record's ``extra`` (paired comparisons).
    """
    cfg = P.evaluate.solution_bpb
    sets = {"humaneval": problems.humaneval_problems(cfg.limit)}
    if mbpp_set is not None:
        sets["mbpp"] = mbpp_set[: cfg.limit] if cfg.limit else mbpp_set
    rows, per_problem = [], {}
    for name, probs in sets.items():
        res = solution_bits_per_byte(model, tok, probs, P.evaluate.bpb.seq_len, P.evaluate.bpb.batch_size,
                                     n_boot=cfg.n_boot, confidence=cfg.confidence, seed=P.seed)
        log.info("%s solution bits/byte %.4f [%.4f, %.4f]", name, res.mean, res.ci_low, res.ci_high)
        rows += solution_rows(res, name, cfg.confidence, labels)
        per_problem[name] = {p.task_id: v for p, v in zip(probs, res.per_problem, strict=True)}
    return rows, per_problem


def _pass_rows(model, tok, P: Params, limit, mbpp_set, backend: str, labels) -> tuple[list[dict], dict]:
    """HumanEval pass@k (and MBPP pass@1) rows plus every problem's outcome for the record's ``extra``."""
    he, mb = P.evaluate.humaneval, P.evaluate.mbpp
    judge = passk.Judge(sandbox_mod.Limits(timeout_s=he.timeout_s, memory_mb=he.memory_mb), backend, he.workers)
    rows, per_problem = _humaneval_rows(model, tok, P, limit, judge, labels)
    extra = {"humaneval": per_problem}
    if mbpp_set is not None:
        res = passk.solve(model, tok, mbpp_set, max_new_tokens=mb.max_new_tokens, batch_size=mb.batch_size,
                          judge=judge, desc="mbpp")
        rows += passk.pass_rows(res, "mbpp_pass@1", "mbpp", labels)
        extra["mbpp"] = res.per_problem()
    return rows, extra


def evaluate_replicate(P: Params, run: str, replicate: int, mbpp_path: str | os.PathLike | None = None,
                       device: str | None = None) -> Path:
    """The two numbers the model-side comparisons rest on, for replicate ``replicate`` (>= 1) of ``run``:
    held-out code bits/byte and canonical-solution bits/byte (HumanEval, and MBPP when given), written to
    ``evaluate-<run>-s<k>.json`` with the same row layout as :func:`evaluate`. Replicate 0 is the run itself,
    evaluated in full by :func:`evaluate`; replicates skip pass@k and speed (their cost buys no comparison)."""
    cfg = P.evaluate
    spec = P.model(run)
    if not 1 <= replicate < spec.seeds:
        raise EvaluateError(f"run {run!r} has replicates 1..{spec.seeds - 1} (train.{spec.stage}.seeds: "
                            f"{spec.seeds}); there is no replicate {replicate}")
    name, data_seed = spec.replicates(P.seed)[replicate]
    mbpp_path = mbpp_path if mbpp_path is not None else cfg.mbpp.path
    mbpp_set = problems.mbpp_problems(mbpp_path, cfg.mbpp.limit) if mbpp_path is not None else None
    path = inputs.model_dir(P, name)
    code = {k: v for k, v in heldout_datasets(P).items() if v[0] == "code"}
    model, tok = lm.load_model(path, device or cfg.device)
    labels = run_labels(P, run, tok, replicate)
    rows = bpb_rows(model, tok, code, cfg.bpb.seq_len, cfg.bpb.batch_size, context=cfg.bpb.context, extra=labels)
    sol_rows, sol_problems = _solution_rows(model, tok, P, mbpp_set, labels)
    used = {"model_dir": str(path), "mbpp_path": None if mbpp_path is None else str(mbpp_path),
            "device": str(model.device), "replicate": replicate, "data_seed": data_seed}
    return results.write_run(
        P.profile, "evaluate", name, rows + sol_rows, params={"evaluate": cfg, **used}, seed=P.seed,
        inputs=[path, paths.corpus_dir(P.profile) / "test.jsonl", *([mbpp_path] if mbpp_path is not None else [])],
        extra={"solution_bpb": sol_problems},
    )


def evaluate(P: Params, run: str, model_dir: str | os.PathLike | None = None,
             mbpp_path: str | os.PathLike | None = None, humaneval_limit: int | None = None,
             device: str | None = None, sandbox: str | None = None) -> Path:
    """Evaluate the model of ``run`` and write ``evaluate-<run>.json``; returns its path.

    Bits per byte of the corpus test split (per dataset, domain mean, average), HumanEval
    pass@1 (first ``humaneval_limit`` problems, default ``evaluate.humaneval.limit``), MBPP
    pass@1 when ``mbpp_path`` (default ``evaluate.mbpp.path``) is set, and generation speed.
    ``device`` / ``sandbox`` override ``evaluate.device`` / ``evaluate.sandbox``.  Every input
    (sandbox backend, MBPP file, model) is checked before anything runs. A run's replicates
    (``train.<stage>.seeds``) are :func:`evaluate_replicate`'s.
    """
    cfg = P.evaluate
    backend = sandbox_mod.check_backend(sandbox or cfg.sandbox)
    mbpp_path = mbpp_path if mbpp_path is not None else cfg.mbpp.path
    mbpp_set = problems.mbpp_problems(mbpp_path, cfg.mbpp.limit) if mbpp_path is not None else None
    limit = humaneval_limit if humaneval_limit is not None else cfg.humaneval.limit
    path = model_path(P, run, model_dir)
    datasets = heldout_datasets(P)
    model, tok = lm.load_model(path, device or cfg.device)
    labels = run_labels(P, run, tok)
    rows = bpb_rows(model, tok, datasets, cfg.bpb.seq_len, cfg.bpb.batch_size, context=cfg.bpb.context, extra=labels)
    sol_rows, sol_problems = _solution_rows(model, tok, P, mbpp_set, labels)
    rows += sol_rows
    pass_rows, per_problem = _pass_rows(model, tok, P, limit, mbpp_set, backend, labels)
    sp = cfg.speed
    measured = speed.generation_speed(model, tok, speed.speed_prompts(sp.prompts), sp.max_new_tokens, warmup=sp.warmup)
    rows += pass_rows + speed.speed_rows(measured, labels, rows)
    used = {"model_dir": str(path), "humaneval_limit": limit,
            "mbpp_path": None if mbpp_path is None else str(mbpp_path), "device": str(model.device),
            "sandbox": backend}
    return results.write_run(
        P.profile, "evaluate", run, rows, params={"evaluate": cfg, **used}, seed=P.seed,
        inputs=[path, paths.corpus_dir(P.profile) / "test.jsonl", *([mbpp_path] if mbpp_path is not None else [])],
        extra={**per_problem, "solution_bpb": sol_problems},
    )

