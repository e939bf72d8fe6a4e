"""Bootstrap confidence intervals: the one place an interval over resampled values is computed.

Used for the mean canonical-solution bits/byte over problems (:mod:`tokstudy.bpb`) and for the
paired differences between fine-tunes (:mod:`tokstudy.stages.ablations`). Percentile bootstrap,
seeded, numpy only (no torch), so a step that only compares records stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokstudy.errors import StatsError


def bootstrap_ci(values: Sequence[float], n_boot: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap ``confidence`` interval of the mean of ``values`` (``n_boot`` resamples, seeded)."""
    import numpy as np

    if not values:
        raise StatsError("bootstrap_ci over no values")
    if not 0 < confidence < 1 or n_boot < 1:
        raise StatsError(f"bootstrap needs 0 < confidence < 1 and n_boot >= 1, got {confidence}, {n_boot} "
                       "(evaluate.solution_bpb in params.yaml)")
    x = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)
