"""The ``tokstudy`` command line: one entry point, one verb per capability.

    tokstudy corpus    build the corpus of a profile
    tokstudy train     train a tokenizer (a params.yaml variant, or your own data)
    tokstudy compare   compare tokenizers on a folder / JSONL / profile split
    tokstudy overlap   vocabulary overlap between tokenizers (Jaccard heatmap)
    tokstudy sweep     derive a vocab-size sweep from one training run
    tokstudy transfer  swap the tokenizer of a causal LM (FVT and baselines)
    tokstudy finetune  pretrain / fine-tune (also under torchrun)
    tokstudy evaluate  bits/byte, HumanEval/MBPP pass@1, generation speed
    tokstudy export    write a tokenizer as a tiktoken rank file (+ pattern/specials JSON)

Every verb has ``--help``. Long work shows progress bars.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tokstudy.errors import TokstudyError

log = logging.getLogger("tokstudy")


class CliError(TokstudyError, ValueError):
    """A bad command-line argument: the message names the flag or argument and the fix."""


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")


def _docs_from(spec: str, a: argparse.Namespace):
    """Documents from a folder, a JSONL file, or `PROFILE:SPLIT` of a built corpus (`a`: the compare flags)."""
    from tokstudy import corpus, folders, params
    from tokstudy.stages import inputs

    path = Path(spec).expanduser()
    if path.exists():
        docs, report = folders.read_user_source(
            path, include=a.include, exclude=a.exclude, max_file_bytes=a.max_file_bytes,
            max_line_chars=a.max_line_chars, max_docs=a.max_docs)
        print(report.summary())
        return corpus.datasets(docs)  # max_docs already applied, in sha256(path) order
    elif ":" in spec:
        prof, split = spec.split(":", 1)
        try:
            docs = inputs.corpus_split(params.load(prof), split)
        except TokstudyError as exc:
            raise CliError(f"compare CORPUS {spec!r}: {exc}") from None
    else:
        raise CliError(f"compare CORPUS {spec!r} is neither a folder, a JSONL file nor PROFILE:SPLIT (e.g. cpu:test)")
    ds = corpus.datasets(docs)
    if a.max_docs:
        ds = {k: (dom, texts[:a.max_docs]) for k, (dom, texts) in ds.items()}
    return ds


def _tokenizers(specs) -> dict[str, tuple[str, object]]:
    """``{unique label: (path or reference name, handle)}``; a bad tokenizer is a one-line error naming it."""
    from tokstudy import tokenizer

    try:
        labels = tokenizer.unique_labels(specs)
    except tokenizer.TokenizerError as exc:
        raise CliError(f"TOKENIZERS: {exc}") from None
    return {label: (_where(spec), _load(spec)) for label, spec in zip(labels, specs, strict=True)}


def _load(spec: str, what: str = "TOKENIZERS"):
    from tokstudy import tokenizer

    try:
        return tokenizer.load(spec)
    except tokenizer.TokenizerError as exc:
        raise CliError(f"{what}: {exc}") from None


def _where(spec: str) -> str:
    p = Path(spec)
    return str(p.resolve()) if p.exists() else spec


def _legend(handles) -> str:
    return "\n".join(f"  {label} = {where}" for label, (where, _h) in handles.items())


def cmd_corpus(a: argparse.Namespace) -> int:
    from tokstudy import params, results, stages
    from tokstudy.stages import inputs

    P = params.load(a.profile)
    run = stages.build_corpus(P)
    manifest = inputs.corpus_manifest(P)
    print(f"corpus written: {sum(s['files'] for s in manifest['sources'].values())} files "
          f"({results.read_run(run)['extra']['sha256'][:12]}); run record {run}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from tokstudy import params, results, stages

    if not a.variant and not a.data:
        raise CliError("train: give --variant NAME (a tokenizer of params.yaml) or --data PATH (your own texts)")
    P = params.load(a.profile)
    custom = a.data or a.out or a.name or a.vocab_size or a.engine or a.regex is not None or a.regex_pattern is not None
    if not custom:  # a params.yaml variant as it is: the pipeline step (same files and run record as notebook 01)
        run = stages.train_tokenizer(P, a.variant)
        rows = {r["metric"]: r["value"] for r in results.read_run(run)["rows"]}
        print(f"tokenizer {a.variant} trained (vocab {rows['vocab_size']}); run record {run}")
        return 0
    out, vocab = _train_custom(P, a)
    print(f"tokenizer written to {out}/tokenizer.json (vocab {vocab})")
    return 0


def _train_custom(P, a: argparse.Namespace):
    """``train`` with --data or overrides: a library call, no pipeline run record."""
    import dataclasses

    from tokstudy import bpe, folders, paths, results
    from tokstudy.stages import inputs

    v = P.tokenizer(a.variant) if a.variant else next(iter(P.tokenizers.values()))
    if a.regex is not None or a.regex_pattern is not None:  # the CLI choice replaces the variant's
        v = dataclasses.replace(v, regex=a.regex, pattern=a.regex_pattern)
    v = dataclasses.replace(
        v,
        **({"name": a.name or Path(a.data).stem} if a.name or a.data else {}),
        **({"vocab_size": a.vocab_size} if a.vocab_size else {}),
        **({"engine": a.engine} if a.engine else {}),
    )
    bpe.check_variant(v)  # before reading any data: a bad regex name or size fails in a second
    if not a.out and (a.data or v.name not in P.tokenizers or v != P.tokenizer(v.name)):
        raise CliError(f"train: give --out DIR for a tokenizer that is not params.yaml's variant {v.name!r} as it is "
                       f"(data/{P.profile}/tokenizers/ holds only the pipeline's variants)")
    out = bpe.check_out_dir(a.out or paths.tokenizer_dir(P.profile, v.name))
    if a.data:
        # training needs no language labels: a JSONL record may leave its `language` out
        docs, report = folders.read_user_source(Path(a.data), language="auto" if Path(a.data).is_dir() else "text")
        print(report.summary())
        texts = [d.text for d in docs]
        source = {"data": str(Path(a.data).resolve())}
        if Path(a.data).is_file():
            source.update(data_sha256=results.sha256_file(a.data), data_sha256_of="the file")
    else:
        texts = inputs.train_texts(P, a.variant)
        source = {"data": f"corpus {P.profile}:train, mix {v.mix}, {v.train_bytes} bytes, seed {P.seed}"}
    info: dict = {}
    tok = bpe.train(texts, v, seed=P.seed, info=info)
    if "data_sha256" not in source:
        source.update(data_sha256=info["train_texts_sha256"], data_sha256_of="the training texts (texts_sha256)")
    bpe.save(tok, out, {"variant": v, "profile": P.profile, **info, **source})
    return out, tok.get_vocab_size()


def cmd_compare(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import metrics, plots

    handles = _tokenizers(a.tokenizers)  # before reading documents: a bad tokenizer fails fast
    base = _load(a.base, "--base")
    ds = _docs_from(a.corpus, a)
    base_counts = {name: metrics.token_counts(base, texts) for name, (_, texts) in ds.items()}
    rows = []
    for label, (where, handle) in handles.items():
        rows += metrics.compression_rows(handle, ds, base_counts, alpha=a.alpha,
                                         extra={"tokenizer": label, "path": where})
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
    print(f"\ntokenizers (the `path` column of compare.csv):\n{_legend(handles)}")
    plots.compare(df, out)
    print(f"\nwrote {out / 'compare.csv'} and {out / 'compare.png'} (NSL base: {a.base})")
    return 0


def cmd_overlap(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import metrics, plots

    handles = _tokenizers(a.tokenizers)
    df = pd.DataFrame(metrics.overlap_rows({label: h for label, (_w, h) in handles.items()}))
    where = {label: w for label, (w, _h) in handles.items()}
    df["path"], df["other_path"] = df["tokenizer"].map(where), df["other"].map(where)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "overlap.csv", index=False)
    plots.overlap_heatmap(df, out)
    print(df[df["metric"] == "vocab_jaccard"].pivot_table(index="tokenizer", columns="other", values="value"))
    print(f"tokenizers (the `path` columns of overlap.csv):\n{_legend(handles)}")
    print(f"wrote {out / 'overlap.csv'} and {out / 'vocab_overlap.png'}")
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from tokstudy import params, results, stages

    P = params.load(a.profile)
    out = stages.sweep(P, a.variant, compare=a.compare, sizes=a.sizes or None)
    for r in results.read_run(out)["rows"]:
        print({k: r[k] for k in r if k in ("vocab_size", "metric", "value")})
    print(f"wrote {out}")
    return 0


def cmd_transfer(a: argparse.Namespace) -> int:
    from tokstudy import transfer

    transfer.check_model_dir(a.base_model)  # the cheap checks first: a bad tokenizer fails before the weights load
    old = _load(a.old_tokenizer, "--old-tokenizer") if a.old_tokenizer else transfer.base_tokenizer(a.base_model)
    new = _load(a.new_tokenizer, "NEW_TOKENIZER")
    model = transfer.load_base(a.base_model)
    model, stats = transfer.swap_tokenizer(model, old, new, a.method, pad_to_multiple_of=a.pad_to_multiple_of)
    out = transfer.save_transferred(model, stats.tokenizer, a.out, stats)
    for row in stats.rows():
        print(f"{row['metric']:>28}  {row['value']}")
    print(f"wrote {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import lm, params, results
    from tokstudy.stages import evaluation

    P = params.load(a.profile)
    name = a.name or Path(a.model_dir).name
    if not lm.is_model_dir(a.model_dir):  # never a fallback model here, and no run record
        raise lm.EvaluateError(f"tokstudy evaluate {a.model_dir}: no model there (config.json missing); give MODEL_DIR "
                               f"a trained model directory, or {evaluation.train_hint(P, name)}")
    out = evaluation.evaluate(P, name, model_dir=a.model_dir, mbpp_path=a.mbpp, humaneval_limit=a.humaneval_limit,
                              device=a.device, sandbox=a.sandbox)
    df = pd.DataFrame(results.read_run(out)["rows"])
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(df[["metric", "dataset", "value"]].to_string(index=False))
    print(f"wrote {out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from tokstudy import tiktokenfile, tokenizer

    out, side = tiktokenfile.export(tokenizer.load(a.tokenizer), a.tiktoken)
    print(f"wrote {out} and {side} (tiktoken.Encoding(pat_str, mergeable_ranks, special_tokens) from them: "
          "tokstudy.tiktokenfile.encoding)")
    return 0


def _add_tokenizer_verbs(sub) -> None:
    """corpus, train, compare, overlap, sweep."""
    from tokstudy import pretok

    p = sub.add_parser("corpus", help="build the corpus of a profile from installed software")
    _profile_arg(p)
    p.set_defaults(fn=cmd_corpus)

    p = sub.add_parser("train", help="train a BPE tokenizer")
    _profile_arg(p)
    p.add_argument("--variant", help="a tokenizer variant of params.yaml (e.g. gpt4-m)")
    p.add_argument("--data", help="train on your own folder or JSONL file instead of the corpus")
    regex = p.add_mutually_exclusive_group()
    regex.add_argument("--regex", help="pre-tokenizer name: " + ", ".join(sorted(pretok.PRETOKENIZERS)))
    regex.add_argument("--regex-pattern", metavar="PATTERN", help="a raw pre-tokenization regex, recorded verbatim")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--engine", choices=["hf", "bpeasy"], help="training engine (default: the variant's)")
    p.add_argument("--name", help="name recorded in meta.json")
    p.add_argument("--out", help="output directory; needed with --data or any override (without: the pipeline "
                   "step, data/<profile>/tokenizers/<variant> and its run record)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("compare", help="bytes/token, NSL and Rényi efficiency per language")
    p.add_argument("corpus", help="a folder of code/text, a JSONL file ({'text':.., 'language':..}), or PROFILE:SPLIT")
    p.add_argument("tokenizers", nargs="+",
                   help="tokenizer.json files, reference names (gpt2 cl100k o200k llama2) or HF tokenizer dirs")
    p.add_argument("--base", default="llama2", help="NSL base tokenizer (default llama2, as the paper)")
    p.add_argument("--alpha", type=float, default=2.5, help="Rényi α (default 2.5)")
    p.add_argument("--max-docs", type=int, default=1000,
                   help="documents per language (default 1000), a sample in sha256(relative path) order")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="read only files matching this gitignore-style glob (repeatable); folders only")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files/folders matching this gitignore-style glob (repeatable); folders only")
    p.add_argument("--max-file-bytes", type=int, default=1_000_000, help="skip larger files (default 1000000)")
    p.add_argument("--max-line-chars", type=int, default=1_000,
                   help="skip files with a longer line: minified/generated (default 1000)")
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


def _add_model_verbs(sub) -> None:
    """transfer, evaluate, export (and the `finetune` pass-through)."""
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

    p = sub.add_parser("export", help="write a tokenizer in another format (tiktoken rank file + JSON)")
    p.add_argument("tokenizer", help="tokenizer.json, tokenizer folder, reference or tiktoken name")
    p.add_argument("--tiktoken", required=True, metavar="OUT.tiktoken",
                   help="rank file to write; OUT.json beside it gets the pattern and special tokens")
    p.set_defaults(fn=cmd_export)

    # `tokstudy finetune ...` is `python -m tokstudy.stages train ...` (see main())
    sub.add_parser("finetune", help="pretrain / fine-tune a params.yaml `models:` run (`tokstudy finetune --help`)",
                   add_help=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokstudy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="progress logs (INFO); quiet by default")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and DEBUG logs (also TOKSTUDY_DEBUG=1)")
    sub = parser.add_subparsers(dest="verb", required=True)

    _add_tokenizer_verbs(sub)
    _add_model_verbs(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb. A user-fixable error prints one line and returns 2 (``--debug``: the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TOKSTUDY_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        if argv[:1] == ["finetune"]:
            from tokstudy.stages.__main__ import main as stages_main

            return stages_main(["train", *argv[1:]])
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if debug else logging.INFO if args.verbose else logging.WARNING,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        return args.fn(args)
    except TokstudyError as exc:
        if debug:
            raise
        print(f"error: {str(exc).strip()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
