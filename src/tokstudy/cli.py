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
    tokstudy advise    should your code model switch tokenizer? one page of evidence

Every verb has ``--help`` and works with flags alone: inside a checkout its
``params.yaml`` supplies the defaults, elsewhere the copy shipped in the package.
Long work shows progress bars; logs are quiet unless ``-v`` (INFO) or ``--debug``.
compare, overlap and sweep print one table: ``--format table|json|csv|md|latex``
(anything but the table goes to stderr then), ``--baseline NAME`` adds relative-%
columns.

A user-fixable error is one line on stderr (``error: ...``, naming the file or flag
and the fix) and exit status 2; ``--debug`` or TOKSTUDY_DEBUG=1 shows the traceback.
Every flag is checked when it is parsed. Ctrl-C prints ``interrupted`` (status 130).
An output (``--out``, ``--tiktoken``) must be new, an empty folder, or an output that
tokstudy wrote before; ``--force`` writes into a folder beside your files, never over
them, and never into an input.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path

from tokstudy import choices, tables
from tokstudy.errors import CliError, TokstudyError

log = logging.getLogger("tokstudy")

#: the largest vocabulary size a flag takes (2**21 tokens; the BPE trainers abort far above it)
VOCAB_MAX = 2**21
#: the largest --pad-to-multiple-of (a larger one would only allocate empty embedding rows)
PAD_MAX = 2**16


# --------------------------------------------------------------------------- flag types: checked when parsed


def _fail(message: str, prog: str):
    """The CLI's usage error: one line, ``error: MESSAGE (see PROG --help)``, exit status 2."""
    sys.stderr.write(f"error: {' '.join(str(message).split())} (see {prog} --help)\n")
    sys.exit(2)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors (its subparsers' too) are one line on stderr and exit status 2."""

    def error(self, message):
        _fail(message, self.prog)

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        if extras:  # reported by the verb that was given them
            verb = getattr(ns, "verb", None)
            _fail(f"unrecognized arguments: {' '.join(extras)}", f"{self.prog} {verb}" if verb else self.prog)
        return ns


def _one_line_errors(parser: argparse.ArgumentParser, prog: str) -> argparse.ArgumentParser:
    """``parser`` (and its subparsers) reporting errors as :class:`_Parser` does, as ``prog``."""
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        p.error = lambda message: _fail(message, prog)
        parsers += [sub for a in p._actions if isinstance(a, argparse._SubParsersAction) for sub in a.choices.values()]
    return parser


def int_range(low: int, high: int | None = None):
    """An argparse ``type``: a whole number in ``[low, high]`` (no upper bound: ``high=None``)."""
    bounds = f">= {low}" if high is None else f"from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {value}")
        return value

    return parse


