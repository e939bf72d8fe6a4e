"""Pipeline step ``costs`` (notebook 07): inference costs and the optimal vocabulary size.

Reads the compression records of ``costs.sweep`` and checks the cost model against the measured
generation speed of random-weight models. :mod:`tokstudy.costs` holds the formulas (sources in
its docstrings; docs/paper.md#cost-model), :mod:`tokstudy.optimum` the vocab-size optimum.
"""

from __future__ import annotations

from pathlib import Path

from tokstudy import costs as costs_mod
from tokstudy import optimum, results, tokenizer
from tokstudy.params import Params
from tokstudy.stages import inputs


def costs(P: Params) -> Path:
    """Inference costs and optimal vocabulary size from the compression runs of ``costs.sweep``,
    checked against measured generation speed of random-weight models; run record ``costs-costs.json``."""
    from tokstudy import speed  # torch: only this step needs it

    C = P.costs
    records = [inputs.run_record(P, "compression", name) for name in C.sweep]
    rows = [row for f in records for row in results.read_run(f)["rows"]]
    points = costs_mod.sweep_points(rows, C.sweep, C.domain)
    shapes = costs_mod.shapes(C.shapes)
    cost_rows = costs_mod.cost_rows(points, shapes, base_vocab_size=C.base_vocab_size, doc_bytes=C.doc_bytes,
                                    dtype_bytes=C.dtype_bytes, regime=C.speed_regime)
    grid = optimum.vocab_grid(C.vocab_min, C.vocab_max, C.vocab_points)
    opt_rows = optimum.optimal_vocab_rows(points, shapes, C.memory_settings, grid=grid, dtype_bytes=C.dtype_bytes,
                                          domain=C.domain)
    T = P.train("pretrain")
    handles = {name: tokenizer.load(inputs.tokenizer_file(P, name).parent) for name in C.sweep}
    speeds = speed.random_model_speeds(handles, T.size, speed.speed_prompts(C.speed_check_prompts),
                                       C.speed_check_max_new_tokens, rounds=C.speed_check_rounds,
                                       device=P.evaluate.device, seed=P.seed)
    shape = costs_mod.shape_from_size(T.size, speeds[0]["model_vocab_size"], context=T.seq_len)
    speed_rows = costs_mod.speed_check_rows(speeds, {p["tokenizer"]: p["bytes_per_token"] for p in points}, shape,
                                            regime=C.speed_check_regime)
    return results.write_run(P.profile, "costs", "costs", cost_rows + opt_rows + speed_rows, params=C, seed=P.seed,
                             inputs=records)


__all__ = ["costs"]
