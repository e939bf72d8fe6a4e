"""Model-side figures: the regex / vocab-size / FVT ablations beside the paper's pass@1 (plots only).

Input is the table of :func:`tokstudy.stages.ablations.ablation_table`; nothing is computed here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from tokstudy.plots import save  # noqa: E402

PANELS = (("regex", "pre-tokenization regex (paper Table 2)"), ("vocab", "vocabulary size (paper Table 3)"),
          ("transfer", "embedding init (paper Table 4)"))


def ablations(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """One panel per comparison: our canonical-solution bits/byte (95% CI) and held-out code bits/byte per
    run, and the paper's HumanEval pass@1 for the matching condition on a second axis."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8))
    for ax, (comparison, title) in zip(axes, PANELS, strict=True):
        t = table[table["comparison"] == comparison].reset_index(drop=True)
        x = range(len(t))
        err = [t["solution_bpb"] - t["ci_low"], t["ci_high"] - t["solution_bpb"]]
        ax.errorbar(x, t["solution_bpb"], yerr=err, fmt="o", capsize=4, label="HumanEval solution bits/byte (ours)")
        ax.plot(x, t["code_bpb"], "s", color="tab:gray", label="held-out code bits/byte (ours)")
        ax.set_xticks(list(x), t["label"], rotation=20)
        ax.set(title=title, ylabel="bits per byte (lower is better)")
        paper = ax.twinx()
        paper.plot(x, t["paper_pass1"], "D", color="tab:red", label="paper HumanEval pass@1 (1.5B)")
        paper.set_ylabel("paper pass@1 (%)", color="tab:red")
        paper.set_ylim(0, max(25.0, float(t["paper_pass1"].max(skipna=True) or 0) + 3))
    handles = [h for a in (axes[0], axes[0].figure.axes[len(PANELS)]) for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return save(fig, "model_ablations", out_dir)
