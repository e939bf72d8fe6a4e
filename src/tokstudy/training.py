"""One training loop for pre-training and fine-tuning small Llama models, resumable and distributed.

What it does
    :func:`train` runs AdamW with linear warmup + cosine decay, gradient
    accumulation and clipping over a :class:`tokstudy.packing.PackedDataset`,
    checkpoints every ``checkpoint_every`` steps (:mod:`tokstudy.checkpoint`) and
    resumes from the newest intact checkpoint to the *same* final weights as an
    uninterrupted run; it writes ``curve.csv`` / ``evals.csv`` / ``metrics.json``
    (``dvc plots``-ready) and reports tokens/s and MFU. Models come from
    :mod:`tokstudy.model`. Running a ``models:`` run of params.yaml end to end
    (packing, initial model, run record) is :func:`tokstudy.stages.train.train`.

What it does not do
    No tokenizer-invariant evaluation beyond a cheap validation bits/byte
    (:func:`tokstudy.packing.loss_to_bits_per_byte`); HumanEval/MBPP and exact bpb are
    :mod:`tokstudy.evaluate`. It never compares per-token losses across tokenizers.

Devices and scale-out (only this module, ``distributed`` and ``evaluate`` touch CUDA)
    ``cuda`` if available, else ``cpu``. ``train.precision`` picks the autocast
    dtype over fp32 master weights (``auto``: bf16 on CUDA, fp32 on CPU) and
    ``train.compile`` whether to ``torch.compile`` (``auto``: on CUDA only): :func:`resolve_precision`,
    :func:`resolve_compile`, :func:`autocast_for`; both can be forced on CPU, which is how the ``gpu``
    profile's code paths are tested without a GPU (``tests/test_gpu_paths.py``). Under ``torchrun --nproc_per_node N``
    :mod:`tokstudy.distributed` joins the process group and wraps the model in
    DDP, or FSDP2 with ``train.fsdp: true``; every rank reads its own shard of the
    packed rows. Name the run positionally under torchrun
    (``torchrun --standalone --nproc_per_node 2 -m tokstudy.stages train base --profile cpu``).
    ``accelerate launch`` is not a supported launcher: on CPU
    (``accelerate launch --cpu --num_processes 2 -m ...``, accelerate 1.15) it did not
    export ``WORLD_SIZE`` and the processes ran as independent single-process runs; on
    CUDA it exports torchrun's variables, which should work but is untested.

Loss and schedule
    Rows are ``seq_len + 1`` tokens; the loss is the mean cross-entropy of
    ``row[1:]`` given ``row[:-1]`` in fp32 (no padding, so micro-batch means
    average exactly). Step ``s`` (0-based) uses lr ``lr * m(s)``:
    ``m = (s+1)/warmup`` during warmup, then cosine from 1 to ``min_lr_ratio``.

MFU
    ``flops/token = 6 * N + 12 * n_layers * d_model * seq_len`` (Kaplan et al.
    2020 / PaLM appendix B; N = parameters that do matmuls, i.e. all but the
    input-embedding table when untied), divided by the peak of
    :data:`PEAK_FLOPS` (dense bf16 datasheet numbers). CPUs have no useful
    datasheet number: the peak is a measured fp32 matmul rate on this machine,
    so CPU MFU is approximate (``mfu_approximate: true``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tokstudy import checkpoint, distributed, paths
from tokstudy.distributed import Dist
from tokstudy.errors import DataError, TrainError
from tokstudy.model import flops_per_token, param_counts
from tokstudy.packing import PackedDataset, loss_to_bits_per_byte
from tokstudy.params import TrainParams

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("step", "tokens", "loss", "lr", "tokens_per_s")
EVAL_COLUMNS = ("step", "tokens", "val_loss", "val_bits_per_byte")
ROW_METRICS = (
    "final_loss", "initial_loss", "val_loss", "val_bits_per_byte", "tokens_per_s", "mfu", "params",
    "params_embedding", "params_lm_head", "params_body", "steps", "wall_s",
)


# --------------------------------------------------------------------------- devices

# Dense peak FLOP/s per device from vendor datasheets (no sparsity): (name substring, dtype) -> FLOP/s.
PEAK_FLOPS = {
    ("H200", "bf16"): 989e12,
    ("H100", "bf16"): 989e12,  # SXM; the PCIe card is 756e12
    ("A100", "bf16"): 312e12,
    ("L4", "bf16"): 121e12,
    ("H100", "fp32"): 495e12,  # TF32 tensor cores
    ("A100", "fp32"): 156e12,
}


def resolve_precision(cfg: TrainParams, device: torch.device) -> str:
    """The autocast dtype of a run on ``device``: ``bf16`` or ``fp32`` (``auto``: bf16 on CUDA only)."""
    if cfg.precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return cfg.precision


def resolve_compile(cfg: TrainParams, device: torch.device) -> bool:
    """Whether a run on ``device`` is ``torch.compile``-d (``auto``: on CUDA only)."""
    return device.type == "cuda" if cfg.compile == "auto" else bool(cfg.compile)


def autocast_for(device: torch.device, precision: str) -> Callable:
    """A no-argument context-manager factory: bf16 autocast on ``device``, or nothing for fp32."""
    if precision == "bf16":
        return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@functools.cache
def _measured_cpu_flops(n: int = 1024, trials: int = 3, seconds: float = 0.15) -> float:
    """Best of ``trials`` short fp32 matmul timings: the best is the least disturbed by other processes."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = 0.0
    for _ in range(trials):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def peak_flops(device: torch.device, dtype: str) -> tuple[float, str, bool]:
    """``(FLOP/s, source, approximate)`` of one device: datasheet for known GPUs, else measured."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for (key, dt), value in PEAK_FLOPS.items():
            if key in name and dt == dtype:
                return value, f"datasheet {key} {dtype}", False
        log.warning("no datasheet peak for %r (%s); MFU uses a measured matmul rate", name, dtype)
    flops = _measured_cpu_flops()
    return flops, f"measured {device.type} fp32 1024^3 matmul, {torch.get_num_threads()} threads", True


# --------------------------------------------------------------------------- schedule


def lr_multiplier(step: int, *, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup to 1 over ``warmup_steps``, then cosine to ``min_lr_ratio`` at ``max_steps``.

    >>> lr_multiplier(0, warmup_steps=4, max_steps=10, min_lr_ratio=0.1)
    0.25
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model, cfg: TrainParams, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]  # norms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """What :func:`train` returns: the (unwrapped, full) model on rank 0, metrics and curves."""

    model: Any
    metrics: dict[str, Any]
    curve: list[dict[str, float]]
    evals: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def loss_decreased(self) -> bool:
        return self.metrics["final_loss"] < self.metrics["initial_loss"]

    def rows(self, **labels: Any) -> list[dict[str, Any]]:
        """Result rows for ``results.write_run``: one per metric of :data:`ROW_METRICS`, plus ``labels``."""
        m = self.metrics
        out = []
        for name in ROW_METRICS:
            if m.get(name) is None:
                continue
            row = {"metric": name, "value": m[name], **labels}
            if name == "mfu":
                row.update(mfu_peak_source=m["peak_source"], approximate=m["mfu_approximate"])
            out.append(row)
        return out


def state_sha256(model) -> str:
    """A hash of a model's weights: a checkpoint only resumes the run that started from the same weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: the modules whose code decides the weights a run ends with, given its data, start and settings
