"""Measurement: which multilingual share of the training mix reproduces the authors' gpt_32k multilingual NSL.

Our training mixes carry no multilingual text, so our GPT-4-regex tokenizers split non-Latin text into
bytes (Russian NSL 3.1 vs 1.2 for the authors' released ``gpt_32k`` on the same test split). This trains
GPT-4-regex 32k tokenizers (the package's ``bpe.train``, HF engine, the variant's specials and token cap) on
the same byte budget of the profile's train split with multilingual shares 0, 2, 5, 10 % (code held at 70 %,
English the rest) and measures NSL against ``metrics.base`` on the test split (``metrics.max_docs`` per
dataset) with ``metrics.compression_rows``, beside the authors' tokenizer (``authors-gpt-32k``) measured the
same way. Not a speed benchmark: each training run's seconds are reported only to show the cost.

    .venv/bin/python benchmarks/bench_mix_multilingual.py --profile cpu --train-mb 8
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import platform
import tempfile
import time

from tokstudy import bpe, corpus, metrics, params, paths, tokenizer
from tokstudy.stages import inputs

SHARES = (0.0, 0.02, 0.05, 0.10)
LANGS = ("ru", "uk", "ja", "zh", "de", "pl")  # shown per language beside the domain means


def _nsl(rows) -> dict[str, float]:
    """``{mean:<domain>|average|<dataset>: nsl}`` of :func:`metrics.compression_rows` rows."""
    return {r["dataset"]: round(r["value"], 4) for r in rows if r["metric"] == "nsl"}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help="corpus profile to read")
    ap.add_argument("--variant", default="gpt4-256k", help="variant giving regex, specials, token cap, engine")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--train-mb", type=float, default=8.0, help="training text per run, MB")
    ap.add_argument("--code", type=float, default=0.7, help="code share, held fixed")
    ap.add_argument("--shares", type=float, nargs="+", default=list(SHARES), help="multilingual shares")
    ap.add_argument("--reference", default="authors-gpt-32k", help="the tokenizer to match")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/mix_multilingual.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    P = params.load(args.profile)
    v = dataclasses.replace(P.tokenizer(args.variant), vocab_size=args.vocab, train_bytes=int(args.train_mb * 1e6),
                            truncate_of=None)
    M = P.metrics
    train = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    test = metrics.limit_docs(corpus.datasets(corpus.read_split(inputs.corpus_file(P, "test.jsonl"))), M.max_docs)
    base = metrics.base_counts(tokenizer.load(M.base), test, cache_dir=paths.data_dir(P.profile) / "metrics")

    runs = {}
    ref = tokenizer.load(args.reference)
    runs[args.reference] = {"nsl": _nsl(metrics.compression_rows(ref, test, base, M.renyi_alpha))}
    for share in args.shares:
        mix = {"code": args.code, "english": round(1.0 - args.code - share, 6), "multilingual": share}
        texts = corpus.sample_mix(train, mix, v.train_bytes, P.seed)
        t0 = time.perf_counter()
        tok = bpe.train(texts, v, seed=P.seed, engine="hf")
        seconds = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="tokstudy-mix-") as tmp:
            h = tokenizer.load(bpe.save(tok, f"{tmp}/tok"))
            nsl = _nsl(metrics.compression_rows(h, test, base, M.renyi_alpha))
        runs[f"multilingual-{share:g}"] = {"mix": mix, "train_seconds": round(seconds, 1),
                                           "train_bytes": sum(len(t.encode()) for t in texts), "nsl": nsl}
        print(f"share {share:5.2f}: {seconds:5.1f} s  " + "  ".join(
            f"{k.removeprefix('mean:')} {nsl[k]:.3f}" for k in ("mean:code", "mean:english", "mean:multilingual")),
            flush=True)
    target = runs[args.reference]["nsl"]["mean:multilingual"]
    ours = {k: r["nsl"]["mean:multilingual"] for k, r in runs.items() if k != args.reference}
    closest = min(ours, key=lambda k: abs(ours[k] - target))
    out = {
        "what": __doc__.splitlines()[0],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "tokenizers": importlib.metadata.version("tokenizers")},
        "profile": P.profile, "regex": v.regex, "vocab_size": v.vocab_size, "train_bytes": v.train_bytes,
        "engine": "hf", "base": M.base, "max_docs": M.max_docs, "seed": P.seed,
        "reference": args.reference, "closest_multilingual": closest,
        "table": {k: {**{d: r["nsl"][f"mean:{d}"] for d in ("code", "english", "multilingual")},
                      "average": r["nsl"]["average"], **{lang: r["nsl"][lang] for lang in LANGS if lang in r["nsl"]}}
                  for k, r in runs.items()},
        "runs": runs,
    }
    path = args.out or paths.ROOT / "benchmarks" / "results" / "mix_multilingual.json"
    paths.atomic_write(path, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["table"], indent=1))
    return out


if __name__ == "__main__":
    main()
