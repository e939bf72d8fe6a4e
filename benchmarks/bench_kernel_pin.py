"""Cost of pinning torch's CPU kernel path to AVX2 (tokstudy.threads), and whether it changes the bytes.

Each setting runs in a fresh interpreter (the variables are read when torch and MKL/oneDNN load): the
cpu-profile model (``train.sizes.cpu`` of params.yaml, V = 8192) takes ``--steps`` AdamW steps on fixed
random tokens, timed after one warm-up step. Reported per setting: median step seconds over rounds
(settings alternate, so a busy neighbour hits both alike), the ratio against the anchor (torch's own
dispatch, no variable set) and a sha256 of the final weights, which tells whether two settings give
the same bytes on this machine.

    python benchmarks/bench_kernel_pin.py                 # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

PIN = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# "default": torch's, MKL's and oneDNN's own dispatch. The variables must be set, since `import tokstudy`
# pins every one that is absent; ATen's "" means its widest level (its "default" is the scalar one)
UNPINNED = {"ATEN_CPU_CAPABILITY": "", "MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "ALL"}
SETTINGS = [("default", UNPINNED), ("avx2", PIN)]  # the anchor first
OUT = Path(__file__).resolve().parent / "results" / "kernel_pin.json"

CHILD = r"""
import hashlib, json, sys, time
import tokstudy  # noqa: F401  (thread policy first, as every entry point does)
import torch
from tokstudy import params
from tokstudy.model import build_model
steps = int(sys.argv[1])
P = params.load("cpu")
torch.manual_seed(0)
model = build_model(P.train("pretrain").size, 8192, seed=0, max_seq_len=256)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randint(0, 8192, (16, 128), generator=torch.Generator().manual_seed(0))
def step():
    opt.zero_grad(set_to_none=True)
    model(input_ids=x, labels=x).loss.backward()
    opt.step()
step()
t = time.perf_counter()
for _ in range(steps):
    step()
dt = (time.perf_counter() - t) / steps
h = hashlib.sha256()
for p in model.parameters():
    h.update(p.detach().numpy().tobytes())
print(json.dumps({"step_s": dt, "weights_sha256": h.hexdigest(),
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def run(env_extra: dict, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PIN} | env_extra
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--json", type=Path, default=OUT)
    a = ap.parse_args(argv)
    got: dict[str, list[dict]] = {name: [] for name, _ in SETTINGS}
    for _ in range(a.rounds):
        for name, env in SETTINGS:
            got[name].append(run(env, a.steps))
    anchor = statistics.median(r["step_s"] for r in got["default"])
    report = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "steps": a.steps, "rounds": a.rounds, "pin": PIN, "settings": {}}
    for name, runs in got.items():
        med = statistics.median(r["step_s"] for r in runs)
        report["settings"][name] = {"median_step_s": med, "ratio_to_default": med / anchor,
                                    "capability": runs[0]["capability"],
                                    "weights_sha256": sorted({r["weights_sha256"] for r in runs})}
        print(f"{name:8s} {runs[0]['capability']:8s} step {med:.3f} s  x{med / anchor:.3f}  "
              f"weights {' '.join(s[:12] for s in report['settings'][name]['weights_sha256'])}")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