WEIGHT_CODE = ("training", "model", "distributed", "checkpoint", "packing", "threads")


def code_text(source: str) -> str:
    """What of a module's ``source`` can change what it computes: its syntax tree without comments, layout
    and docstrings (``ast.dump``; a new Python version may dump it differently, which only costs a retrain)."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@functools.cache
def code_sha256() -> str:
    """sha256 over the code of :data:`WEIGHT_CODE` (:func:`code_text`) and the torch version: a checkpoint
    written by other code is not resumed (DVC reruns a stage whose code changed; resuming its old final
    checkpoint would hand back the old weights, exit 0). An edit to a comment or docstring keeps the hash,
    so the rerun it causes resumes the finished runs instead of training them again."""
    import sys

    h = hashlib.sha256(torch.__version__.encode())
    for name in WEIGHT_CODE:  # each imported by this module (threads by tokstudy/__init__)
        h.update(code_text(Path(sys.modules[f"tokstudy.{name}"].__file__).read_text("utf-8")).encode())
    return h.hexdigest()


def _fingerprint(cfg: TrainParams, dataset: PackedDataset, d: Dist, max_steps: int, seed: int, init: str,
                 precision: str) -> dict:
    return {
        "code": code_sha256(), "init_weights": init, "precision": precision,
        "seq_len": cfg.seq_len, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum,
        "world_size": d.world_size, "max_steps": max_steps, "seed": seed, "lr": cfg.lr,
        "warmup_steps": cfg.warmup_steps, "min_lr_ratio": cfg.min_lr_ratio,
        "data": [dataset.meta.tokenizer_sha256, dataset.meta.n_rows, dataset.seed],
    }


def _write_csv(path: Path, rows: list[Mapping], columns: tuple[str, ...]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    paths.atomic_write(path, buf.getvalue())


@torch.no_grad()
def evaluate_loss(model, dataset: PackedDataset, batches: int, batch_size: int, device, autocast, d: Dist) -> float:
    """Mean target-token loss (nats) over the first ``batches * batch_size`` rows of each rank's shard."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2, device=device, dtype=torch.float64)
    n = min(batches * batch_size, len(dataset))
    for start in range(0, n, batch_size):
        rows = dataset.batch(start, min(batch_size, n - start)).to(device)
        with autocast():
            logits = model(input_ids=rows[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1), reduction="sum")
        total += torch.stack([loss.double(), torch.tensor(rows[:, 1:].numel(), device=device, dtype=torch.float64)])
    if d.enabled:
        torch.distributed.all_reduce(total)
    model.train(was_training)
    return (total[0] / total[1]).item()


