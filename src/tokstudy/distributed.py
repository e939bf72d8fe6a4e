"""Distributed set-up for training under ``torchrun``: process group, DDP / FSDP2 wrapping, full state dicts.

What it does
    :func:`init_distributed` joins the process group that ``torchrun``
    describes in the environment (``gloo`` on CPU, ``nccl`` on CUDA) and says
    where this process stands (:class:`Dist`); :func:`wrap` puts a model in DDP,
    or FSDP2 (``fully_shard`` per decoder layer), then ``torch.compile`` if
    asked; :func:`model_state` / :func:`optimizer_state` / :func:`load_states`
    move *full* (unsharded, CPU) state dicts in and out of a possibly sharded model.

What it does not do
    No training loop and no files (that is :mod:`tokstudy.training` and
    :mod:`tokstudy.checkpoint`). A single process (no ``WORLD_SIZE > 1``) is
    rank 0 of 1 and every helper here is a no-op for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


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
    """Join the process group that ``torchrun`` describes in the environment.

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


def barrier(d: Dist) -> None:
    if d.enabled:
        torch.distributed.barrier()


def gather_objects(obj: Any, d: Dist) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` alone)."""
    if not d.enabled:
        return [obj]
    out = [None] * d.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def mean_over_ranks(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """All-reduce ``t`` in place to its mean over ranks."""
    if d.enabled:
        torch.distributed.all_reduce(t)
        t /= d.world_size
    return t


def wrap(model, d: Dist, device: torch.device, *, fsdp: bool, compile: bool):
    """The module to call forward on: ``model`` in DDP or FSDP2 (``fsdp``), then ``torch.compile``-d (``compile``).

    FSDP2 shards ``model`` in place; the returned wrapper and ``model`` share
    parameters. Whether to compile is the caller's decision (on any device: inductor also runs on CPU).
    """
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
    if compile:
        if device.type == "cpu":
            _inductor_widest_isa()
        wrapped = torch.compile(wrapped)
    return wrapped


def _inductor_widest_isa() -> None:
    """``torch.compile`` on CPU: inductor generates code for the machine's widest vector ISA, not the AVX2 level
    :mod:`tokstudy.threads` pins eager kernels to (inductor follows ``ATEN_CPU_CAPABILITY`` too). This torch's
    inductor gives NaN losses on our training step with AVX2 code on an AVX-512 machine
    (``tests/test_gpu_paths.py``). Compiled CPU runs exist to test the gpu profile's code paths
    (``train.compile: auto`` is off on CPU), so their bytes need not match across machines. A ``simdlen`` the
    user set is kept."""
    from torch._inductor import config, cpu_vec_isa

    widths = [isa.bit_width() for isa in cpu_vec_isa.valid_vec_isa_list()]
    if widths and config.cpp.simdlen is None:
        config.cpp.simdlen = max(widths)


def no_sync(wrapped):
    """DDP's ``no_sync`` through a ``torch.compile`` wrapper."""
    inner = getattr(wrapped, "_orig_mod", wrapped)
    return inner.no_sync()


def model_state(model, fsdp: bool) -> dict:
    """A full CPU state dict (gathered from the shards under FSDP)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def optimizer_state(model, opt, fsdp: bool) -> dict:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return opt.state_dict()


def load_states(model, opt, state: Mapping, fsdp: bool) -> None:
    """Load full ``state["model"]`` / ``state["optimizer"]`` into a possibly sharded model and its optimizer."""
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


def full_model(model, fsdp: bool, d: Dist):
    """An unsharded CPU copy of an FSDP model on rank 0 (None elsewhere); ``model`` itself without FSDP."""
    if not fsdp:
        return model
    from transformers import AutoModelForCausalLM

    state = model_state(model, fsdp)
    if not d.is_main:
        return None
    full = AutoModelForCausalLM.from_config(model.config)
    full.load_state_dict(state)
    return full
