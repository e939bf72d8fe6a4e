"""The ``tokstudy`` command line: one entry point, one verb per capability.

    tokstudy corpus    build the corpus of a profile
    tokstudy train     train a tokenizer (a params.yaml variant, or your own data)
    tokstudy compare   compare tokenizers on a folder / JSONL / profile split
    tokstudy overlap   vocabulary overlap between tokenizers (Jaccard heatmap)
    tokstudy sweep     derive a vocab-size sweep from one training run
    tokstudy transfer  swap the tokenizer of a causal LM (FVT and baselines)
    tokstudy finetune  pretrain / fine-tune (also under torchrun)
    tokstudy evaluate  bits/byte, HumanEval/MBPP pass@1, generation speed

Every verb has ``--help``. Long work shows progress bars.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("tokstudy")


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")


def _docs_from(spec: str, profile: str | None, max_docs: int | None):
    """Documents from a folder, a JSONL file, or `PROFILE:SPLIT` of a built corpus."""
    from tokstudy import corpus

    path = Path(spec).expanduser()
    if path.exists():
        docs = corpus.read_user_source(path, language="auto", domain="auto")
    elif ":" in spec:
        prof, split = spec.split(":", 1)
        docs = corpus.load(prof, split)
    else:
        raise SystemExit(f"error: {spec!r} is neither a folder, a JSONL file nor PROFILE:SPLIT (e.g. cpu:test)")
    ds = corpus.datasets(docs)
    if max_docs:
        ds = {k: (dom, texts[:max_docs]) for k, (dom, texts) in ds.items()}
    return ds


def _label(spec: str) -> str:
    """A short name for a tokenizer spec: the folder of a tokenizer.json, else the spec."""
    p = Path(spec)
    return p.parent.name if p.name == "tokenizer.json" else p.name if p.exists() else spec


def cmd_corpus(a: argparse.Namespace) -> int:
    from tokstudy import corpus, params

    manifest = corpus.build(params.load(a.profile))
    print(f"corpus written: {sum(s['files'] for s in manifest['sources'].values())} files")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from tokstudy import bpe, corpus, params, paths

    P = params.load(a.profile)
    if a.data:
        import dataclasses

        v = dataclasses.replace(
            P.tokenizer(a.variant) if a.variant else next(iter(P.tokenizers.values())),
            name=a.name or Path(a.data).stem,
            **({"regex": a.regex} if a.regex else {}),
            **({"vocab_size": a.vocab_size} if a.vocab_size else {}),
            **({"engine": a.engine} if a.engine else {}),
        )
        texts = [d.text for d in corpus.read_user_source(Path(a.data), language="auto", domain="auto")]
    else:
        if not a.variant:
            raise SystemExit("error: give --variant NAME (from params.yaml) or --data PATH")
        v = P.tokenizer(a.variant)
        texts = corpus.sample_mix(corpus.load_or_build(P, "train"), P.mix(v.mix), v.train_bytes, P.seed)
    t0 = time.perf_counter()
    tok = bpe.train(texts, v, seed=P.seed, engine=a.engine)
    out = Path(a.out) if a.out else paths.tokenizer_dir(P.profile, v.name)
    bpe.save(tok, out, {"variant": v.name, "train_seconds": time.perf_counter() - t0})
    print(f"tokenizer written to {out}/tokenizer.json (vocab {tok.get_vocab_size()})")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import bpe, metrics, plots

    ds = _docs_from(a.corpus, a.profile, a.max_docs)
    base = bpe.load(a.base)
    base_counts = {name: metrics.token_counts(base, texts) for name, (_, texts) in ds.items()}
    rows = []
    for spec in a.tokenizers:
        handle = bpe.load(spec)
        rows += metrics.compression_rows(handle, ds, base_counts, alpha=a.alpha)
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "compare.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.3f}".format):
        for metric, label in (("bytes_per_token", "bytes per token (higher = better compression)"),
                              ("nsl", f"NSL vs {a.base} (lower = fewer tokens)"),
                              ("renyi_efficiency", f"Rényi efficiency, alpha={a.alpha}")):
            table = df[df["metric"] == metric].pivot_table(index="dataset", columns="tokenizer", values="value",
                                                           aggfunc="first", sort=False)
            print(f"\n{label}\n{table}")
    plots.compare(df, out)
    print(f"\nwrote {out / 'compare.csv'} and {out / 'compare.png'} (NSL base: {a.base})")
    return 0


def cmd_overlap(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import bpe, metrics, plots

    handles = {_label(s): bpe.load(s) for s in a.tokenizers}
    df = pd.DataFrame(metrics.overlap_rows(handles))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "overlap.csv", index=False)
    plots.overlap_heatmap(df, out)
    print(df[df["metric"] == "vocab_jaccard"].pivot_table(index="tokenizer", columns="other", values="value"))
    print(f"wrote {out / 'overlap.csv'} and {out / 'vocab_overlap.png'}")
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from tokstudy import bpe, corpus, params, paths, results

    P = params.load(a.profile)
    v = P.tokenizer(a.variant)
    sizes = sorted(a.sizes or P.vocab_sizes.values())
    texts = corpus.sample_mix(corpus.load_or_build(P, "train"), P.mix(v.mix), v.train_bytes, P.seed)
    rows = bpe.sweep_from_one_run(texts, v, sizes, seed=P.seed, compare=a.compare)
    out = results.write_run(P.profile, "sweep", v.name, rows, params=v, seed=P.seed)
    for r in rows:
        print({k: r[k] for k in r if k in ("vocab_size", "metric", "value")})
    print(f"wrote {out}")
    return 0


def cmd_transfer(a: argparse.Namespace) -> int:
    from tokstudy import bpe, transfer

    model = transfer.load_base(a.base_model)
    old = bpe.load(a.old_tokenizer or a.base_model)
    new = bpe.load(a.new_tokenizer)
    model, stats = transfer.swap_tokenizer(model, old, new, a.method, pad_to_multiple_of=a.pad_to_multiple_of)
    out = transfer.save_transferred(model, stats.tokenizer, a.out, stats)
    for row in stats.rows():
        print(f"{row['metric']:>28}  {row['value']}")
    print(f"wrote {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import evaluate, params, results

    P = params.load(a.profile)
    name = a.name or Path(a.model_dir).name
    rows = evaluate.evaluate_run(P.profile, name, model_dir=a.model_dir, mbpp_path=a.mbpp,
                                 humaneval_limit=a.humaneval_limit, params=P, device=a.device,
                                 sandbox_backend=a.sandbox)
    used = {r["sandbox"] for r in rows if "sandbox" in r}
    out = results.write_run(P.profile, "evaluate", name, rows, params={"model_dir": a.model_dir, "sandbox": sorted(used)},
                            seed=P.seed,
                            inputs=[a.model_dir])
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(df[["metric", "dataset", "value"]].to_string(index=False))
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokstudy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("corpus", help="build the corpus of a profile from installed software")
    _profile_arg(p)
    p.set_defaults(fn=cmd_corpus)

    p = sub.add_parser("train", help="train a BPE tokenizer")
    _profile_arg(p)
    p.add_argument("--variant", help="a tokenizer variant of params.yaml (e.g. gpt4-m)")
    p.add_argument("--data", help="train on your own folder or JSONL file instead of the corpus")
    p.add_argument("--regex", help="pre-tokenization regex name (gpt2, gpt4, punct, identity, llama) or pattern")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--engine", choices=["hf", "bpeasy"], help="training engine (default: the variant's)")
    p.add_argument("--name", help="name recorded in meta.json")
    p.add_argument("--out", help="output directory (default data/<profile>/tokenizers/<variant>)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("compare", help="bytes/token, NSL and Rényi efficiency per language")
    _profile_arg(p)
    p.add_argument("corpus", help="a folder of your code/text, a JSONL file ({'text':...}), or PROFILE:SPLIT")
    p.add_argument("tokenizers", nargs="+",
                   help="tokenizer.json files, reference names (gpt2 cl100k o200k llama2) or HF tokenizer dirs")
    p.add_argument("--base", default="llama2", help="NSL base tokenizer (default llama2, as the paper)")
    p.add_argument("--alpha", type=float, default=2.5, help="Rényi α (default 2.5)")
    p.add_argument("--max-docs", type=int, default=1000, help="documents per language (default 1000)")
    p.add_argument("--out", default="tokstudy-compare", help="output folder for CSV and figure")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("overlap", help="vocabulary overlap (Jaccard) between tokenizers")
    p.add_argument("tokenizers", nargs="+")
    p.add_argument("--out", default="tokstudy-overlap")
    p.set_defaults(fn=cmd_overlap)

    p = sub.add_parser("sweep", help="vocab-size sweep by truncating one training run's merges")
    _profile_arg(p)
    p.add_argument("--variant", default="gpt4-l", help="the largest variant to train once")
    p.add_argument("--sizes", type=int, nargs="*", help="vocab sizes (default: the profile's ladder)")
    p.add_argument("--compare", action="store_true", help="also train each size separately and compare")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("transfer", help="swap the tokenizer of a causal LM")
    p.add_argument("base_model", help="a local HF model directory")
    p.add_argument("new_tokenizer", help="tokenizer.json, reference name or HF tokenizer dir")
    p.add_argument("--old-tokenizer", help="default: the base model directory's tokenizer")
    p.add_argument("--method", default="fvt", choices=["fvt", "random", "mean", "merged"])
    p.add_argument("--pad-to-multiple-of", type=int, default=None)
    p.add_argument("--out", required=True, help="output model directory")
    p.set_defaults(fn=cmd_transfer)

    p = sub.add_parser("evaluate", help="bits/byte, HumanEval (and MBPP) pass@1, generation speed of a model dir")
    _profile_arg(p)
    p.add_argument("model_dir", help="a local HF causal-LM directory with its tokenizer")
    p.add_argument("--name", help="run name in the results (default: the folder name)")
    p.add_argument("--mbpp", help="path to an MBPP JSONL file (task_id, text, code, test_list)")
    p.add_argument("--humaneval-limit", type=int, help="first N HumanEval problems (default: the profile's)")
    p.add_argument("--device", help="cpu / cuda (default: cuda if available)")
    p.add_argument("--sandbox", choices=["bwrap", "guard"],
                   help="where generated code runs (default: evaluate.sandbox, bwrap); guard = no OS isolation")
    p.set_defaults(fn=cmd_evaluate)

    # `tokstudy finetune ...` is `python -m tokstudy.finetune ...` (see main())
    sub.add_parser("finetune", help="pretrain / fine-tune a params.yaml `models:` run (`tokstudy finetune --help`)",
                   add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["finetune"]:
        from tokstudy import finetune

        return finetune.main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
