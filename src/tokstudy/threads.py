"""CPU thread policy: idle OpenMP threads sleep instead of spinning.

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

Not set: ``KMP_BLOCKTIME`` (libiomp only, and PASSIVE already makes its default
0) and the thread count: torch's default (one per core) with PASSIVE matched one
thread alone and beat it beside a busy neighbour in ``benchmarks/bench_threads.py``.
"""

from __future__ import annotations

import os
import sys
import warnings

DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


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
