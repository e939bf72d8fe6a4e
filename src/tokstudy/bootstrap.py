"""Bootstrap confidence intervals: the one place an interval over resampled values is computed.

Used for the mean canonical-solution bits/byte over problems (:mod:`tokstudy.bpb`), for the
paired differences between fine-tunes (:mod:`tokstudy.stages.ablations`) and for a domain's NSL
over test documents (:func:`stratified_ratio_ci`, :mod:`tokstudy.metrics`). Percentile bootstrap,
seeded, numpy only (no torch), so a step that only compares records stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokstudy.errors import StatsError


def _check(n_boot: int, confidence: float, where: str) -> None:
    if not 0 < confidence < 1 or n_boot < 1:
        raise StatsError(f"bootstrap needs 0 < confidence < 1 and n_boot >= 1, got {confidence}, {n_boot} "
                         f"({where} in params.yaml)")


def _percentiles(stats, confidence: float) -> tuple[float, float]:
    import numpy as np

    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_ci(values: Sequence[float], n_boot: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap ``confidence`` interval of the mean of ``values`` (``n_boot`` resamples, seeded)."""
    import numpy as np

    if not values:
        raise StatsError("bootstrap_ci over no values")
    _check(n_boot, confidence, "evaluate.solution_bpb")
    x = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    return _percentiles(x[idx].mean(axis=1), confidence)


def stratified_ratio_ci(groups: Sequence[tuple[Sequence[float], Sequence[float]]], n_boot: int, confidence: float,
                        seed: int) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``mean over groups of (Σ num / Σ den)``, items resampled within each group.

    ``groups`` is ``[(num, den), ...]``, one pair of equally long sequences per group (a dataset: per-document
    token counts of a tokenizer and of the NSL base). Each resample draws every group's items with replacement,
    keeping each item's ``num`` and ``den`` together (paired), so the interval is that of a domain's NSL (the
    unweighted mean of its datasets' ratios of sums) over the sampling of test documents.

    >>> stratified_ratio_ci([([2, 4], [4, 8]), ([3], [3])], 100, 0.95, 0)  # ratios 0.5 and 1.0 whatever is drawn
    (0.75, 0.75)
    """
    import numpy as np

    if not groups:
        raise StatsError("stratified_ratio_ci over no groups")
    _check(n_boot, confidence, "metrics.nsl_interval")
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for i, (num, den) in enumerate(groups):
        num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
        if len(num) != len(den) or not len(num):
            raise StatsError(f"group {i}: {len(num)} numerators and {len(den)} denominators; need as many, >= 1")
        idx = rng.integers(0, len(num), size=(n_boot, len(num)))
        sums = den[idx].sum(axis=1)
        if (sums <= 0).any():
            raise StatsError(f"group {i}: a resample has a zero denominator sum (all its items have den 0?)")
        total += num[idx].sum(axis=1) / sums
    return _percentiles(total / len(groups), confidence)


def seeds_problems_ci(values: Sequence[Sequence[float]], n_boot: int, confidence: float,
                      seed: int) -> tuple[float, float]:
    """Percentile-bootstrap interval of the grand mean of a seeds x problems table, resampling both.

    ``values[s][p]`` is one number per training seed (replicate) and problem, e.g. a paired difference of
    solution bits/byte between two fine-tunes trained on the same data seed. Seeds and problems are crossed
    (every seed scores every problem), so each resample draws seeds with replacement and, independently,
    problems with replacement, and averages the drawn cells: the interval covers both the variation between
    training runs and the sampling of problems. With one seed it is the interval over problems alone.

    >>> seeds_problems_ci([[1.0, 1.0], [1.0, 1.0]], 200, 0.95, 0)  # no variation anywhere
    (1.0, 1.0)
    >>> lo, hi = seeds_problems_ci([[0.0, 0.0], [2.0, 2.0]], 2000, 0.95, 0)  # seeds disagree: the CI spans them
    >>> (lo, hi)
    (0.0, 2.0)
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or not x.size:
        raise StatsError(f"seeds_problems_ci needs a non-empty seeds x problems table, got shape {x.shape}")
    _check(n_boot, confidence, "evaluate.solution_bpb")
    rng = np.random.default_rng(seed)
    n_s, n_p = x.shape
    s_idx = rng.integers(0, n_s, size=(n_boot, n_s))
    p_idx = rng.integers(0, n_p, size=(n_boot, n_p))
    means = np.array([x[np.ix_(s_idx[b], p_idx[b])].mean() for b in range(n_boot)])
    return _percentiles(means, confidence)
