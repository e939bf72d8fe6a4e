"""Benchmark: HF tokenizers BpeTrainer vs bpeasy vs rustbpe on the same texts.

Reports wall time, training bytes/s, each engine's time ratio to HF (HF is the anchor,
run in the same process) and bytes/token of each tokenizer on held-out text.

    .venv/bin/python benchmarks/bench_bpe_engines.py --profile smoke --vocab 2048 --train-mb 1
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import platform
import time

from tokstudy import bpe, corpus, params, paths
from tokstudy.stages import inputs


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke", help="corpus profile to read (built if smoke and missing)")
    ap.add_argument("--variant", default="gpt4-m", help="tokenizer variant of params.yaml (regex, mix)")
    ap.add_argument("--vocab", type=int, default=None, help="vocab size (default: the variant's)")
    ap.add_argument("--train-mb", type=float, default=None, help="training text size in MB (default: the variant's)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per engine; the best time is kept")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/bpe_engines-<profile>.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    P = params.load(args.profile)
    v = P.tokenizer(args.variant)
    v = dataclasses.replace(
        v,
        vocab_size=args.vocab or v.vocab_size,
        train_bytes=int(args.train_mb * 1e6) if args.train_mb else v.train_bytes,
    )
    train = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    texts = corpus.sample_mix(train, P.mix(v.mix), v.train_bytes, P.seed)
    held = [d.text for d in corpus.read_split(inputs.corpus_file(P, "validation.jsonl"))]
    n_bytes = sum(len(t.encode()) for t in texts)
    held_bytes = sum(len(t.encode()) for t in held)

    rows = {}
    for engine in bpe.ENGINES:  # hf first: the anchor
        best = None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            tok = bpe.train(texts, v, seed=P.seed, engine=engine)
            sec = time.perf_counter() - t0
            best = sec if best is None else min(best, sec)
        n_tok = sum(len(e.ids) for e in tok.encode_batch(held, add_special_tokens=False))
        rows[engine] = {
            "seconds": best,
            "train_bytes_per_s": n_bytes / best,
            "heldout_bytes_per_token": held_bytes / n_tok,
        }
    for r in rows.values():
        r["time_ratio_vs_hf"] = r["seconds"] / rows["hf"]["seconds"]
    report = {
        "benchmark": "bpe_engines",
        "profile": args.profile,
        "variant": v.name,
        "regex": v.regex,
        "vocab_size": v.vocab_size,
        "train_bytes": n_bytes,
        "heldout_bytes": held_bytes,
        "repeats": args.repeats,
        "engines": rows,
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    **{m: importlib.metadata.version(m) for m in ("tokenizers", "bpeasy", "rustbpe")}},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(f"BPE engines: {v.name} regex={v.regex} V={v.vocab_size} train={n_bytes / 1e6:.2f} MB "
          f"held-out={held_bytes / 1e6:.2f} MB")
    print(f"{'engine':8} {'seconds':>8} {'MB/s':>7} {'ratio/hf':>8} {'bytes/tok':>9}")
    for name, r in rows.items():
        print(f"{name:8} {r['seconds']:8.2f} {r['train_bytes_per_s'] / 1e6:7.2f} {r['time_ratio_vs_hf']:8.2f} "
              f"{r['heldout_bytes_per_token']:9.3f}")
    out = args.out or paths.ROOT / "benchmarks" / "results" / f"bpe_engines-{args.profile}.json"
    paths.atomic_write(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