@dataclass
class _Run:
    """What one :func:`train` call works with; the steps below read it and advance ``step``."""

    cfg: TrainParams
    d: Dist
    device: torch.device
    out_dir: Path
    dataset: PackedDataset
    val_dataset: PackedDataset | None
    max_steps: int
    tokens_per_step: int
    fsdp: bool
    precision: str  # resolve_precision(): bf16 | fp32
    compiled: bool  # resolve_compile()
    raw: Any  # the model itself (sharded in place under FSDP): optimizer, state dicts, clipping
    wrapped: Any  # what forward runs on: DDP / FSDP / compiled, or ``raw``
    opt: torch.optim.Optimizer
    sched: Any
    autocast: Callable
    fingerprint: dict
    counts: dict
    flops_tok: float
    peak: tuple[float, str, bool]  # peak_flops(): (FLOP/s, source, approximate)
    step: int = 0
    curve: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    previous: dict = field(default_factory=dict)  # metrics stored in the checkpoint resumed from
    resumed_from: int = 0


@dataclass
class _Meter:
    """Loss and throughput bookkeeping of one :func:`train` call."""

    interval_loss: torch.Tensor
    t_call: float
    interval_t: float
    steps: int = 0  # optimizer steps in this call
    interval_steps: int = 0
    interval_tokens: int = 0
    timed_tokens: int = 0
    timed_s: float = 0.0

    @classmethod
    def start(cls, device: torch.device) -> _Meter:
        now = time.perf_counter()
        return cls(torch.zeros((), device=device), now, now)

    def add(self, loss: torch.Tensor, tokens: int) -> None:
        self.steps += 1
        self.interval_loss += loss
        self.interval_steps += 1
        self.interval_tokens += tokens

    def take_interval(self, d: Dist) -> tuple[float, float]:
        """Mean loss (over ranks) and tokens/s since the last call; starts a new interval."""
        distributed.mean_over_ranks(self.interval_loss, d)
        mean_loss = self.interval_loss.item() / self.interval_steps  # .item() also syncs CUDA for the timer
        now = time.perf_counter()
        tps = self.interval_tokens / max(now - self.interval_t, 1e-9)
        self.interval_loss.zero_()
        self.interval_steps, self.interval_t, self.interval_tokens = 0, now, 0
        return mean_loss, tps

    def time_step(self, run: _Run, t0: float) -> None:
        """Count the step that began at ``t0``, except a call's first (it pays for compile / allocation)."""
        if self.steps > 1:
            if run.device.type == "cuda" and run.step % run.cfg.log_every:
                torch.cuda.synchronize(run.device)
            self.timed_tokens += run.tokens_per_step
            self.timed_s += time.perf_counter() - t0


