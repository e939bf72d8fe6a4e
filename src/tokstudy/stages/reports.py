"""Pipeline steps that read other steps' run records: inference costs and the figures.

Each takes the resolved params ``P`` (``params.load(profile)``).
"""

from __future__ import annotations

from pathlib import Path

from tokstudy import costs as costs_mod
from tokstudy import optimum, paths, plots, results
from tokstudy.params import Params
from tokstudy.stages import inputs
from tokstudy.stages.tokenizers import compression_rows

# committed results of the GPU profile, drawn beside any other profile's own
GPU = "gpu"


def costs(P: Params) -> Path:
    """Inference costs and optimal vocabulary size from the compression runs of ``costs.sweep``,
    checked against measured generation speed of random-weight models; run record ``costs-costs.json``.

    ``tokstudy.costs`` holds the formulas (sources in its docstrings; docs/paper.md#cost-model).
    """
    from tokstudy import speed  # torch: only this step needs it

    C = P.costs
    rows = compression_rows(P, list(C.sweep))
    points = costs_mod.sweep_points(rows, C.sweep, C.domain)
    shapes = costs_mod.shapes(C.shapes)
    cost_rows = costs_mod.cost_rows(points, shapes, base_vocab_size=C.base_vocab_size, doc_bytes=C.doc_bytes,
                                    dtype_bytes=C.dtype_bytes, regime=C.speed_regime)
    grid = optimum.vocab_grid(C.vocab_min, C.vocab_max, C.vocab_points)
    opt_rows = optimum.optimal_vocab_rows(points, shapes, C.memory_settings, grid=grid, dtype_bytes=C.dtype_bytes,
                                            domain=C.domain)
    T = P.train("pretrain")
    handles = {name: inputs.tokenizer_variant(P, name) for name in C.sweep}
    speeds = speed.random_model_speeds(handles, T.size, speed.speed_prompts(C.speed_check_prompts),
                                       C.speed_check_max_new_tokens, rounds=C.speed_check_rounds,
                                       device=P.evaluate.device, seed=P.seed)
    shape = costs_mod.shape_from_size(T.size, speeds[0]["model_vocab_size"], context=T.seq_len)
    speed_rows = costs_mod.speed_check_rows(speeds, {p["tokenizer"]: p["bytes_per_token"] for p in points}, shape,
                                            regime=C.speed_check_regime)
    run_files = [paths.runs_dir(P.profile) / f"compression-{name}.json" for name in C.sweep]
    return results.write_run(P.profile, "costs", "costs", cost_rows + opt_rows + speed_rows, params=C, seed=P.seed,
                             inputs=run_files)


def figures(P: Params) -> dict[str, list[Path]]:
    """Collect every run record of the profile into ``results/<profile>/results.csv`` (with the paper's
    numbers, and the committed ``gpu`` runs beside any other profile) and draw every figure whose rows
    exist into ``paths.figures_dir(profile)``.

    Figures have no run record: returns ``{figure name: [png, pdf]}`` of the figures drawn now. In the
    smoke profile, a profile with no run record yet first measures the references and ``costs.sweep``
    (:func:`compression_rows`), so the notebook runs on its own.
    """
    runs = paths.runs_dir(P.profile)
    if P.profile == inputs.SMOKE and not (runs.is_dir() and any(runs.glob("*.json"))):
        compression_rows(P, [*P.metrics.references, *P.costs.sweep])
    extra = [paths.runs_dir(GPU)] if P.profile != GPU and paths.runs_dir(GPU).is_dir() else []
    df = results.collect(P.profile, extra_dirs=extra)
    return plots.draw_all(df, paths.figures_dir(P.profile), P.profile)


__all__ = ["costs", "figures"]
