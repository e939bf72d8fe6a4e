"""torch CPU throughput alone vs beside a CPU-busy neighbour, per OpenMP wait policy (see tokstudy.threads).

Each configuration (wait policy x thread count) runs in a fresh interpreter,
because OpenMP reads OMP_WAIT_POLICY once, at ``import torch``. Inside it, a
training-like step (2 transformer layers, d=256, batch 8x256 tokens, forward +
backward + AdamW) is timed in alternating rounds: alone, then beside a
pure-Python spinner process (one busy core). Reported: the median tokens/s per
phase, each configuration's slowdown (alone / loaded, median of the paired
rounds), and throughput as a ratio against the anchor (libgomp's default
policy, alone), so the numbers compare across machines only as ratios.
Configurations run round-robin, ``--repeats`` times each.

    python benchmarks/bench_threads.py                  # ~3 min on a busy 2-core machine
    python benchmarks/bench_threads.py --repeats 1 --json /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (label, OMP_WAIT_POLICY or None for the runtime's default, torch threads or None for torch's default)
CONFIGS = [
    ("default", None, None),  # the anchor: what torch does when nobody sets anything
    ("ACTIVE", "ACTIVE", None),
    ("PASSIVE", "PASSIVE", None),
    ("PASSIVE, 1 thread", "PASSIVE", 1),
]
OUT_DIR = Path(__file__).resolve().parent / "results"

CHILD = r"""
import json, subprocess, sys, time
import torch
rounds, round_s, threads = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if threads != "None":
    torch.set_num_threads(int(threads))
torch.manual_seed(0)
layer = lambda: torch.nn.TransformerEncoderLayer(256, 4, 768, dropout=0.0, batch_first=True)
model = torch.nn.Sequential(layer(), layer())
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(8, 256, 256)
def step():
    opt.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    opt.step()
def measure():
    n, t0 = 0, time.perf_counter()
    while True:
        step(); n += 1
        dt = time.perf_counter() - t0
        if dt >= round_s:
            return n * x.shape[0] * x.shape[1] / dt
step()  # warm-up
out = {"alone": [], "loaded": [], "threads": torch.get_num_threads()}
for _ in range(rounds):
    out["alone"].append(measure())
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        out["loaded"].append(measure())
    finally:
        spinner.kill(); spinner.wait()
print(json.dumps(out))
"""


def run_config(policy: str | None, threads: int | None, rounds: int, round_s: float) -> dict:
    """One fresh interpreter: tokens/s per round, alone and loaded."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    r = subprocess.run([sys.executable, "-c", CHILD, str(rounds), str(round_s), str(threads)],
                       env=env, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark child failed (policy={policy}, threads={threads}):\n{r.stderr}")
    return json.loads(r.stdout.splitlines()[-1])


def summarise(runs: dict[str, list[dict]]) -> list[dict]:
    """Medians over every round of every repeat; ratios against the first configuration alone."""
    rows = []
    for label, reps in runs.items():
        alone = [v for rep in reps for v in rep["alone"]]
        loaded = [v for rep in reps for v in rep["loaded"]]
        paired = [a / b for rep in reps for a, b in zip(rep["alone"], rep["loaded"], strict=True)]
        rows.append({"config": label, "threads": reps[0]["threads"],
                     "tokens_per_s_alone": round(statistics.median(alone)),
                     "tokens_per_s_loaded": round(statistics.median(loaded)),
                     "slowdown_when_loaded": round(statistics.median(paired), 2),
                     "slowdown_range": [round(min(paired), 2), round(max(paired), 2)]})
    anchor = rows[0]["tokens_per_s_alone"]
    for row in rows:
        row["alone_vs_anchor"] = round(row["tokens_per_s_alone"] / anchor, 2)
        row["loaded_vs_anchor"] = round(row["tokens_per_s_loaded"] / anchor, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="fresh interpreters per configuration")
    ap.add_argument("--rounds", type=int, default=1, help="alone/loaded round pairs per interpreter")
    ap.add_argument("--round-s", type=float, default=1.0, help="seconds per timed round")
    ap.add_argument("--json", type=Path, default=OUT_DIR / f"threads-{os.cpu_count()}cores.json")
    args = ap.parse_args(argv)

    load_before, t0 = os.getloadavg(), time.perf_counter()
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in CONFIGS}
    for rep in range(args.repeats):
        for label, policy, threads in CONFIGS:
            runs[label].append(run_config(policy, threads, args.rounds, args.round_s))
            print(f"repeat {rep + 1}/{args.repeats} {label}: {runs[label][-1]}", file=sys.stderr)
    rows = summarise(runs)
    record = {
        "benchmark": "bench_threads",
        "workload": "2x TransformerEncoderLayer d=256 h=4 ff=768, batch 8x256, fwd+bwd+AdamW, fp32",
        "competitor": "one pure-Python busy loop (python -c 'while True: pass')",
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                 "torch": __import__("importlib.metadata").metadata.version("torch")},
        "background_load": {"loadavg_1_5_15_before": [round(v, 2) for v in load_before],
                            "loadavg_1_5_15_after": [round(v, 2) for v in os.getloadavg()],
                            "note": "shared machine: other users' jobs ran during the measurement"},
        "repeats": args.repeats, "rounds": args.rounds, "round_s": args.round_s,
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "raw": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    for row in rows:
        print(f"{row['config']:<20} threads={row['threads']}  alone {row['tokens_per_s_alone']:>6} tok/s "
              f"({row['alone_vs_anchor']:.2f}x anchor)  loaded {row['tokens_per_s_loaded']:>6} tok/s "
              f"({row['loaded_vs_anchor']:.2f}x)  slowdown {row['slowdown_when_loaded']:.2f}x")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