def train(
    model,
    dataset: PackedDataset,
    cfg: TrainParams,
    out_dir: str | Path,
    *,
    val_dataset: PackedDataset | None = None,
    resume: bool = True,
    seed: int = 0,
    tokens: int | None = None,
    max_steps: int | None = None,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` with ``cfg``; checkpoints, curves and metrics go to ``out_dir``.

    The run length is ``max_steps``, else ``ceil(tokens / tokens_per_step)``
    with ``tokens`` defaulting to ``cfg.tokens``. With ``resume`` the newest
    checkpoint in ``out_dir/checkpoints`` that loads is resumed (its settings
    must match, else it is moved aside). ``stop_after`` ends this call after
    that many steps as if the job had been pre-empted (no extra checkpoint): the
    schedule still targets ``max_steps``. Under ``torchrun`` the dataset is
    re-opened sharded by rank.
    """
    run = _setup(model, dataset, cfg, Path(out_dir), val_dataset, seed, tokens, max_steps, device)
    _resume(run, resume, seed)
    meter = _Meter.start(run.device)
    bar = tqdm(total=run.max_steps, initial=run.step, desc=f"train {run.out_dir.name}", unit="step",
               disable=not run.d.is_main, leave=False)
    while run.step < run.max_steps and (stop_after is None or meter.steps < stop_after):
        t0 = time.perf_counter()
        loss, lr = _optimizer_step(run)
        meter.add(loss, run.tokens_per_step)
        bar.update(1)
        if run.step == 1 or run.step % cfg.log_every == 0 or run.step == run.max_steps:
            bar.set_postfix(loss=f"{_log_interval(run, meter, lr):.3f}")
        meter.time_step(run, t0)
        if run.val_dataset is not None and (run.step % cfg.eval_every == 0 or run.step == run.max_steps):
            _evaluate(run)
        if run.step % cfg.checkpoint_every == 0 or run.step == run.max_steps:
            _save_checkpoint(run, meter)
    bar.close()
    return _finish(run, meter)


def _for_rank(dataset: PackedDataset | None, d: Dist) -> PackedDataset | None:
    """``dataset`` re-opened as this rank's shard (itself when it already is)."""
    if dataset is None or (dataset.rank, dataset.world_size) == (d.rank, d.world_size):
        return dataset
    return PackedDataset(dataset.directory, seed=dataset.seed, shuffle=dataset.shuffle,
                         rank=d.rank, world_size=d.world_size)


def _run_length(cfg: TrainParams, tokens_per_step: int, tokens: int | None, max_steps: int | None) -> int:
    if max_steps is not None:
        return max_steps
    budget = tokens if tokens is not None else cfg.tokens
    if not budget:
        raise TrainError("no run length: set train.tokens / pass tokens= or max_steps=")
    return math.ceil(budget / tokens_per_step)


def _setup(model, dataset, cfg, out_dir, val_dataset, seed, tokens, max_steps, device) -> _Run:
    """Join the process group, check the data, wrap the model, build optimizer and schedule."""
    d = distributed.init_distributed()
    device = torch.device(device) if device is not None else distributed.default_device(d)
    if dataset.seq_len != cfg.seq_len:
        raise DataError(
            f"{dataset.directory} holds rows of seq_len {dataset.seq_len} but train.seq_len is {cfg.seq_len}; "
            "re-pack the data with the run's seq_len"
        )
    dataset, val_dataset = _for_rank(dataset, d), _for_rank(val_dataset, d)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * d.world_size * cfg.seq_len
    max_steps = _run_length(cfg, tokens_per_step, tokens, max_steps)
    fsdp = cfg.fsdp and d.enabled
    counts, flops_tok = param_counts(model), flops_per_token(model, cfg.seq_len)
    init_weights = state_sha256(model)
    model.to(device)
    model.train()
    precision, compiled = resolve_precision(cfg, device), resolve_compile(cfg, device)
    wrapped = distributed.wrap(model, d, device, fsdp=fsdp, compile=compiled)
    opt = _optimizer(model, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        functools.partial(lr_multiplier, warmup_steps=cfg.warmup_steps, max_steps=max_steps,
                          min_lr_ratio=cfg.min_lr_ratio),
    )
    return _Run(
        cfg=cfg, d=d, device=device, out_dir=out_dir, dataset=dataset, val_dataset=val_dataset,
        max_steps=max_steps, tokens_per_step=tokens_per_step, fsdp=fsdp, precision=precision, compiled=compiled,
        raw=model, wrapped=wrapped, opt=opt, sched=sched, autocast=autocast_for(device, precision),
        fingerprint=_fingerprint(cfg, dataset, d, max_steps, seed, init_weights, precision),
        counts=counts, flops_tok=flops_tok, peak=peak_flops(device, precision),
    )


def _resume(run: _Run, resume: bool, seed: int) -> None:
    """Load the newest checkpoint that loads and matches this setup; else seed a fresh start.

    Rank 0 first removes temporary folders of killed checkpoint writes (and,
    without ``resume``, all checkpoints); after every rank has read, it removes
    newer unreadable checkpoints, or moves a different setup's checkpoints to
    ``checkpoints.stale``.
    """
    d, out_dir = run.d, run.out_dir
    if d.is_main:
        checkpoint.remove_stale_temps(out_dir)
        if not resume and checkpoint.root(out_dir).exists():
            shutil.rmtree(checkpoint.root(out_dir))
    distributed.barrier(d)
    path, state, unreadable = checkpoint.load_latest(out_dir) if resume else (None, None, [])
    distributed.barrier(d)  # every rank has read before rank 0 moves or deletes anything
    fp = state["fingerprint"] if state is not None else {}
    diff = {k: (fp.get(k), v) for k, v in run.fingerprint.items() if fp.get(k) != v} if state is not None else {}
    if diff:
        # a changed setup (params, data, or the weights it starts from) must not resume the old run;
        # keep its checkpoints aside instead of deleting them, and start over
        stale = out_dir / "checkpoints.stale"
        log.warning("checkpoints in %s were written by a different setup %s (checkpoint, now): moved to %s, "
                    "starting over", out_dir, sorted(diff), stale)
        if d.is_main:
            shutil.rmtree(stale, ignore_errors=True)
            checkpoint.root(out_dir).replace(stale)
        state = None
    elif d.is_main:
        for bad in unreadable:  # the run rewrites these steps; a bad newest one must not be kept by pruning
            log.warning("removing unreadable checkpoint %s", bad)
            shutil.rmtree(bad, ignore_errors=True)
    distributed.barrier(d)
    if state is None:
        torch.manual_seed(seed + d.rank)
        return
    distributed.load_states(run.raw, run.opt, state, run.fsdp)
    run.sched.load_state_dict(state["scheduler"])
    checkpoint.set_rng_state(state["rng"][d.rank])
    run.step, run.curve, run.evals, run.previous = state["step"], state["curve"], state["evals"], state["metrics"]
    run.resumed_from = run.step
    log.info("resumed %s from %s (step %d / %d)", out_dir, path.name, run.step, run.max_steps)


def _optimizer_step(run: _Run) -> tuple[torch.Tensor, float]:
    """One optimizer step over ``grad_accum`` micro-batches; returns the step's mean loss and its lr."""
    cfg, d = run.cfg, run.d
    step_loss = torch.zeros((), device=run.device)
    for micro in range(cfg.grad_accum):
        start = (run.step * cfg.grad_accum + micro) * cfg.batch_size
        rows = run.dataset.batch(start, cfg.batch_size).to(run.device, non_blocking=True)
        last = micro == cfg.grad_accum - 1
        sync = contextlib.nullcontext() if (last or not d.enabled or run.fsdp) else distributed.no_sync(run.wrapped)
        with sync:
            with run.autocast():
                logits = run.wrapped(input_ids=rows[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
            (loss / cfg.grad_accum).backward()
        step_loss += loss.detach() / cfg.grad_accum
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.raw.parameters(), cfg.grad_clip)
    lr = run.opt.param_groups[0]["lr"]
    run.opt.step()
    run.sched.step()
    run.opt.zero_grad(set_to_none=True)
    run.step += 1
    return step_loss, lr


def _log_interval(run: _Run, meter: _Meter, lr: float) -> float:
    """Append a ``curve.csv`` row (mean loss since the last one); returns that loss."""
    mean_loss, tps = meter.take_interval(run.d)
    run.curve.append({"step": run.step, "tokens": run.step * run.tokens_per_step, "loss": mean_loss, "lr": lr,
                      "tokens_per_s": tps})
    if run.d.is_main:
        _write_csv(run.out_dir / "curve.csv", run.curve, CURVE_COLUMNS)
    return mean_loss


def _evaluate(run: _Run) -> None:
    """Append an ``evals.csv`` row: validation loss and bits/byte."""
    cfg = run.cfg
    val_loss = evaluate_loss(run.wrapped, run.val_dataset, cfg.eval_batches, cfg.batch_size, run.device,
                             run.autocast, run.d)
    run.evals.append({
        "step": run.step, "tokens": run.step * run.tokens_per_step, "val_loss": val_loss,
        "val_bits_per_byte": loss_to_bits_per_byte(val_loss, run.val_dataset.meta),
    })
    if run.d.is_main:
        _write_csv(run.out_dir / "evals.csv", run.evals, EVAL_COLUMNS)


def _save_checkpoint(run: _Run, meter: _Meter) -> None:
    """Every rank contributes (FSDP gathers, RNG states); rank 0 writes."""
    cfg = run.cfg
    state = {
        "step": run.step,
        "tokens": run.step * run.tokens_per_step,
        "data_position": run.step * cfg.grad_accum * cfg.batch_size,  # per-rank row position in the stream
        "model": distributed.model_state(run.raw, run.fsdp),
        "optimizer": distributed.optimizer_state(run.raw, run.opt, run.fsdp),
        "scheduler": run.sched.state_dict(),
        "rng": distributed.gather_objects(checkpoint.rng_state(), run.d),
        "curve": run.curve,
        "evals": run.evals,
        "metrics": _metrics(run, meter),
        "fingerprint": run.fingerprint,
    }
    if run.d.is_main:
        checkpoint.save(run.out_dir, run.step, state, cfg.keep_checkpoints)
    distributed.barrier(run.d)


def _metrics(run: _Run, meter: _Meter) -> dict:
    tps = meter.timed_tokens / meter.timed_s if meter.timed_s else run.previous.get("tokens_per_s")
    last_eval = run.evals[-1] if run.evals else {}
    peak, peak_source, approximate = run.peak
    tokens_per_step = run.tokens_per_step
    return {
        "steps": run.step, "max_steps": run.max_steps, "tokens": run.step * tokens_per_step,
        "tokens_per_step": tokens_per_step,
        "initial_loss": run.curve[0]["loss"] if run.curve else None,
        "final_loss": run.curve[-1]["loss"] if run.curve else None,
        "val_loss": last_eval.get("val_loss"), "val_bits_per_byte": last_eval.get("val_bits_per_byte"),
        "tokens_per_s": tps, "step_time_s": tokens_per_step / tps if tps else None,
        "mfu": tps * run.flops_tok / (peak * run.d.world_size) if tps else None,
        "mfu_approximate": approximate, "peak_flops": peak, "peak_source": peak_source,
        "flops_per_token": run.flops_tok, **run.counts,
        "device": str(run.device), "dtype": run.precision, "world_size": run.d.world_size, "fsdp": run.fsdp,
        "compile": run.compiled, "resumed_from": run.resumed_from,
        "wall_s": run.previous.get("wall_s", 0.0) * (run.resumed_from > 0) + time.perf_counter() - meter.t_call,
    }


def _finish(run: _Run, meter: _Meter) -> TrainResult:
    """Final metrics (``metrics.json`` on rank 0) and the full model."""
    if meter.timed_s == 0.0 and meter.steps:  # a one-step call: time it whole
        meter.timed_tokens, meter.timed_s = meter.steps * run.tokens_per_step, time.perf_counter() - meter.t_call
    metrics = _metrics(run, meter)
    if run.d.is_main:
        paths.atomic_write(run.out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        log.info(
            "%s: step %d/%d, loss %.4f -> %.4f, %.0f tokens/s, MFU %.3g%s",
            run.out_dir.name, run.step, run.max_steps, metrics["initial_loss"], metrics["final_loss"],
            metrics["tokens_per_s"] or float("nan"), metrics["mfu"] or float("nan"),
            " (approx.)" if run.peak[2] else "",
        )
    final = distributed.full_model(run.raw, run.fsdp, run.d)
    return TrainResult(model=final, metrics=metrics, curve=list(run.curve), evals=list(run.evals), out_dir=run.out_dir)
