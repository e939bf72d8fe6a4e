"""CPU thread and kernel policy: idle OpenMP threads sleep instead of spinning, and x86 CPU kernels are
pinned to AVX2 so two machines can give the same bytes.

torch's CPU kernels run on OpenMP (libgomp in the Linux pip wheels, Intel's
libiomp in some conda builds). By default an idle OpenMP thread spins for a
while before sleeping (libgomp: 300,000 spins). Alone on a machine that is
harmless; beside any other CPU-busy process the spinning threads steal the
cores their own team waits for, and throughput collapses (issue 8: 4.4x slower
beside another CPU job, 1.04x with ``OMP_WAIT_POLICY=PASSIVE``; on a shared
2-core machine PASSIVE ran 3.9x faster, see ``benchmarks/results/threads-*.json``).

:func:`apply` (run by ``import tokstudy``) sets ``OMP_WAIT_POLICY=PASSIVE``
unless the environment already names a value, so the user's choice always
wins. Both runtimes read it once, when they are loaded, i.e. at
``import torch``: importing tokstudy first is enough (and is what the CLI,
``python -m tokstudy.*``, torchrun workers and the notebooks do); if torch was
imported first the setting comes too late, and :func:`apply` warns once.
Child processes (papermill kernels, torchrun workers, DVC stages via the
Makefile) inherit the variable.

Kernel path (x86-64 only): torch dispatches each CPU kernel to the widest instruction set the machine
has (AVX-512 here, AVX2 on most laptops), and MKL and oneDNN pick their own code paths, so the same
training run gives different floating-point sums, then a different base model, on two machines. On x86
:func:`apply` also sets ``ATEN_CPU_CAPABILITY=avx2``, ``MKL_CBWR=AVX2`` and ``ONEDNN_MAX_CPU_ISA=AVX2``
(every x86-64 CPU since 2013 has AVX2): on this project's 2-core AVX-512 machine a training step of the
cpu model takes 1.02x the time of torch's own AVX-512 dispatch, and the final weights differ between the
two, as expected (``benchmarks/bench_kernel_pin.py``, ``benchmarks/results/kernel_pin.json``). The pin
also keeps oneDNN off the CPU's bf16 instructions: bf16 autocast runs ~14x slower under it, and 1.19x
faster without it (``benchmarks/bench_cpu_paths.py``), a gain that would cost the same-bytes guarantee.
A value already in the environment wins. :func:`recorded` is what every run record stores
(results.provenance).

Not set: ``KMP_BLOCKTIME`` (libiomp only, and PASSIVE already makes its default
0) and the thread count: torch's default (one per core) with PASSIVE matched one
thread alone and beat it beside a busy neighbour in ``benchmarks/bench_threads.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

#: the x86 CPU kernel pins (see above); a level every x86-64 laptop has
KERNEL_PIN = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
X86 = platform.machine().lower() in ("x86_64", "amd64")
DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", **(KERNEL_PIN if X86 else {})}


def apply() -> dict[str, str]:
    """Set each of :data:`DEFAULTS` not already in the environment; return what was set."""
    added = {k: v for k, v in DEFAULTS.items() if k not in os.environ}
    if added and "torch" in sys.modules:
        warnings.warn(
            f"tokstudy: torch was imported before tokstudy, so {', '.join(f'{k}={v}' for k, v in added.items())} "
            "comes too late for its OpenMP threads; import tokstudy first or export it in the shell",
            RuntimeWarning,
            stacklevel=2,
        )
    os.environ.update(added)
    return added


def recorded() -> dict[str, str | None]:
    """The thread and kernel settings in effect, for run records: each variable of :data:`DEFAULTS` and
    :data:`KERNEL_PIN` as the environment has it, and the kernel level torch dispatches to (None before
    ``import torch``)."""
    out: dict[str, str | None] = {k: os.environ.get(k) for k in {**DEFAULTS, **KERNEL_PIN}}
    torch = sys.modules.get("torch")
    out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    return out
