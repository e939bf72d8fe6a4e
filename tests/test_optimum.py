"""Optimal vocabulary size and the NSL(V) fit against hand-computed values and docs/paper.md."""

import math

import numpy as np
import pytest

from tokstudy import optimum
from tokstudy.costs import ModelShape
from tokstudy.errors import OptimumError
from tokstudy.optimum import NslFit

# head_dim 4; 32 KV-cache bytes per token (see tests/test_costs.py)
TINY = ModelShape(n_layers=2, d_model=8, n_heads=2, n_kv_heads=1, d_ff=16, mlp="plain", vocab_size=10, context=4)


def test_optimum_on_synthetic_convex_case():
    # r(V) = 1 + K/V. compute: (1 + K/V)(2N + 2dV) is minimal at V* = sqrt(K·N/d)
    r = NslFit(a=1.0, b=1000.0, c=1.0, scale=1.0)
    grid = np.arange(10, 5000)
    opt = optimum.optimal_vocab_size(TINY, r, "compute", grid=grid)
    assert opt.vocab_size == pytest.approx(math.sqrt(1000 * 896 / 8), abs=1)
    assert not opt.at_grid_edge
    # memory: 2·(N + 2dV) + 32·B·L·(1 + K/V) is minimal at V* = sqrt(32·B·L·K / (2·2d))
    m1 = optimum.optimal_vocab_size(TINY, r, "memory", batch=1, seq_len=100, grid=grid)
    assert m1.vocab_size == pytest.approx(math.sqrt(32 * 100 * 1000 / 32), abs=1)
    m4 = optimum.optimal_vocab_size(TINY, r, "memory", batch=4, seq_len=100, grid=grid)
    assert m4.vocab_size == pytest.approx(math.sqrt(4 * 32 * 100 * 1000 / 32), abs=1)
    edge = optimum.optimal_vocab_size(TINY, r, "compute", grid=np.arange(10, 100))
    assert edge.at_grid_edge and edge.vocab_size == 99
    with pytest.raises(OptimumError, match="seq_len"):
        optimum.optimal_vocab_size(TINY, r, "memory", grid=grid)


def test_fit_nsl_recovers_parameters_and_flags_extrapolation():
    true = NslFit(0.7, 0.9, 0.45)
    vs = [300, 400, 512, 768, 1024]
    fit = optimum.fit_nsl([(v, float(true(v))) for v in vs])
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.7, 0.9, 0.45), abs=2e-3)
    assert fit.rmse < 1e-4 and (fit.v_min, fit.v_max) == (300, 1024)
    opt = optimum.optimal_vocab_size(TINY, [(v, float(true(v))) for v in vs], grid=np.arange(10, 100_000, 10))
    assert opt.extrapolated == (not 300 <= opt.vocab_size <= 1024)
    with pytest.raises(OptimumError, match=">= 3"):
        optimum.fit_nsl([(300, 1.0), (400, 0.9)])



def test_paper_reconstruction_compute_optimum():
    """docs/paper.md, "Optimal vocab size": NSL_code(V) = 0.666 + 0.815·(V/1000)^-0.510, cost ∝ NSL·(N_nonemb + V·d)."""
    fit = optimum.PAPER_NSL_FITS["code"]
    grid = optimum.vocab_grid(10_000, 1_000_000, 20_000)
    s7b = ModelShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008, context=4096)
    v7 = optimum.optimal_vocab_size(s7b, fit, "compute", grid=grid).vocab_size
    assert v7 == pytest.approx(92_500, abs=500)  # docs/paper.md#optimal-vocab-size: ≈93k
    s15 = ModelShape(n_layers=24, d_model=2048, n_heads=16, d_ff=5632)
    assert optimum.optimal_vocab_size(s15, fit, grid=grid).vocab_size == pytest.approx(50_000, rel=0.05)  # ≈50k
    s13 = ModelShape(n_layers=40, d_model=5120, n_heads=40, d_ff=13824)
    assert optimum.optimal_vocab_size(s13, fit, grid=grid).vocab_size == pytest.approx(125_000, rel=0.02)  # ≈125k
    # attention over a 4k window makes every token dearer: the optimum moves up
    with_attn = optimum.optimal_vocab_size(s7b, fit, "compute", seq_len=4096, grid=grid).vocab_size
    assert with_attn > v7


@pytest.mark.parametrize("tokens,expected", [(16_384, 35_000), (65_536, 87_000), (262_144, 218_000)])
def test_paper_reconstruction_memory_optimum(tokens, expected):
    """memory ∝ bytes·(N + 2Vd) + bytes·2·n_layers·d·B·L·NSL(V), bf16, no GQA (docs/paper.md, "Optimal vocab size")."""
    s7b = ModelShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008)
    grid = optimum.vocab_grid(10_000, 1_000_000, 20_000)
    opt = optimum.optimal_vocab_size(s7b, optimum.PAPER_NSL_FITS["code"], "memory", batch=1, seq_len=tokens, grid=grid)
    assert opt.vocab_size == pytest.approx(expected, rel=0.03)
    # only B·L matters
    opt2 = optimum.optimal_vocab_size(s7b, optimum.PAPER_NSL_FITS["code"], "memory", batch=4, seq_len=tokens // 4,
                                      grid=grid)
    assert opt2.vocab_size == opt.vocab_size


def test_memory_optimum_short_sequences_prefer_small_vocab():
    s7b = ModelShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008)
    grid = optimum.vocab_grid(10_000, 1_000_000, 20_000)
    opt = optimum.optimal_vocab_size(s7b, optimum.PAPER_NSL_FITS["code"], "memory", batch=1, seq_len=1024, grid=grid)
    assert opt.vocab_size == 10_000 and opt.at_grid_edge


def test_fit_of_the_authors_sweep_reproduces_the_paper_fit():
    """Our fit_nsl on the 15 transcribed sweep rows (data/paper/vocab_sweep.csv) ≈ docs/paper.md's 125-row fit."""
    import csv

    from tokstudy import paths

    with open(paths.DATA / "paper" / "vocab_sweep.csv", encoding="utf-8") as fh:
        sweep = [(int(r["vocab_size"]), float(r["nsl_code"])) for r in csv.DictReader(fh)]
    fit = optimum.fit_nsl(sweep)
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.666, 0.815, 0.510), abs=0.02)
    assert fit.rmse < 0.001
    s7b = ModelShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008)
    opt = optimum.optimal_vocab_size(s7b, sweep, grid=optimum.vocab_grid(10_000, 1_000_000, 20_000))
    assert opt.vocab_size == pytest.approx(93_000, rel=0.02) and not opt.extrapolated
