"""What else could make the cpu profile's training faster on this machine: bf16, torch.compile, parallel replicates.

The cpu profile's training is compute-bound (about 0.4 s per 2048-token step of the 4.9M-parameter
model on 2 cores; ``benchmarks/bench_train.py``). This benchmark measures the three remaining levers
against the pipeline's own path, each in a fresh interpreter (thread and kernel variables are read
when torch loads), as training throughput (tokens/s) relative to the anchor:

* ``fp32 (pipeline)``: the anchor, what every cpu run does: fp32 eager, kernels pinned to AVX2
  (:mod:`tokstudy.threads`), torch's default thread count;
* ``bf16 autocast``: the same with ``torch.autocast("cpu", bfloat16)``, kernels pinned;
* ``bf16 autocast, unpinned``: bf16 with torch's own kernel dispatch (AVX-512 / AVX512-BF16 where
  the CPU has them); its bytes would then depend on the CPU, which the AVX2 pin exists to prevent;
* ``torch.compile``: inductor on CPU (the vector width set as :func:`tokstudy.distributed.wrap`
  does), steady-state steps; the compile time is reported apart (as warm-up: with inductor's on-disk cache
  warm it is seconds, a cold first compile of this model took ~18 s here);
* ``N x 1 thread``: N single-thread processes at once, as a process pool would train N replicates
  side by side; throughput is the sum over the N processes.

Settings alternate over ``--rounds``, so a busy neighbour hits all of them alike; the median per
setting is reported.  Ratios compare across machines; seconds do not.

    python benchmarks/bench_cpu_paths.py            # ~4 min on 2 cores
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

from bench_kernel_pin import PIN, UNPINNED  # the kernel variables, and the values that give torch's own dispatch

OUT = Path(__file__).resolve().parent / "results" / "cpu_paths.json"
PINNED: dict[str, str] = {}  # tokstudy.threads sets the AVX2 pin when the variables are absent
BATCH, SEQ, VOCAB = 16, 128, 8192  # the cpu profile's step: train.batch_size x train.seq_len, V = 8192 (gpt4-m)

CHILD = r"""
import json, sys, time
import tokstudy  # noqa: F401  (thread and kernel policy first, as every entry point does)
import torch
from tokstudy import params
from tokstudy.model import build_model
precision, compiled = sys.argv[1], sys.argv[2] == "1"
threads, steps, vocab, batch, seq = (int(a) for a in sys.argv[3:8])
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_model(params.load("cpu").train("pretrain").size, vocab, seed=0, max_seq_len=256)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randint(6, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))
fwd = model
if compiled:
    from tokstudy.distributed import _inductor_widest_isa
    _inductor_widest_isa()
    fwd = torch.compile(model)
def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = fwd(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
t = time.perf_counter()
step()
step()
warm = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"step_s": (time.perf_counter() - t) / steps, "warmup_s": warm,
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""

# (label, precision, compile, pinned, processes); processes > 1: that many 1-thread processes at once
SETTINGS = [
    ("fp32 (pipeline)", "fp32", False, True, 1),  # the anchor first
    ("bf16 autocast", "bf16", False, True, 1),
    ("bf16 autocast, unpinned", "bf16", False, False, 1),
    ("torch.compile", "fp32", True, True, 1),
    ("2 x 1 thread", "fp32", False, True, 2),
    ("3 x 1 thread", "fp32", False, True, 3),
]


def measure(precision: str, compiled: bool, pinned: bool, processes: int, steps: int) -> dict:
    """Tokens/s of one setting (summed over its processes) and its warm-up seconds (max over them)."""
    env = {k: v for k, v in os.environ.items() if k not in PIN} | (PINNED if pinned else UNPINNED)
    threads = "1" if processes > 1 else "0"
    cmd = [sys.executable, "-c", CHILD, precision, "1" if compiled else "0", threads,
           *(str(n) for n in (steps, VOCAB, BATCH, SEQ))]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    outs = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"bench_cpu_paths: a {precision} child failed (exit {p.returncode})")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return {"tokens_per_s": sum(BATCH * SEQ / o["step_s"] for o in outs),
            "warmup_s": max(o["warmup_s"] for o in outs), "capability": outs[0]["capability"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json", type=Path, default=OUT)
    a = ap.parse_args(argv)
    got: dict[str, list[dict]] = {label: [] for label, *_ in SETTINGS}
    start = time.perf_counter()
    for r in range(a.rounds):
        for label, precision, compiled, pinned, processes in SETTINGS:
            # bf16 on the AVX2 pin is ~16x slower: a few steps say so
            steps = max(2, a.steps // 5) if (precision, pinned) == ("bf16", True) else a.steps
            got[label].append(measure(precision, compiled, pinned, processes, steps))
        print(f"round {r + 1}/{a.rounds} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    anchor = statistics.median(m["tokens_per_s"] for m in got[SETTINGS[0][0]])
    report = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "rounds": a.rounds, "steps": a.steps, "step_tokens": BATCH * SEQ, "vocab": VOCAB, "settings": {}}
    for label, runs in got.items():
        tps = statistics.median(m["tokens_per_s"] for m in runs)
        warm = statistics.median(m["warmup_s"] for m in runs)
        report["settings"][label] = {"tokens_per_s": tps, "ratio_to_anchor": tps / anchor, "warmup_s": warm,
                                     "capability": runs[0]["capability"]}
        print(f"{label:26s} {runs[0]['capability']:7s} {tps:8.0f} tok/s  x{tps / anchor:.2f}  warm-up {warm:.1f} s")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
