"""One training loop for pre-training and fine-tuning small Llama models, resumable and distributed.

What it does
    :func:`build_model` makes a ``LlamaForCausalLM`` from a named size
    (``params.yaml`` ``train.sizes``) or loads a local HF model directory;
    :func:`train` runs AdamW with linear warmup + cosine decay, gradient
    accumulation and clipping over a :class:`tokstudy.data.PackedDataset`,
    checkpoints atomically every ``checkpoint_every`` steps and resumes from the
    last checkpoint to the *same* final weights as an uninterrupted run; it
    writes ``curve.csv`` / ``evals.csv`` / ``metrics.json`` (``dvc plots``-ready)
    and reports tokens/s and MFU. ``python -m tokstudy.finetune --run NAME``
    runs one ``models:`` entry end to end, also under ``torchrun``.

What it does not do
    No tokenizer-invariant evaluation beyond a cheap validation bits/byte
    (:func:`tokstudy.data.bits_per_byte`); HumanEval/MBPP and exact bpb are
    :mod:`tokstudy.evaluate`. It never compares per-token losses across tokenizers.

Devices and scale-out (only this module and ``evaluate`` touch CUDA)
    ``cuda`` if available (bf16 autocast over fp32 master weights, optional
    ``torch.compile``), else ``cpu`` in fp32. Under ``torchrun --nproc_per_node N``
    the process group comes from the environment (``gloo`` on CPU, ``nccl`` on
    CUDA) and the model is wrapped in DDP, or FSDP2 (``fully_shard`` per decoder
    layer) with ``train.fsdp: true``; every rank reads its own shard of the
    packed rows. Name the run positionally under torchrun
    (``torchrun --standalone --nproc_per_node 2 -m tokstudy.finetune base --profile cpu``).
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

import argparse
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tokstudy import paths
from tokstudy.data import DataError, PackedDataset, bits_per_byte
from tokstudy.params import ModelSize, TrainParams

log = logging.getLogger(__name__)

SPECIAL_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<pad>"}
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2  # the order of params.TokenizerVariant.special_tokens

# Dense peak FLOP/s per device from vendor datasheets (no sparsity): (name substring, dtype) -> FLOP/s.
PEAK_FLOPS = {
    ("H200", "bf16"): 989e12,
    ("H100", "bf16"): 989e12,  # SXM; the PCIe card is 756e12
    ("A100", "bf16"): 312e12,
    ("L4", "bf16"): 121e12,
    ("H100", "fp32"): 495e12,  # TF32 tensor cores
    ("A100", "fp32"): 156e12,
}

CURVE_COLUMNS = ("step", "tokens", "loss", "lr", "tokens_per_s")
EVAL_COLUMNS = ("step", "tokens", "val_loss", "val_bits_per_byte")
ROW_METRICS = (
    "final_loss", "initial_loss", "val_loss", "val_bits_per_byte", "tokens_per_s", "mfu", "params",
    "params_embedding", "params_lm_head", "params_body", "steps", "wall_s",
)


class TrainError(RuntimeError):
    """Training cannot start or resume as asked."""


# --------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> Dist:
    """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the environment.

    A no-op (rank 0 of 1) without ``WORLD_SIZE > 1``. Idempotent.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank)


def default_device(d: Dist | None = None) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", (d or Dist()).local_rank)
    return torch.device("cpu")


def _barrier(d: Dist) -> None:
    if d.enabled:
        torch.distributed.barrier()


@functools.lru_cache(maxsize=None)
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


# --------------------------------------------------------------------------- models


