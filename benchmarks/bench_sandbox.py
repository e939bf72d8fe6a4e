"""Benchmark: throughput of judging HumanEval's canonical solutions, bubblewrap vs the old guard.

Three ways, round-robin in one process (the same load hits them alike), each
keeping its best round:

* ``bwrap``: :func:`tokstudy.sandbox.judge` with the default backend (OS sandbox, trusted tests);
* ``guard``: the same judge, backend ``guard`` (no OS isolation);
* ``old_guard``: as before the sandbox module: the whole program (prompt + completion
  + tests + ``check(entry_point)``) run in one guarded process (``sandbox.run_program``,
  backend ``guard``), its asserts inside the untrusted process.

Reports problems/s and the ratio of each to ``old_guard`` (the anchor).

    .venv/bin/python benchmarks/bench_sandbox.py --limit 164 --workers 2 --rounds 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tokstudy import passk, paths, sandbox
from tokstudy.problems import humaneval_problems


def _old_guard(problems, workers: int, limits: sandbox.Limits) -> list[bool]:
    programs = [f"{p.prompt}{p.reference}\n\n{p.tests}\ncheck({p.entry_point})\n" for p in problems]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [v.passed for v in pool.map(lambda prog: sandbox.run_program(prog, limits, backend="guard"), programs)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=164, help="first N HumanEval problems (default all 164)")
    ap.add_argument("--workers", type=int, default=2, help="sandboxes at a time (default 2)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per method; the best is kept")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/sandbox.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    problems = humaneval_problems(args.limit)
    limits = sandbox.Limits(timeout_s=10.0)
    tasks, refs = [passk.task(p) for p in problems], [p.reference for p in problems]
    methods = {
        "old_guard": lambda: _old_guard(problems, args.workers, limits),
        "guard": lambda: [v.passed for v in sandbox.judge_all(tasks, refs, limits, backend="guard",
                                                             workers=args.workers)],
        "bwrap": lambda: [v.passed for v in sandbox.judge_all(tasks, refs, limits, backend="bwrap",
                                                             workers=args.workers)],
    }
    best: dict[str, float] = {}
    passed: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, run in methods.items():
            t0 = time.perf_counter()
            ok = run()
            sec = time.perf_counter() - t0
            best[name] = min(sec, best.get(name, sec))
            passed[name] = sum(ok)
    rows = {name: {"seconds": sec, "problems_per_s": len(problems) / sec, "passed": passed[name],
                   "time_ratio_vs_old_guard": sec / best["old_guard"]}
            for name, sec in best.items()}
    bwrap_version = subprocess.run([sandbox.tool_path("bwrap"), "--version"], capture_output=True, text=True,
                                   check=True).stdout.strip()
    report = {
        "benchmark": "sandbox",
        "problems": len(problems),
        "workers": args.workers,
        "rounds": args.rounds,
        "methods": rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "bwrap": bwrap_version,
                    "kernel": platform.release()},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(f"HumanEval canonical solutions: {len(problems)} problems, {args.workers} workers, best of {args.rounds}")
    print(f"{'method':10} {'seconds':>8} {'problems/s':>10} {'ratio':>6} {'passed':>6}")
    for name, r in rows.items():
        print(f"{name:10} {r['seconds']:8.2f} {r['problems_per_s']:10.1f} {r['time_ratio_vs_old_guard']:6.2f} "
              f"{r['passed']:6d}")
    out = args.out or paths.ROOT / "benchmarks" / "results" / "sandbox.json"
    paths.atomic_write(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