count = int_range(1)
vocab_size = int_range(256, VOCAB_MAX)


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (Rényi α)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def extension(text: str) -> tuple[str, str]:
    """An argparse ``type``: ``.EXT=LANGUAGE`` (``compare --ext``) as ``(".ext", "language")``."""
    from tokstudy import folders

    try:
        return folders.parse_extension(text)
    except folders.CorpusError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def device(text: str) -> str:
    """An argparse ``type``: ``auto``, ``cpu``, or ``cuda`` / ``cuda:N`` when this machine has that GPU."""
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if text in ("auto", "cpu"):
        return text
    if m is None:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda or cuda:N (auto: cuda if available)")
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        raise argparse.ArgumentTypeError(f"{text}: torch sees no CUDA GPU on this machine; use --device cpu")
    if m.group(1) is not None and int(m.group(1)) >= n:
        raise argparse.ArgumentTypeError(f"{text}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    return text


def _force_arg(p: argparse.ArgumentParser, what: str, also: str = "") -> None:
    p.add_argument("--force", action="store_true",
                   help=f"write {what} into a --out folder that holds other files too (they are kept, never "
                        f"replaced){also}")


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")


def _format_args(p: argparse.ArgumentParser, baseline: str) -> None:
    p.add_argument("--format", default="table", choices=tables.FORMATS,
                   help="how the result table is printed (default: table); json/csv/md/latex print only the table "
                        "on stdout, the rest goes to stderr")
    p.add_argument("--baseline", metavar="NAME", help=f"add relative-%% columns against {baseline}")


def _info(a: argparse.Namespace):
    """Where the lines around the table go: stdout for the human table, stderr when stdout is a format to parse."""
    return sys.stdout if getattr(a, "format", "table") == "table" else sys.stderr


def snake_case(key) -> str:
    """A column name as a JSON key: ``"nsl vs gpt4-m %"`` -> ``"nsl_vs_gpt4_m_pct"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(key).replace("%", "pct").lower()).strip("_")


def _json_document(frame, metadata: dict) -> str:
    """``{"metadata": ..., "rows": [...]}``: the table's records with snake_case keys (``--format json``)."""
    import json

    flat = tables.render(frame, "json")
    keys = [snake_case(c) for c in [*(n for n in frame.index.names if n is not None), *frame.columns]]
    if len(set(keys)) < len(keys):
        clash = sorted({k for k in keys if keys.count(k) > 1})
        raise CliError(f"--format json: columns give the same key {clash[0]!r}; give the tokenizers labels that "
                       "differ in more than punctuation")
    rows = [{snake_case(k): v for k, v in r.items()} for r in json.loads(flat)]
    return json.dumps({"metadata": metadata, "rows": rows}, indent=2, ensure_ascii=False) + "\n"


def _print_table(frame, a: argparse.Namespace, columns, title: str = "", metadata: dict | None = None) -> None:
    """The result table in ``--format`` on stdout; with ``metadata``, JSON is one object: ``metadata`` and
    ``rows`` with snake_case keys."""
    if a.baseline:
        frame = tables.with_baseline(frame, a.baseline, columns, level="tokenizer"
                                     if "tokenizer" in frame.index.names and frame.index.nlevels > 1 else None)
    if title:
        print(title, file=_info(a))
    if metadata is not None and a.format == "json":
        sys.stdout.write(_json_document(frame, metadata))
    else:
        sys.stdout.write(tables.render(frame, a.format))


def _docs_from(spec: str, a: argparse.Namespace):
    """Documents from a folder, a JSONL file, or `PROFILE:SPLIT` of a built corpus (`a`: the compare flags)."""
    from tokstudy import commands as tools

    ds, report = tools.read_docs(spec, include=a.include, exclude=a.exclude, max_file_bytes=a.max_file_bytes,
                                 max_line_chars=a.max_line_chars, max_docs=a.max_docs, extensions=dict(a.ext))
    if report is not None:
        print(report.summary(), file=_info(a))
    return ds


def _legend(handles) -> str:
    return "\n".join(f"  {label} = {where}" for label, (where, _h) in handles.items())


def cmd_corpus(a: argparse.Namespace) -> int:
    import json

    from tokstudy import params, results
    from tokstudy.stages import corpus, inputs

    P = params.load(a.profile)
    run = corpus.build_corpus(P)
    manifest = json.loads(inputs.corpus_file(P, "manifest.json").read_text(encoding="utf-8"))
    print(f"corpus written: {sum(s['files'] for s in manifest['sources'].values())} files "
          f"({results.read_run(run)['extra']['sha256'][:12]}); run record {run}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools
    from tokstudy import params, results
    from tokstudy.stages import tokenizers

    if not a.variant and not a.data:
        raise CliError("train: give --variant NAME (a tokenizer of params.yaml) or --data PATH (your own texts)")
    P = params.load(a.profile)
    custom = (a.data or a.out or a.name or a.vocab_size is not None or a.engine or a.regex is not None
              or a.regex_pattern is not None)
    if not custom:  # a params.yaml variant as it is: the pipeline step (same files and run record as notebook 01)
        run = tokenizers.train_tokenizer(P, a.variant)
        rows = {r["metric"]: r["value"] for r in results.read_run(run)["rows"]}
        print(f"tokenizer {a.variant} trained (vocab {rows['vocab_size']}); run record {run}")
        return 0
    out, vocab, report = tools.train_custom(P, variant=a.variant, data=a.data, regex=a.regex,
                                            regex_pattern=a.regex_pattern, vocab_size=a.vocab_size, engine=a.engine,
                                            name=a.name, out=a.out, force=a.force)
    if report is not None:
        print(report.summary())
    print(f"tokenizer written to {out}/tokenizer.json (vocab {vocab})")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools

    inputs = [*a.tokenizers, a.base]  # never written into; --out may lie in the CORPUS folder (the default does)
    tools.check_out("compare", a.out, force=a.force, inputs=inputs)  # before any work
    handles = tools.load_tokenizers(a.tokenizers)  # before reading documents: a bad tokenizer fails fast
    if a.baseline:
        tables.check_baseline(a.baseline, handles)
    # a base that is also compared is loaded and encoded once
    base = next((label for label, spec in zip(handles, a.tokenizers, strict=True)
                 if tools.same_tokenizer(a.base, spec)), None) or tools.load_tokenizer(a.base, "--base")
    ds = _docs_from(a.corpus, a)
    for warning in tools.training_overlap(handles, a.corpus):
        print(warning, file=sys.stderr)
    result = tools.compare(handles, base, ds, base_name=a.base, alpha=a.alpha, out=a.out, force=a.force,
                           inputs=inputs, corpus=tools.where(a.corpus), min_bytes=a.min_bytes, min_docs=a.min_docs,
                           figure=not a.no_figure)
    _print_table(tools.compare_table(result.rows), a, tools.COMPARE_METRICS, metadata=result.metadata,
                 title="per dataset and tokenizer: files, bytes, tokens, bytes per token (higher = better "
                       f"compression), NSL vs {a.base} (lower = fewer tokens), Rényi efficiency (alpha={a.alpha}); "
                       "mean:<domain> and average = macro means over datasets (the paper's), pooled:<domain> and "
                       "pooled:all = all tokens over all bytes (byte-weighted); in_means = counted in the means:")
    info = _info(a)
    for note in result.notes:
        print(note, file=info)
    print(f"\ntokenizers (the `path` column of compare.csv):\n{_legend(handles)}", file=info)
    out = Path(a.out)
    figure = "" if a.no_figure else f" and {out / 'compare.png'}"
    print(f"wrote {out / 'compare.csv'}{figure} (NSL base: {a.base})", file=info)
    return 0


def cmd_overlap(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools

    tools.check_out("overlap", a.out, force=a.force, inputs=a.tokenizers)  # before any work
    handles = tools.load_tokenizers(a.tokenizers)
    if a.baseline:
        tables.check_baseline(a.baseline, handles)
    df = tools.overlap(handles, a.out, force=a.force, inputs=a.tokenizers)
    _print_table(tools.overlap_table(df), a, ["vocab_distinct", "token_length_mean"],
                 title="distinct tokens, mean token length (bytes), Jaccard overlap of token byte strings:",
                 metadata=tools.overlap_metadata(handles))
    info = _info(a)
    print(f"tokenizers (the `path` columns of overlap.csv):\n{_legend(handles)}", file=info)
    print(f"wrote {Path(a.out) / 'overlap.csv'} and {Path(a.out) / 'vocab_overlap.png'}", file=info)
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools
    from tokstudy import params, results
    from tokstudy.stages import vocab

    P = params.load(a.profile)
    minimum = 256 + len(P.tokenizer(a.variant).special_tokens)
    small = [v for v in (*(a.sizes or ()), *(a.compare or ())) if v < minimum]
    if small:
        raise CliError(f"sweep: size {small[0]} is too small for variant {a.variant!r}: at least {minimum} (256 byte "
                       f"symbols + {minimum - 256} special tokens); raise --sizes / --compare")
    if a.baseline:
        tables.check_baseline(a.baseline, a.sizes or P.vocab_sizes.values())
    compare = False if a.compare is None else (a.compare or True)  # --compare alone: every size
    out = vocab.sweep(P, a.variant, compare=compare, sizes=a.sizes or None)
    table = tools.sweep_table(results.read_run(out)["rows"])
    _print_table(table, a, [c for c in table.columns if table[c].notna().all()],
                 title=f"vocab-size sweep of {a.variant} from one training run:")
    print(f"wrote {out}", file=_info(a))
    return 0


def cmd_transfer(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools

    focus = tools.focus_aux(a.method, a.aux_text, profile=a.profile, dim=a.aux_dim, epochs=a.aux_epochs,
                            min_count=a.aux_min_count, seed=a.seed)
    out, rows = tools.transfer_model(a.base_model, a.new_tokenizer, out=a.out, old_tokenizer=a.old_tokenizer,
                                     method=a.method, pad_to_multiple_of=a.pad_to_multiple_of, force=a.force,
                                     focus=focus)
    for row in rows:
        print(f"{row['metric']:>28}  {row['value']}")
    print(f"wrote {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import pandas as pd

    from tokstudy import commands as tools
    from tokstudy import params, results

    P = params.load(a.profile)
    out = tools.evaluate_model_dir(P, a.model_dir, name=a.name, mbpp_path=a.mbpp, humaneval_limit=a.humaneval_limit,
                                   device=a.device, sandbox=a.sandbox)
    df = pd.DataFrame(results.read_run(out)["rows"])
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(df[["metric", "dataset", "value"]].to_string(index=False))
    print(f"wrote {out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from tokstudy import commands as tools

    out, side = tools.export_tiktoken(a.tokenizer, a.tiktoken)
    print(f"wrote {out} and {side} (tiktoken.Encoding(pat_str, mergeable_ranks, special_tokens) from them: "
          "tokstudy.tiktokenfile.encoding)")
    return 0


def cmd_advise(a: argparse.Namespace) -> int:
    from tokstudy import advise, params

    specs = [a.current, *(a.candidate or ())]
    advise.check_inputs(a.folder, a.out, force=a.force, specs=specs)  # the cheap checks before any loading
    shape = advise.parse_shape(a.model_shape)
    P = params.load(a.profile)
    settings = advise.Settings(sizes=tuple(a.sizes), train_bytes=a.train_bytes, n_boot=a.n_boot,
                               confidence=a.confidence, long_token_bytes=a.long_token_bytes, max_docs=a.max_docs,
                               reference_docs=a.reference_docs, min_docs=a.min_docs, min_bytes=a.min_bytes)
    page = advise.advise(P, a.folder, a.current, a.candidate or [], shape, out=a.out, force=a.force,
                         settings=settings)
    print("\n".join(advise.summary(page)))
    return 0


def _add_advise_verb(sub) -> None:
    p = sub.add_parser("advise", help="should your code model switch tokenizer? one page: compression, costs at "
                       "your model shape, transfer plan, risks")
    _profile_arg(p)
    p.add_argument("folder", help="the folder of code your model works on")
    p.add_argument("--current", required=True, help="your model's tokenizer: tokenizer.json, reference name or HF dir")
    p.add_argument("--candidate", action="append", metavar="TOKENIZER",
                   help="a tokenizer to consider (repeatable); none: GPT-4-regex candidates are trained on half of "
                        "FOLDER's files (--sizes) and all are scored on the other half")
    p.add_argument("--model-shape", required=True, metavar="CONFIG_OR_SPEC",
                   help="your model's Hugging Face config.json, or params=N,layers=L,d_model=D[,heads=H,kv_heads=K,"
                        "d_ff=F,context=C,tied=true|false,mlp=gated|plain] (e.g. params=7b,layers=32,d_model=4096)")
    p.add_argument("--sizes", type=vocab_size, nargs="+", default=[16_000, 32_000, 64_000],
                   help="vocabulary sizes of the trained candidates (default 16000 32000 64000)")
    p.add_argument("--train-bytes", type=count, default=20_000_000,
                   help="at most this many bytes of FOLDER to train candidates on (default 20000000)")
    p.add_argument("--n-boot", type=count, default=1000, help="bootstrap resamples over files (default 1000)")
    p.add_argument("--confidence", type=_fraction, default=0.95, help="interval confidence, 0 < c < 1 (default 0.95)")
    p.add_argument("--long-token-bytes", type=count, default=16,
                   help="flag tokens longer than this many bytes (default 16)")
    p.add_argument("--max-docs", type=count, default=1000,
                   help="files per language (default 1000), a sample in sha256(relative path) order")
    p.add_argument("--reference-docs", type=count, default=40,
                   help="documents per English/multilingual test set (default 40)")
    p.add_argument("--min-docs", type=int_range(0), default=3,
                   help="a language with fewer files is shown but left out of the code means (default 3, as compare)")
    p.add_argument("--min-bytes", type=int_range(0), default=2000,
                   help="a language with fewer bytes is shown but left out of the code means (default 2000)")
    p.add_argument("--out", default="tokstudy-advise",
                   help="output folder for the page: new, empty or an earlier advise output")
    _force_arg(p, "the page")
    p.set_defaults(fn=cmd_advise)


def _fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def _add_tokenizer_verbs(sub) -> None:
    """corpus, train, compare, overlap, sweep."""
    p = sub.add_parser("corpus", help="build the corpus of a profile from installed software")
    _profile_arg(p)
    p.set_defaults(fn=cmd_corpus)

    p = sub.add_parser("train", help="train a BPE tokenizer")
    _profile_arg(p)
    p.add_argument("--variant", help="a tokenizer variant of params.yaml (e.g. gpt4-m)")
    p.add_argument("--data", help="train on your own folder or JSONL file instead of the corpus")
    regex = p.add_mutually_exclusive_group()
    regex.add_argument("--regex", help="pre-tokenizer name: " + ", ".join(sorted(choices.REGEXES)))
    regex.add_argument("--regex-pattern", metavar="PATTERN", help="a raw pre-tokenization regex, recorded verbatim")
    p.add_argument("--vocab-size", type=vocab_size, help=f"vocabulary size, 256 + the specials to {VOCAB_MAX}")
    p.add_argument("--engine", choices=choices.ENGINES, help="training engine (default: the variant's)")
    p.add_argument("--name", help="name recorded in meta.json")
    p.add_argument("--out", help="output directory: new, empty or a tokenizer folder of ours; needed with --data "
                   "or any override (without: the pipeline step, data/<profile>/tokenizers/<variant> and its run "
                   "record)")
    _force_arg(p, "the tokenizer files")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("compare", help="bytes/token, NSL and Rényi efficiency per language")
    p.add_argument("corpus", help="a folder of code/text, a JSONL file ({'text':.., 'language':..}), or PROFILE:SPLIT")
    p.add_argument("tokenizers", nargs="+",
                   help="tokenizer.json files, reference names (gpt2 cl100k o200k llama2) or HF tokenizer dirs")
    p.add_argument("--base", default="llama2", help="NSL base tokenizer (default llama2, as the paper)")
    p.add_argument("--alpha", type=positive_float, default=2.5, help="Rényi α, finite and > 0 (default 2.5)")
    p.add_argument("--max-docs", type=count, default=1000,
                   help="documents per language (default 1000), a sample in sha256(relative path) order")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="read only files matching this gitignore-style glob (repeatable); folders only")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files/folders matching this gitignore-style glob (repeatable); folders only")
    p.add_argument("--max-file-bytes", type=count, default=1_000_000, help="skip larger files (default 1000000)")
    p.add_argument("--max-line-chars", type=count, default=1_000,
                   help="skip files with a longer line: minified/generated (default 1000)")
    p.add_argument("--ext", action="append", default=[], type=extension, metavar=".EXT=LANG",
                   help="read files ending in .EXT as language LANG (repeatable; adds to or overrides the built-in "
                        "table, e.g. --ext .tpl=html)")
    p.add_argument("--min-bytes", type=int_range(0), default=2000,
                   help="a dataset (language) with fewer bytes is shown but left out of the means (default 2000)")
    p.add_argument("--min-docs", type=int_range(0), default=3,
                   help="a dataset (language) with fewer files is shown but left out of the means (default 3)")
    p.add_argument("--no-figure", action="store_true", help="write compare.csv only, no figure (faster)")
    p.add_argument("--out", default="tokstudy-compare",
                   help="output folder for CSV and figure: new, empty or an earlier compare output")
    _force_arg(p, "compare.csv and the figure")
    _format_args(p, "the tokenizer NAME (its label: the file stem or reference name) on the same dataset")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("overlap", help="vocabulary overlap (Jaccard) between tokenizers")
    p.add_argument("tokenizers", nargs="+", help="two or more tokenizers (as for compare)")
    p.add_argument("--out", default="tokstudy-overlap",
                   help="output folder for CSV and heatmap: new, empty or an earlier overlap output")
    _force_arg(p, "overlap.csv and the heatmap")
    _format_args(p, "the tokenizer NAME (vocabulary size, mean token length)")
    p.set_defaults(fn=cmd_overlap)

    p = sub.add_parser("sweep", help="vocab-size sweep by truncating one training run's merges")
    _profile_arg(p)
    p.add_argument("--variant", default="gpt4-l", help="the largest variant to train once")
    p.add_argument("--sizes", type=vocab_size, nargs="*",
                   help="train once at the largest of these sizes (default: the variant's run and its truncations)")
    p.add_argument("--compare", type=vocab_size, nargs="*", metavar="SIZE",
                   help="also train these sizes (none given: every size) on their own and check the truncation")
    _format_args(p, "the vocab size NAME")
    p.set_defaults(fn=cmd_sweep)


def _add_model_verbs(sub) -> None:
    """transfer, evaluate, export (and the `finetune` pass-through)."""
    p = sub.add_parser("transfer", help="swap the tokenizer of a causal LM")
    p.add_argument("base_model", help="a local HF model directory")
    p.add_argument("new_tokenizer", help="tokenizer.json, reference name or HF tokenizer dir")
    p.add_argument("--old-tokenizer", help="default: the base model directory's tokenizer")
    p.add_argument("--method", default="fvt", choices=choices.TRANSFER_METHODS)
    p.add_argument("--pad-to-multiple-of", type=int_range(1, PAD_MAX), default=None,
                   help="pad the embedding rows to a multiple of N (1 to 65536)")
    p.add_argument("--out", required=True, help="output model directory: new, empty or an earlier transfer output; "
                   "never the base model")
    p.add_argument("--aux-text", action="append", metavar="FILE",
                   help="focus: a UTF-8 text file in the new tokenizer's domain that FOCUS's auxiliary fastText "
                        "embeddings train on (repeatable, one text each; required by --method focus)")
    p.add_argument("--aux-dim", type=int_range(1, 1024), default=None,
                   help="focus: auxiliary embedding size (default: params.yaml transfer.focus.dim)")
    p.add_argument("--aux-epochs", type=int_range(1, 1000), default=None,
                   help="focus: fastText epochs (default: params.yaml transfer.focus.epochs)")
    p.add_argument("--aux-min-count", type=int_range(1), default=None,
                   help="focus: a token seen fewer times gets no auxiliary vector (default: transfer.focus.min_count)")
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=None,
                   help="focus: seed of the auxiliary embeddings (default: params.yaml seed)")
    _profile_arg(p)
    _force_arg(p, "the model", "; take an --old-tokenizer whose vocabulary differs from the model's own")
    p.set_defaults(fn=cmd_transfer)

    p = sub.add_parser("evaluate", help="bits/byte, HumanEval (and MBPP) pass@1, generation speed of a model dir")
    _profile_arg(p)
    p.add_argument("model_dir", help="a local HF causal-LM directory with its tokenizer")
    p.add_argument("--name", help="run name in the results (default: the folder name)")
    p.add_argument("--mbpp", help="path to an MBPP JSONL file (task_id, text, code, test_list)")
    p.add_argument("--humaneval-limit", type=count, help="first N HumanEval problems (default: the profile's)")
    p.add_argument("--device", type=device, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--sandbox", choices=choices.SANDBOX_BACKENDS,
                   help="where generated code runs (default: evaluate.sandbox, bwrap); guard = no OS isolation")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("export", help="write a tokenizer in another format (tiktoken rank file + JSON)")
    p.add_argument("tokenizer", help="tokenizer.json, tokenizer folder, reference or tiktoken name")
    p.add_argument("--tiktoken", required=True, metavar="OUT.tiktoken",
                   help="rank file to write; OUT.json beside it gets the pattern and special tokens (both new, "
                        "or an earlier export: a file of yours is never replaced)")
    p.set_defaults(fn=cmd_export)

    # `tokstudy finetune ...` is `python -m tokstudy.stages train ...` (see main())
    sub.add_parser("finetune", help="pretrain / fine-tune a params.yaml `models:` run (`tokstudy finetune --help`)",
                   add_help=False)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tokstudy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="progress logs (INFO); quiet by default")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and DEBUG logs (also TOKSTUDY_DEBUG=1)")
    sub = parser.add_subparsers(dest="verb", required=True)

    _add_tokenizer_verbs(sub)
    _add_model_verbs(sub)
    _add_advise_verb(sub)
    for verb in sub.choices.values():  # `tokstudy compare ... -v` as well as `tokstudy -v compare ...`
        verb.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="progress logs (INFO); quiet by default")
    return parser


def _run(args: argparse.Namespace, debug: bool) -> int:
    """``args.fn(args)`` with logs at WARNING (INFO with -v, DEBUG with --debug) written above the progress bars."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    level = logging.DEBUG if debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not debug:  # matplotlib's and PIL's INFO lines (font cache, backends) are noise even with -v
        for name in ("matplotlib", "PIL"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    with logging_redirect_tqdm():
        return args.fn(args)


def main(argv: list[str] | None = None) -> int:
    """Run one verb. A user-fixable error prints one line and returns 2 (``--debug``: the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TOKSTUDY_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        if argv[:1] == ["finetune"]:
            from tokstudy.stages.__main__ import build_parser as stages_parser
            from tokstudy.stages.__main__ import main as stages_main

            _one_line_errors(stages_parser(), "tokstudy finetune").parse_args(["train", *argv[1:]])
            return stages_main(["train", *argv[1:]])
        return _run(build_parser().parse_args(argv), debug)
    except TokstudyError as exc:
        if debug:
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # partial outputs are gone already (atomic writes, paths.output_dir)
        if debug:
            import traceback

            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