def build_model(model_cfg: ModelSize | str | Path, vocab_size: int, *, seed: int = 0, max_seq_len: int = 4096):
    """A ``LlamaForCausalLM`` of a named size (fresh, seeded) or loaded from a local HF directory.

    The embedding has ``vocab_size`` rounded up to ``model_cfg.pad_vocab_to``
    rows (nanoGPT's 50257 -> 50304); the tokenizer keeps its true size.
    """
    if isinstance(model_cfg, (str, Path)):
        return load_model(model_cfg, vocab_size)
    from transformers import LlamaConfig, LlamaForCausalLM

    pad = max(1, model_cfg.pad_vocab_to)
    config = LlamaConfig(
        vocab_size=math.ceil(vocab_size / pad) * pad,
        hidden_size=model_cfg.d_model,
        intermediate_size=model_cfg.d_ff,
        num_hidden_layers=model_cfg.n_layers,
        num_attention_heads=model_cfg.n_heads,
        num_key_value_heads=model_cfg.n_kv_heads or model_cfg.n_heads,
        max_position_embeddings=max_seq_len,
        rope_theta=model_cfg.rope_theta,
        tie_word_embeddings=model_cfg.tie_embeddings,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def load_model(directory: str | Path, vocab_size: int | None = None):
    """Load a local HF causal-LM directory in fp32 (no hub access)."""
    from transformers import AutoModelForCausalLM

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise TrainError(
            f"no HF model in {directory}: run the stage that writes it first "
            "(notebook 04 for the base model, notebook 03 / tokstudy.transfer for <tokenizer>-<method>-init)"
        )
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, local_files_only=True)
    rows = model.get_input_embeddings().num_embeddings
    if vocab_size is not None and rows < vocab_size:
        raise TrainError(
            f"{directory} has {rows} embedding rows but the tokenizer has {vocab_size} tokens; "
            "transfer the model to this tokenizer first (tokstudy.transfer.swap_tokenizer)"
        )
    return model


def param_counts(model) -> dict[str, int]:
    """Total, input-embedding, untied LM-head and body parameter counts (the vocab moves the first two)."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    n_head = 0 if head is emb else head.numel()
    return {
        "params": total,
        "params_embedding": emb.numel(),
        "params_lm_head": n_head,
        "params_body": total - emb.numel() - n_head,
    }


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: ``6 N + 12 L d T`` (N excludes the embedding lookup unless tied)."""
    c = param_counts(model)
    n_matmul = c["params"] - (c["params_embedding"] if c["params_lm_head"] else 0)
    cfg = model.config
    return 6.0 * n_matmul + 12.0 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def save_model(model, out_dir: str | Path, tokenizer: Any = None) -> Path | None:
    """Write an HF model directory (+ tokenizer) atomically; only rank 0 writes, others return None."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    out_dir = Path(out_dir)
    with paths.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            hf_tokenizer(tokenizer).save_pretrained(tmp)
    log.info("saved model to %s", out_dir)
    return out_dir


def hf_tokenizer(tokenizer: Any):
    """A ``PreTrainedTokenizerFast`` from one, a TokenizerHandle (``to_hf``) or a tokenizer.json path."""
    if hasattr(tokenizer, "save_pretrained"):
        return tokenizer
    if hasattr(tokenizer, "to_hf"):
        return tokenizer.to_hf()
    from transformers import PreTrainedTokenizerFast

    path = Path(tokenizer)
    return PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json" if path.is_dir() else path), **SPECIAL_TOKENS)


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


# --------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``out_dir/checkpoints``, oldest first (partial ones never appear)."""
    root = Path(out_dir) / "checkpoints"
    return sorted(p for p in root.glob("step_*") if (p / "state.pt").is_file()) if root.is_dir() else []


def _model_state(model, fsdp: bool) -> dict:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _optim_state(model, opt, fsdp: bool) -> dict:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return opt.state_dict()


def _load_states(model, opt, state: Mapping, fsdp: bool) -> None:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, state["model"], options=opts)
        set_optimizer_state_dict(model, opt, state["optimizer"], options=opts)
    else:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])


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


