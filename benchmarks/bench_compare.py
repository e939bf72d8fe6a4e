"""`tokstudy compare` wall time as a ratio to raw tiktoken on the same texts, in one process.

    python benchmarks/bench_compare.py [FOLDER] [--max-docs N] [--rounds R] [--before] [--out FILE]

The anchor is ``tiktoken``'s ``encode_ordinary_batch`` of cl100k over exactly the texts compare reads (the same
``commands.read_docs`` sample, already in memory). The measured run is the whole verb, in this process:
``cli.main(["compare", FOLDER, "cl100k", "--base", "cl100k", "--no-figure", ...])``: reading the folder, loading
the tokenizer, counting, the metrics and compare.csv. The target (issue 20) is a ratio <= 1.7. Rounds alternate
anchor and compare; the ratio of the medians is reported, and of the fastest rounds (``ratio_best``, what the test
checks: on a machine busy with other work the medians drift, 1.16-1.3 idle and 1.85 once inside the test suite).
``--before`` measures a checkout whose compare has no ``--no-figure`` (it draws the figure, as that code always
did): run it with ``PYTHONPATH=<old>/src``.
FOLDER defaults to the ``pandas`` package of this Python (~1,500 .py files).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    import pandas

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(Path(pandas.__file__).parent))
    ap.add_argument("--max-docs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", action="store_true", help="the code under test has no --no-figure")
    ap.add_argument("--out", help="append the result as JSON to this file's list")
    a = ap.parse_args(argv)

    from tokstudy import cli, commands, reference

    ds, _report = commands.read_docs(a.folder, max_docs=a.max_docs)
    texts = [t for _dom, ts in ds.values() for t in ts if t]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    enc = reference.tiktoken_encoding(reference.fetch("cl100k"), "cl100k_base")
    enc.encode_ordinary_batch(texts[:50])  # warm the encoding's regex and threads once

    def anchor() -> float:
        t = time.perf_counter()
        enc.encode_ordinary_batch(texts)
        return time.perf_counter() - t

    def verb() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["compare", a.folder, "cl100k", "--base", "cl100k", "--max-docs", str(a.max_docs),
                    "--out", str(Path(tmp) / "o"), "--format", "csv", *([] if a.before else ["--no-figure"])]
            t = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                rc = cli.main(argv)
            took = time.perf_counter() - t
        if rc != 0:
            raise SystemExit(f"compare exited {rc}")
        return took

    anchors, verbs = [], []
    for _ in range(a.rounds):
        anchors.append(anchor())
        verbs.append(verb())
    result = {
        "code": "before" if a.before else "after",
        "folder": a.folder, "max_docs": a.max_docs, "documents": len(texts), "bytes": nbytes,
        "cpus": os.cpu_count(), "rounds": a.rounds,
        "anchor_seconds": [round(x, 3) for x in anchors], "compare_seconds": [round(x, 3) for x in verbs],
        "ratio": round(statistics.median(verbs) / statistics.median(anchors), 2),
        "ratio_best": round(min(verbs) / min(anchors), 2),  # fastest round of each: least disturbed by other load
        "torch_imported": "torch" in sys.modules,
    }
    print(json.dumps(result, indent=1))
    if a.out:
        path = Path(a.out)
        runs = json.loads(path.read_text()) if path.is_file() else []
        path.write_text(json.dumps([*runs, result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
