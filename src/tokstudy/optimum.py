"""The compute- and memory-optimal vocabulary size, from a fit of NSL against V.

A tokenizer enters the cost of text only through ``r(V)``, the tokens needed
per unit of text, e.g. NSL(V) fitted as ``a + b·(V/1000)^-c``
(docs/paper.md, "NSL fit").  Per unit of text (docs/paper.md, "Optimal vocab
size"; the paper's own formulas are unknown, this is our reconstruction):

* compute:  ``r(V) · C_fwd(V)`` with ``C_fwd`` from :func:`tokstudy.costs.flops_per_token`;
* memory:   ``dtype·params(V) + KV_bytes_per_token · batch · seq_len · r(V)``
  where ``seq_len`` is measured in units of text (base-tokenizer tokens for NSL).

With the authors' code-NSL sweep fitted as ``0.666 + 0.815·(V/1000)^-0.510``
and Llama-2-7B's body, the compute objective (no attention term) is minimised
at V ≈ 92.5k, matching docs/paper.md's ≈93k.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokstudy.costs import ModelShape, body_params, kv_cache_bytes
from tokstudy.errors import OptimumError

OBJECTIVES = ("compute", "memory")


# --------------------------------------------------------------------------- NSL(V) fit


@dataclass(frozen=True)
class NslFit:
    """``NSL(V) = a + b·(V/scale)^(-c)``; ``rmse`` over the fitted points, their V range in ``v_min..v_max``."""

    a: float
    b: float
    c: float
    scale: float = 1000.0
    rmse: float = float("nan")
    v_min: float = float("nan")
    v_max: float = float("nan")

    def __call__(self, vocab_size):
        v = np.asarray(vocab_size, dtype=float)
        return self.a + self.b * (v / self.scale) ** (-self.c)


# docs/paper.md, "NSL fit": least squares over the authors' 125-size sweep (GPT-4 regex, 70/30 code/English)
PAPER_NSL_FITS = {
    "code": NslFit(0.666, 0.815, 0.510, rmse=0.0004, v_min=10_000, v_max=256_000),
    "average": NslFit(0.671, 1.240, 0.435, rmse=0.0005, v_min=10_000, v_max=256_000),
    "english": NslFit(0.767, 1.481, 0.555, rmse=0.0008, v_min=10_000, v_max=256_000),
}


def fit_nsl(
    points: Iterable[tuple[float, float]], c_grid: Sequence[float] | None = None, scale: float = 1000.0
) -> NslFit:
    """Fit ``a + b·(V/scale)^-c`` to ``(V, nsl)`` points: grid over ``c``, linear least squares in (a, b).

    Needs at least 3 distinct vocabulary sizes.  The grid is refined once around
    the best ``c``.
    """
    pts = sorted((float(v), float(y)) for v, y in points)
    v = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    if len(np.unique(v)) < 3:
        raise OptimumError(f"fitting NSL(V) needs >= 3 distinct vocabulary sizes, got {sorted(set(v.tolist()))}")
    if not np.all(np.isfinite(y)):
        raise OptimumError("NSL points contain non-finite values")
    x = v / scale

    def solve(c):
        A = np.stack([np.ones_like(x), x ** (-c)], axis=1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return float(np.mean((A @ coef - y) ** 2)), coef

    grid = np.linspace(0.01, 3.0, 600) if c_grid is None else np.asarray(c_grid, dtype=float)
    best = min((solve(c)[0], c) for c in grid)
    step = (grid[1] - grid[0]) if len(grid) > 1 else 0.01
    fine = np.linspace(max(best[1] - step, 1e-4), best[1] + step, 201)
    mse, c = min((solve(cc)[0], cc) for cc in fine)
    _, (a, b) = solve(c)
    return NslFit(float(a), float(b), float(c), scale, math.sqrt(mse), float(v.min()), float(v.max()))


# --------------------------------------------------------------------------- optimal vocabulary


@dataclass(frozen=True)
class OptimalVocab:
    vocab_size: int
    objective: str
    cost: float
    at_grid_edge: bool
    extrapolated: bool
    grid_min: int
    grid_max: int


def vocab_grid(v_min: int = 1_000, v_max: int = 1_000_000, points: int = 4000) -> np.ndarray:
    """Geometric grid of integer vocabulary sizes."""
    if not 0 < v_min < v_max:
        raise OptimumError(f"vocab grid needs 0 < v_min < v_max, got {v_min}, {v_max}")
    return np.unique(np.round(np.geomspace(v_min, v_max, int(points))).astype(np.int64))


def cost_per_text(
    shape: ModelShape,
    vocab_sizes,
    ratio: Callable,
    objective: str = "compute",
    *,
    batch: int = 1,
    seq_len: float | None = None,
    dtype_bytes: int = 2,
):
    """The objective of :func:`optimal_vocab_size` at every V in ``vocab_sizes`` (vectorised).

    ``ratio(V)``: tokens per unit of text (NSL, or 1/bytes-per-token).
    compute: ``r·(2N + 2Vd + 2·n_layers·(seq_len·r)·d_attn)``; the attention
    term is left out when ``seq_len`` is None (the docs/paper.md reconstruction).
    memory: ``dtype·(N + (1|2)·V·d) + KV/token·batch·seq_len·r``.
    """
    v = np.asarray(vocab_sizes, dtype=float)
    r = np.asarray(ratio(v), dtype=float)
    d = shape.d_model
    n_body = body_params(shape)
    if objective == "compute":
        attn = 0.0 if seq_len is None else 2 * shape.n_layers * (seq_len * r) * shape.n_heads * shape.head_dim
        return r * (2 * n_body + 2 * v * d + attn)
    if objective == "memory":
        if seq_len is None:
            raise OptimumError("the memory objective needs seq_len (and batch)")
        emb = v * d * (1 if shape.tied else 2)
        return dtype_bytes * (n_body + emb) + kv_cache_bytes(shape, seq_len * r, dtype_bytes, batch)
    raise OptimumError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def optimal_vocab_size(
    shape: ModelShape,
    nsl: Callable | Iterable[tuple[float, float]],
    objective: str = "compute",
    *,
    batch: int = 1,
    seq_len: float | None = None,
    grid=None,
    dtype_bytes: int = 2,
) -> OptimalVocab:
    """The V on ``grid`` minimising compute or memory per unit of text (see :func:`cost_per_text`).

    ``nsl`` is a callable ``V -> tokens per unit of text`` (e.g. an
    :class:`NslFit`) or measured ``(V, nsl)`` points, which are fitted with
    :func:`fit_nsl`.  ``shape.vocab_size`` is ignored.  The result flags an
    optimum on the grid's edge and one outside the fitted points' V range.
    """
    fn = nsl if callable(nsl) else fit_nsl(nsl)
    grid = vocab_grid() if grid is None else np.asarray(grid, dtype=np.int64)
    costs = cost_per_text(shape, grid, fn, objective, batch=batch, seq_len=seq_len, dtype_bytes=dtype_bytes)
    i = int(np.argmin(costs))
    v = int(grid[i])
    lo, hi = getattr(fn, "v_min", float("nan")), getattr(fn, "v_max", float("nan"))
    extrapolated = bool(not (math.isnan(lo) or math.isnan(hi)) and not lo <= v <= hi)
    at_edge = i in (0, len(grid) - 1)
    return OptimalVocab(v, objective, float(costs[i]), at_edge, extrapolated, int(grid[0]), int(grid[-1]))


def optimal_vocab_rows(
    points: Sequence[Mapping[str, Any]],
    model_shapes: Mapping[str, ModelShape],
    memory_settings: Iterable[tuple[int, int]],
    *,
    grid=None,
    dtype_bytes: int = 2,
    domain: str = "code",
) -> list[dict]:
    """Optimal V per model shape, for the measured NSL fit and the paper's fit (docs/paper.md, "NSL fit").

    Objectives: compute without attention, compute with attention over the
    shape's context, and memory at every ``(batch, seq_len)``.  Also rows with
    the fitted ``nsl_fit_{a,b,c,rmse}``.
    """
    fits = {"measured": fit_nsl([(p["vocab_size"], p["nsl"]) for p in points])}
    if domain in PAPER_NSL_FITS:
        fits["paper"] = PAPER_NSL_FITS[domain]
    rows = []
    for source, fit in fits.items():
        for k in ("a", "b", "c", "rmse", "v_min", "v_max"):
            rows.append({"nsl_source": source, "domain": domain, "metric": f"nsl_fit_{k}", "value": getattr(fit, k)})
    for model, shape in model_shapes.items():
        cases = [("compute", 1, None), ("compute", 1, shape.context)]
        cases += [("memory", int(b), int(n)) for b, n in memory_settings]
        for source, fit in fits.items():
            for objective, batch, seq_len in cases:
                opt = optimal_vocab_size(
                    shape, fit, objective, batch=batch, seq_len=seq_len, grid=grid, dtype_bytes=dtype_bytes
                )
                rows.append(
                    {
                        "model": model,
                        "nsl_source": source,
                        "domain": domain,
                        "objective": objective,
                        "batch": batch,
                        "seq_len": seq_len if seq_len is not None else 0,
                        "metric": "optimal_vocab_size",
                        "value": opt.vocab_size,
                        "at_grid_edge": opt.at_grid_edge,
                        "extrapolated": opt.extrapolated,
                    }
                )
    return rows