def _fingerprint(cfg: TrainParams, dataset: PackedDataset, d: Dist, max_steps: int, seed: int, init: str) -> dict:
    return {
        "init_weights": init,
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
    checkpoint in ``out_dir/checkpoints`` is loaded (its settings must match).
    ``stop_after`` ends this call after that many steps as if the job had been
    pre-empted (no extra checkpoint): the schedule still targets ``max_steps``.
    Under ``torchrun`` the dataset is re-opened sharded by rank.
    """
    d = init_distributed()
    device = torch.device(device) if device is not None else default_device(d)
    out_dir = Path(out_dir)
    if dataset.seq_len != cfg.seq_len:
        raise DataError(
            f"{dataset.directory} holds rows of seq_len {dataset.seq_len} but train.seq_len is {cfg.seq_len}; "
            "re-pack the data with the run's seq_len"
        )
    if (dataset.rank, dataset.world_size) != (d.rank, d.world_size):
        dataset = PackedDataset(dataset.directory, seed=dataset.seed, shuffle=dataset.shuffle, rank=d.rank, world_size=d.world_size)
    if val_dataset is not None and (val_dataset.rank, val_dataset.world_size) != (d.rank, d.world_size):
        val_dataset = PackedDataset(val_dataset.directory, seed=val_dataset.seed, shuffle=val_dataset.shuffle, rank=d.rank, world_size=d.world_size)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * d.world_size * cfg.seq_len
    if max_steps is None:
        budget = tokens if tokens is not None else cfg.tokens
        if not budget:
            raise TrainError("no run length: set train.tokens / pass tokens= or max_steps=")
        max_steps = math.ceil(budget / tokens_per_step)
    fsdp = cfg.fsdp and d.enabled
    counts = param_counts(model)
    flops_tok = flops_per_token(model, cfg.seq_len)
    amp_dtype = "bf16" if device.type == "cuda" else "fp32"
    autocast = (
        functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext
    )

    # --- wrap: DDP / FSDP2, then compile (CUDA only)
    init_weights = state_sha256(model)
    model.to(device)
    model.train()
    raw = model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
        wrapped = model
    elif d.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        wrapped = model
    if device.type == "cuda" and cfg.compile:
        wrapped = torch.compile(wrapped)
    opt = _optimizer(raw, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        functools.partial(lr_multiplier, warmup_steps=cfg.warmup_steps, max_steps=max_steps, min_lr_ratio=cfg.min_lr_ratio),
    )

    # --- resume
    fingerprint = _fingerprint(cfg, dataset, d, max_steps, seed, init_weights)
    step, curve, evals, previous = 0, [], [], {}
    found = checkpoints(out_dir) if resume else []
    if not resume and d.is_main and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")
    _barrier(d)
    diff = {}
    if found:
        state = torch.load(found[-1] / "state.pt", map_location="cpu", weights_only=False)
        diff = {k: (state["fingerprint"].get(k), v) for k, v in fingerprint.items() if state["fingerprint"].get(k) != v}
    if found and diff:
        # a changed setup (params, data, or the weights it starts from) must not resume the old run;
        # keep its checkpoints aside instead of deleting them, and start over
        stale = out_dir / "checkpoints.stale"
        log.warning("checkpoints in %s were written by a different setup %s (checkpoint, now): moved to %s, "
                    "starting over", out_dir, sorted(diff), stale)
        if d.is_main:
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(out_dir / "checkpoints", stale)
        _barrier(d)
        found = []
    if found:
        _load_states(raw, opt, state, fsdp)
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"][d.rank])
        step, curve, evals, previous = state["step"], state["curve"], state["evals"], state["metrics"]
        log.info("resumed %s from step %d / %d", out_dir, step, max_steps)
    else:
        torch.manual_seed(seed + d.rank)
    resumed_from = step

    def save_checkpoint(metrics_now: dict) -> None:
        state = {
            "step": step,
            "tokens": step * tokens_per_step,
            "data_position": step * cfg.grad_accum * cfg.batch_size,  # per-rank row position in the stream
            "model": _model_state(raw, fsdp),
            "optimizer": _optim_state(raw, opt, fsdp),
            "scheduler": sched.state_dict(),
            "rng": _gather_objects(_rng_state(), d),
            "curve": curve,
            "evals": evals,
            "metrics": metrics_now,
            "fingerprint": fingerprint,
        }
        if d.is_main:
            with paths.atomic_dir(out_dir / "checkpoints" / f"step_{step:07d}") as tmp:
                torch.save(state, tmp / "state.pt")
            for old in checkpoints(out_dir)[: -max(1, cfg.keep_checkpoints)]:
                shutil.rmtree(old, ignore_errors=True)
        _barrier(d)

    # --- loop
    peak, peak_source, approximate = peak_flops(device, amp_dtype)
    timed_tokens, timed_s = 0, 0.0

    def _metrics() -> dict:
        tps = timed_tokens / timed_s if timed_s else previous.get("tokens_per_s")
        last_eval = evals[-1] if evals else {}
        return {
            "steps": step, "max_steps": max_steps, "tokens": step * tokens_per_step,
            "tokens_per_step": tokens_per_step,
            "initial_loss": curve[0]["loss"] if curve else None,
            "final_loss": curve[-1]["loss"] if curve else None,
            "val_loss": last_eval.get("val_loss"), "val_bits_per_byte": last_eval.get("val_bits_per_byte"),
            "tokens_per_s": tps, "step_time_s": tokens_per_step / tps if tps else None,
            "mfu": tps * flops_tok / (peak * d.world_size) if tps else None,
            "mfu_approximate": approximate, "peak_flops": peak, "peak_source": peak_source,
            "flops_per_token": flops_tok, **counts,
            "device": str(device), "dtype": amp_dtype, "world_size": d.world_size, "fsdp": fsdp,
            "compile": bool(device.type == "cuda" and cfg.compile), "resumed_from": resumed_from,
            "wall_s": previous.get("wall_s", 0.0) * (resumed_from > 0) + time.perf_counter() - t_call,
        }

    interval_loss = torch.zeros((), device=device)
    interval_steps, interval_t, interval_tokens = 0, time.perf_counter(), 0
    steps_this_call = 0
    bar = tqdm(total=max_steps, initial=step, desc=f"train {out_dir.name}", unit="step", disable=not d.is_main, leave=False)
    t_call = time.perf_counter()
    while step < max_steps and (stop_after is None or steps_this_call < stop_after):
        t0 = time.perf_counter()
        step_loss = torch.zeros((), device=device)
        for micro in range(cfg.grad_accum):
            rows = dataset.batch((step * cfg.grad_accum + micro) * cfg.batch_size, cfg.batch_size).to(device, non_blocking=True)
            last = micro == cfg.grad_accum - 1
            sync = contextlib.nullcontext() if (last or not d.enabled or fsdp) else raw_no_sync(wrapped)
            with sync:
                with autocast():
                    logits = wrapped(input_ids=rows[:, :-1]).logits
                loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
                (loss / cfg.grad_accum).backward()
            step_loss += loss.detach() / cfg.grad_accum
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        steps_this_call += 1
        interval_loss += step_loss
        interval_steps += 1
        interval_tokens += tokens_per_step
        bar.update(1)

        if step == 1 or step % cfg.log_every == 0 or step == max_steps:
            if d.enabled:
                torch.distributed.all_reduce(interval_loss)
                interval_loss /= d.world_size
            mean_loss = interval_loss.item() / interval_steps  # .item() also syncs CUDA for the timer
            now = time.perf_counter()
            curve.append({
                "step": step, "tokens": step * tokens_per_step, "loss": mean_loss, "lr": lr,
                "tokens_per_s": interval_tokens / max(now - interval_t, 1e-9),
            })
            bar.set_postfix(loss=f"{mean_loss:.3f}")
            interval_loss.zero_()
            interval_steps, interval_t, interval_tokens = 0, now, 0
            if d.is_main:
                _write_csv(out_dir / "curve.csv", curve, CURVE_COLUMNS)
        if steps_this_call > 1:  # the first step of a call pays for compile / allocation warm-up
            if device.type == "cuda" and step % cfg.log_every:
                torch.cuda.synchronize(device)
            timed_tokens += tokens_per_step
            timed_s += time.perf_counter() - t0
        if val_dataset is not None and (step % cfg.eval_every == 0 or step == max_steps):
            val_loss = evaluate_loss(wrapped, val_dataset, cfg.eval_batches, cfg.batch_size, device, autocast, d)
            evals.append({
                "step": step, "tokens": step * tokens_per_step, "val_loss": val_loss,
                "val_bits_per_byte": bits_per_byte(val_loss, val_dataset.meta),
            })
            if d.is_main:
                _write_csv(out_dir / "evals.csv", evals, EVAL_COLUMNS)
        if step % cfg.checkpoint_every == 0 or step == max_steps:
            save_checkpoint(_metrics())
    bar.close()
    wall = time.perf_counter() - t_call
    if timed_s == 0.0 and steps_this_call:
        timed_tokens, timed_s = steps_this_call * tokens_per_step, wall
    metrics = _metrics()

    if d.is_main:
        paths.atomic_write(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        log.info(
            "%s: step %d/%d, loss %.4f -> %.4f, %.0f tokens/s, MFU %.3g%s",
            out_dir.name, step, max_steps, metrics["initial_loss"], metrics["final_loss"],
            metrics["tokens_per_s"] or float("nan"), metrics["mfu"] or float("nan"), " (approx.)" if approximate else "",
        )
    final = _full_model(raw, fsdp, d) if fsdp else raw
    return TrainResult(model=final, metrics=metrics, curve=list(curve), evals=list(evals), out_dir=out_dir)


def raw_no_sync(wrapped):
    """DDP's ``no_sync`` through a ``torch.compile`` wrapper."""
    inner = getattr(wrapped, "_orig_mod", wrapped)
    return inner.no_sync()


def _gather_objects(obj: Any, d: Dist) -> list:
    if not d.enabled:
        return [obj]
    out = [None] * d.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def _full_model(model, fsdp: bool, d: Dist):
    """An unsharded CPU copy of an FSDP model on rank 0 (None elsewhere)."""
    from transformers import AutoModelForCausalLM

    state = _model_state(model, fsdp)
    if not d.is_main:
        return None
    full = AutoModelForCausalLM.from_config(model.config)
    full.load_state_dict(state)
    return full


# --------------------------------------------------------------------------- experiments


def run_dir(profile: str, run: str) -> Path:
    """Checkpoints, curves and metrics of a run: ``data/<profile>/train/<run>``."""
    return paths.data_dir(profile) / "train" / run


def initial_model(params: Any, run: Any, vocab_size: int, cfg: TrainParams):
    """The model a ``models:`` run starts from: a fresh ``cfg.size`` model, or ``run.init_model``'s directory."""
    if run.init_model is None:
        return build_model(cfg.size, vocab_size, seed=params.seed, max_seq_len=max(cfg.seq_len, 2048))
    return load_model(paths.model_dir(params.profile, run.init_model), vocab_size)


def main(argv: list[str] | None = None) -> int:
    """``python -m tokstudy.finetune --profile cpu --run base``.

    Under torchrun name the run positionally (torchrun would read ``--run`` as its ``--run-path``):
    ``torchrun --standalone --nproc_per_node 2 -m tokstudy.finetune base --profile cpu``.
    """
    ap = argparse.ArgumentParser(
        prog="python -m tokstudy.finetune",
        description="Pack the data of one params.yaml `models:` run, train it (resuming), save the model and its run record.",
    )
    ap.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")
    # positional too: torchrun's own parser takes `--run` for a prefix of its `--run-path`
    ap.add_argument("run_name", nargs="?", metavar="RUN", help="a key of params.yaml `models:` (base, keep-b1, fvt-b2, ...)")
    ap.add_argument("--run", dest="run_opt", default=None, help="same as RUN (not usable under torchrun)")
    ap.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints and start over")
    ap.add_argument("--fsdp", action="store_true", help="shard with FSDP2 instead of DDP (under torchrun)")
    ap.add_argument("--max-steps", type=int, default=None, help="override the run length in optimizer steps")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this many steps (simulate pre-emption)")
    args = ap.parse_args(argv)
    args.run = args.run_opt or args.run_name
    if not args.run:
        ap.error("name the run: RUN or --run RUN")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from tokstudy import data, params as params_mod, results

    d = init_distributed()
    p = params_mod.load(args.profile)
    run = p.model(args.run)
    cfg = p.train(run.stage)
    if args.fsdp:
        cfg = dataclasses.replace(cfg, fsdp=True)
    tok_path = paths.tokenizer_dir(p.profile, run.tokenizer) / "tokenizer.json"
    train_dir, val_dir = data.packed_dir(p.profile, run.name, "train"), data.packed_dir(p.profile, run.name, "validation")
    if d.is_main:  # pack once; pack() reuses up-to-date data
        data.pack(data.texts_for_run(p, run, "train"), tok_path, train_dir, cfg.seq_len, max_tokens=run.tokens)
        data.pack(data.texts_for_run(p, run, "validation"), tok_path, val_dir, cfg.seq_len, max_tokens=cfg.val_tokens)
    _barrier(d)
    ds = data.PackedDataset(train_dir, seed=p.seed, seq_len=cfg.seq_len, tokenizer=tok_path)
    val = data.PackedDataset(val_dir, shuffle=False, seq_len=cfg.seq_len, tokenizer=tok_path)
    model = initial_model(p, run, ds.meta.vocab_size, cfg)
    result = train(
        model, ds, cfg, run_dir(p.profile, run.name), val_dataset=val, resume=not args.no_resume,
        seed=p.seed, tokens=run.tokens, max_steps=args.max_steps, stop_after=args.stop_after,
    )
    if d.is_main and result.metrics["steps"] == result.metrics["max_steps"]:
        save_model(result.model, paths.model_dir(p.profile, run.name), tokenizer=tok_path)
        results.write_run(
            p.profile, "train", run.name,
            result.rows(model=run.name, tokenizer=run.tokenizer, method=run.method, stage=run.stage, tokens=run.tokens),
            params={"run": run, "train": cfg}, seed=p.seed,
            inputs=[tok_path, train_dir / data.META, val_dir / data.META],
            extra={"metrics": result.metrics},
        )
    if d.enabled:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
