"""The fixed cost of a pipeline stage: its notebook's imports and its kernel's start, as ratios to an anchor.

Each DVC stage starts papermill, a kernel, and imports its step. Two parts of that are ours to cut, and
this measures both, round-robin, each in a fresh interpreter (imports are cached per process):

* **imports**: ``import tokstudy.stages.<step>`` of each step module alone (what a notebook imports now)
  against importing every step module (what every notebook paid while ``tokstudy.stages`` re-exported
  every step);
* **kernel**: papermill running a one-cell notebook with our engine (``--engine tokstudy``, IPC sockets)
  against papermill's default engine (TCP).

Reported: the median seconds of each and its ratio to its group's anchor (imports: every step module, what
a notebook imported before; kernels: papermill's default engine), so machines compare only as ratios.

    python benchmarks/bench_stage_overhead.py --json benchmarks/results/stage_overhead.json   # ~2 min
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("corpus", "tokenizers", "vocab", "costs", "train", "transfer", "evaluation", "ablations", "figures",
         "summary")
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
                       "source": "x = 1"}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / "one.ipynb"
        nb.write_text(json.dumps(NOTEBOOK))
        out = str(Path(tmp) / "out.ipynb")
        cases = {"anchor: python -c pass": [py, "-c", "pass"],
                 "import every step module (before)": [py, "-c", "; ".join(f"import tokstudy.stages.{s}"
                                                                             for s in STEPS)],
                 **{f"import tokstudy.stages.{s}": [py, "-c", f"import tokstudy.stages.{s}"] for s in STEPS},
                 "papermill, default engine (TCP)": [py, "-m", "papermill", "-k", "python3", str(nb), out],
                 "papermill --engine tokstudy (IPC)": [py, "-m", "papermill", "--engine", "tokstudy", "-k",
                                                       "python3", str(nb), out]}
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, cmd in cases.items():
                times[name].append(_seconds(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    anchors = {"import": med["import every step module (before)"], "papermill": med["papermill, default engine (TCP)"]}
    group = {k: k.split()[0].rstrip(",") for k in med}
    rows = [{"case": k, "median_s": round(v, 3),
             "ratio_to_anchor": round(v / anchors[group[k]], 3) if group[k] in anchors else None}
            for k, v in med.items()]
    width = max(len(r["case"]) for r in rows)
    for r in rows:
        ratio = "" if r["ratio_to_anchor"] is None else f"{r['ratio_to_anchor']:6.2f}x"
        print(f"{r['case']:<{width}}  {r['median_s']:7.3f} s  {ratio}")
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "cpus": __import__("os").cpu_count(),
                                         "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
