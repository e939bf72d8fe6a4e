"""How a training run uses its device: autocast dtype, whether to compile, peak FLOP/s for MFU.

What it does
    :func:`resolve_precision` and :func:`resolve_compile` turn ``train.precision``
    / ``train.compile`` (``auto`` or forced) into the decision for one device:
    ``auto`` is bf16 autocast and ``torch.compile`` on CUDA, fp32 and eager on
    CPU; forcing them on CPU runs the GPU code paths without a GPU
    (``tests/test_gpu_paths.py``). :func:`autocast_for` is the autocast context
    of a precision; :func:`peak_flops` the peak MFU divides by.

What it does not do
    No model wrapping or process groups (:mod:`tokstudy.distributed`), no
    training loop (:mod:`tokstudy.training`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable

import torch

from tokstudy.params import TrainParams

log = logging.getLogger(__name__)

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
