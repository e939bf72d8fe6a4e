"""Benchmark: SuperBPE (tokstudy.superbpe) at several transition points vs plain GPT-4-regex and Identity BPE.

All tokenizers are trained in this process on the same sample of the profile's train split (the
variant's mix, ``--train-mb``), at the same ``V``; GPT-4 32k is the anchor of the time ratios. Measured on
the test split (``metrics.max_docs`` per dataset, as the compression stage): NSL against the profile's
base (llama2, cached counts) per domain, the share of test tokens that cross a newline (a newline byte
with more bytes after it), the number of vocabulary tokens longer than 16 / 32 bytes, training seconds,
and for SuperBPE the token count training intended vs what the saved tokenizer gives.

    .venv/bin/python benchmarks/bench_superbpe.py --profile cpu --train-mb 16
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
from pathlib import Path

from tokstudy import bpe, corpus, metrics, params, paths, superbpe, tokenizer
from tokstudy.stages import inputs


def _profile(handle, ds, base, counts=None) -> dict:
    counts = counts or metrics.dataset_counts(handle, ds)
    per = {n: {"nsl": metrics.nsl(counts[n], base[n])} for n in ds}
    domains = {n: d for n, (d, _t) in ds.items()}
    agg = metrics.aggregate({n: {**v, **metrics.dataset_metrics(counts[n], base[n], handle.vocab_size)}
                             for n, v in per.items()}, domains)
    nbytes = {i: handle.token_bytes(i) for i in range(handle.vocab_size) if i not in handle.special_ids}
    crossing = {i for i, b in nbytes.items() if b"\n" in b.rstrip(b"\r\n")}
    out = {f"nsl_{k.split(':', 1)[1]}": v["nsl"] for k, v in agg.items() if k.startswith("mean:")}
    out["nsl_average"] = agg["average"]["nsl"]
    for dom in sorted(set(domains.values())):
        names = [n for n, d in domains.items() if d == dom]
        tot = sum(counts[n].tokens for n in names)
        cross = sum(counts[n].counter[i] for n in names for i in crossing)
        out[f"newline_crossing_share_{dom}"] = cross / tot
    out["vocab_tokens_over_16_bytes"] = sum(len(b) > 16 for b in nbytes.values())
    out["vocab_tokens_over_32_bytes"] = sum(len(b) > 32 for b in nbytes.values())
    out["vocab_newline_crossing"] = len(crossing)
    out["longest_token_bytes"] = max(len(b) for b in nbytes.values())
    return out


def _handle(tok, tmp: Path, name: str):
    return tokenizer.load(bpe.save(tok, tmp / name).parent)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help="corpus profile to read (its train/test splits must exist)")
    ap.add_argument("--variant", default="gpt4-32k", help="GPT-4 variant of params.yaml (regex, mix, specials)")
    ap.add_argument("--identity", default="identity-32k", help="identity variant of params.yaml (cap, chunking)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--train-mb", type=float, default=16.0)
    ap.add_argument("--transitions", default="0.5,0.8,0.9", help="t as fractions of V")
    ap.add_argument("--lines-at", type=float, default=0.8, help="also train boundaries=digits+lines at this t "
                                                                  "(0: skip)")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/superbpe.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    t_start = time.perf_counter()
    P = params.load(args.profile)
    budget = int(args.train_mb * 1e6)
    v = dataclasses.replace(P.tokenizer(args.variant), vocab_size=args.vocab, train_bytes=budget)
    vi = dataclasses.replace(P.tokenizer(args.identity), vocab_size=args.vocab, train_bytes=budget)
    train = corpus.read_split(inputs.corpus_file(P, "train.jsonl"))
    texts = corpus.sample_mix(train, P.mix(v.mix), budget, P.seed)
    del train
    test = inputs.corpus_file(P, "test.jsonl")
    ds = metrics.limit_docs(corpus.datasets(corpus.read_split(test)), P.metrics.max_docs)
    base = metrics.base_counts(tokenizer.load(P.metrics.base), ds, cache_dir=paths.data_dir(P.profile) / "metrics")
    plain_code = [t for n, (d, ts) in ds.items() if d == "code" for t in ts]
    plain_code = [t for t in plain_code if "<|" not in t and "<pad>" not in t]

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, var in ((f"gpt4-{args.vocab // 1000}k", v), (f"identity-{args.vocab // 1000}k", vi)):
            t0 = time.perf_counter()
            tok = bpe.train(texts, var, seed=P.seed)
            sec = time.perf_counter() - t0
            rows[name] = {"method": "bpe", "regex": var.regex, "train_seconds": sec,
                          **_profile(_handle(tok, tmp, name), ds, base)}
        points = [(float(f), "digits") for f in args.transitions.split(",")]
        if args.lines_at:
            points.append((args.lines_at, "digits+lines"))
        for frac, bound in points:
            t = int(round(frac * args.vocab))
            name = f"superbpe-{args.vocab // 1000}k-t{t // 100 / 10:g}k" + ("-lines" if bound != "digits" else "")
            t0 = time.perf_counter()
            run = superbpe.train_stages(texts, v, t, boundaries=bound, seed=P.seed)
            sec = time.perf_counter() - t0
            intended, actual = run.intended_tokens(plain_code), run.actual_tokens(plain_code)
            rows[name] = {"method": "superbpe", "regex": v.regex, "transition": t, "boundaries": bound,
                          "train_seconds": sec,
                          **{k: run.info[k] for k in ("stage1_seconds", "replay_seconds", "stage2_seconds",
                                                      "stage2_merges", "stage2_collisions", "stage2_words")},
                          "code_test_tokens_intended": intended, "code_test_tokens_saved": actual,
                          **_profile(_handle(run.tokenizer, tmp, name), ds, base)}
    anchor = rows[f"gpt4-{args.vocab // 1000}k"]["train_seconds"]
    for r in rows.values():
        r["time_ratio_vs_gpt4"] = r["train_seconds"] / anchor
    report = {
        "benchmark": "superbpe",
        "profile": args.profile,
        "vocab_size": args.vocab,
        "mix": v.mix,
        "train_bytes": sum(len(t.encode()) for t in texts),
        "train_texts_sha256": bpe.texts_sha256(texts),
        "test_docs_per_dataset": P.metrics.max_docs,
        "base": P.metrics.base,
        "rows": rows,
        "total_seconds": time.perf_counter() - t_start,
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    **{m: importlib.metadata.version(m) for m in ("tokenizers", "transformers")}},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    cols = ("nsl_code", "nsl_english", "nsl_multilingual", "newline_crossing_share_code",
            "vocab_tokens_over_16_bytes", "vocab_tokens_over_32_bytes", "train_seconds")
    print(f"SuperBPE benchmark: V={args.vocab} mix={v.mix} train={report['train_bytes'] / 1e6:.1f} MB "
          f"base={P.metrics.base}")
    print(f"{'tokenizer':28}" + "".join(f"{c[:14]:>15}" for c in cols))
    for name, r in rows.items():
        print(f"{name:28}" + "".join(f"{r.get(c, float('nan')):15.4g}" for c in cols))
    out = args.out or paths.ROOT / "benchmarks" / "results" / "superbpe.json"
    paths.atomic_write(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {out} ({report['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
