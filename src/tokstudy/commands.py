"""The ``tokstudy`` verbs that work on the user's own files: compare, overlap, custom training, transfer, export.

Unlike the pipeline steps (:mod:`tokstudy.stages`), these take paths and names
given on the command line and write where they are told (no run record); the
CLI parses flags, calls one of these and prints what it returns
(:mod:`tokstudy.tables`). Errors name the CLI argument at fault.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from tokstudy import metrics, results
from tokstudy.errors import TokstudyError, ToolError
from tokstudy.params import Params

#: the compression metrics ``compare`` tabulates, in table order
COMPARE_METRICS = ("bytes_per_token", "nsl", "renyi_efficiency")
_CHUNK = 64  # documents encoded per batch between progress-bar updates
#: the files compare / overlap write into --out (and paths.MARKER)
COMPARE_FILES = ("compare.csv", "compare.png", "compare.pdf")
OVERLAP_FILES = ("overlap.csv", "vocab_overlap.png", "vocab_overlap.pdf")


def _tokenizer_files(folder: Path) -> set[str] | None:
    """The files of a tokenizer folder that ``bpe.save`` wrote, if its meta.json is one of ours (else None)."""
    import json

    from tokstudy import bpe

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(meta, dict) and {"tokenizer_sha256", "tokstudy_version"} <= meta.keys()):
        return None
    return set(bpe.TOKENIZER_FILES)


def _out_rule(verb: str) -> dict:
    """How ``verb``'s output folder is recognised as ours (``paths.output_dir``'s owned/record/writes)."""
    if verb == "train":
        from tokstudy import bpe

        return {"owned": _tokenizer_files, "record": "meta.json", "writes": bpe.TOKENIZER_FILES}
    if verb == "transfer":
        from tokstudy import transfer

        return {"owned": transfer.output_files, "record": "transfer.json",
                "writes": ("config.json", "generation_config.json", "model.safetensors", "transfer.json",
                           "tokenizer.json", "tokenizer_config.json")}
    return {"writes": {"compare": COMPARE_FILES, "overlap": OVERLAP_FILES}[verb]}


def check_out(verb: str, out: str | os.PathLike, *, force: bool = False, inputs=()) -> Path:
    """The output rule for ``tokstudy VERB --out OUT`` (``paths.check_output``), to call before any work."""
    from tokstudy import paths

    rule = {k: v for k, v in _out_rule(verb).items() if k != "record"}
    return paths.check_output(out, force=force, inputs=inputs, **rule)


def output_dir(verb: str, out: str | os.PathLike, *, force: bool = False, inputs=()):
    """``paths.output_dir`` with ``verb``'s rule: the staging folder to write ``tokstudy VERB --out OUT`` into."""
    from tokstudy import paths

    return paths.output_dir(out, force=force, inputs=inputs, **_out_rule(verb))


def where(spec: str | os.PathLike) -> str:
    """An existing path as an absolute path, anything else (a reference name) as given."""
    p = Path(spec)
    return str(p.resolve()) if p.exists() else str(spec)


def load_tokenizer(spec: str | os.PathLike, what: str = "TOKENIZERS"):
    """``tokenizer.load(spec)``; a bad one is a one-line error naming the argument ``what``."""
    from tokstudy import tokenizer

    try:
        return tokenizer.load(spec)
    except tokenizer.TokenizerError as exc:
        raise ToolError(f"{what}: {exc}") from None


def load_tokenizers(specs) -> dict[str, tuple[str, Any]]:
    """``{unique label: (path or reference name, handle)}``; a bad tokenizer is a one-line error naming it."""
    from tokstudy import tokenizer

    try:
        labels = tokenizer.unique_labels(specs)
    except tokenizer.TokenizerError as exc:
        raise ToolError(f"TOKENIZERS: {exc}") from None
    return {label: (where(spec), load_tokenizer(spec)) for label, spec in zip(labels, specs, strict=True)}


def read_docs(spec: str, *, include=(), exclude=(), max_file_bytes: int = 1_000_000, max_line_chars: int = 1_000,
              max_docs: int | None = 1000):
    """``(datasets, report)`` of a folder, a JSONL file, or ``PROFILE:SPLIT`` of a built corpus (report: None).

    A folder or file is sampled by ``folders.read_user_source`` (``max_docs`` per
    language, in sha256(path) order); a split keeps its first ``max_docs`` per dataset.
    """
    from tokstudy import corpus, folders, params

    path = Path(spec).expanduser()
    if path.exists():
        docs, report = folders.read_user_source(
            path, include=include, exclude=exclude, max_file_bytes=max_file_bytes,
            max_line_chars=max_line_chars, max_docs=max_docs)
        return corpus.datasets(docs), report
    if ":" not in spec:
        raise ToolError(f"compare CORPUS {spec!r} is neither a folder, a JSONL file nor PROFILE:SPLIT (e.g. cpu:test)")
    prof, split = spec.split(":", 1)
    try:
        from tokstudy.stages import inputs

        if split not in corpus.SPLITS:
            raise ToolError(f"unknown split {split!r}; use one of {corpus.SPLITS}")
        docs = corpus.read_split(inputs.corpus_file(params.load(prof), f"{split}.jsonl"))
    except TokstudyError as exc:
        raise ToolError(f"compare CORPUS {spec!r}: {exc}") from None
    ds = corpus.datasets(docs)
    if max_docs:
        ds = {k: (dom, texts[:max_docs]) for k, (dom, texts) in ds.items()}
    return ds, None


def counts(handle, datasets: metrics.Datasets, desc: str) -> dict[str, metrics.Counts]:
    """``metrics.dataset_counts`` with one progress bar over all files (documents) of all datasets."""
    out: dict[str, metrics.Counts] = {}
    with tqdm(total=sum(len(texts) for _dom, texts in datasets.values()), desc=desc, unit="file") as bar:
        for name, (_domain, texts) in sorted(datasets.items()):
            total = metrics.Counts()
            for i in range(0, len(texts), _CHUNK):
                part = metrics.token_counts(handle, texts[i:i + _CHUNK])
                total.tokens, total.bytes = total.tokens + part.tokens, total.bytes + part.bytes
                total.chars, total.docs = total.chars + part.chars, total.docs + part.docs
                total.counter.update(part.counter)
                bar.update(len(texts[i:i + _CHUNK]))
            if total.docs == 0:
                raise metrics.MetricsError(f"dataset {name!r} has no non-empty text; drop it or give other files")
            out[name] = total
    return out


def compare(handles: dict[str, tuple[str, Any]], base, datasets: metrics.Datasets, *, base_name: str, alpha: float,
            out: str | os.PathLike, force: bool = False, inputs=()) -> pd.DataFrame:
    """Compression rows of every tokenizer (NSL against ``base``); writes ``compare.csv`` and the figure to ``out``.

    ``out`` follows the output rule (:func:`check_out`; ``inputs``: the paths read, never written into).
    """
    from tokstudy import paths, plots

    with output_dir("compare", out, force=force, inputs=inputs) as stage:
        base_counts = counts(base, datasets, f"count base {base_name}")
        rows: list[dict] = []
        for label, (path, handle) in handles.items():
            rows += metrics.compression_rows(handle, datasets, base_counts, alpha=alpha,
                                             counts=counts(handle, datasets, f"encode {label}"),
                                             extra={"tokenizer": label, "path": path, "base": base_name})
        df = pd.DataFrame(rows)
        stage.mkdir()
        df.to_csv(stage / "compare.csv", index=False)
        plots.compare(df, stage)
        paths.write_marker(stage, "compare")
    return df


def compare_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, tokenizer), one column per compression metric, datasets in the rows' order."""
    sel = df[df["metric"].isin(COMPARE_METRICS)]
    table = sel.pivot_table(index=["dataset", "tokenizer"], columns="metric", values="value", aggfunc="first",
                            sort=False)
    table.columns.name = None
    return table[[m for m in COMPARE_METRICS if m in table.columns]]


def overlap(handles: dict[str, tuple[str, Any]], out: str | os.PathLike, force: bool = False,
            inputs=()) -> pd.DataFrame:
    """Pairwise vocabulary-overlap rows (with both paths); writes ``overlap.csv`` and the heatmap to ``out``
    (the output rule: :func:`check_out`)."""
    from tokstudy import paths, plots

    if len(handles) < 2:
        raise ToolError("overlap TOKENIZERS: give at least two tokenizers")
    with output_dir("overlap", out, force=force, inputs=inputs) as stage:
        df = pd.DataFrame(metrics.overlap_rows({label: h for label, (_w, h) in handles.items()}))
        paths_of = {label: w for label, (w, _h) in handles.items()}
        df["path"], df["other_path"] = df["tokenizer"].map(paths_of), df["other"].map(paths_of)
        stage.mkdir()
        df.to_csv(stage / "overlap.csv", index=False)
        plots.overlap_heatmap(df, stage)
        paths.write_marker(stage, "overlap")
    return df


def overlap_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per tokenizer: distinct tokens, mean token length (bytes), and its Jaccard with every tokenizer (self: 1)."""
    per = df[df["metric"].isin(["vocab_distinct", "token_length_mean"])].pivot_table(
        index="tokenizer", columns="metric", values="value", aggfunc="first", sort=False)
    names = list(per.index)
    jac = df[df["metric"] == "vocab_jaccard"]
    grid = pd.DataFrame(1.0, index=pd.Index(names, name="tokenizer"), columns=[f"jaccard {n}" for n in names])
    for a, b, v in zip(jac["tokenizer"], jac["other"], jac["value"], strict=True):
        grid.loc[a, f"jaccard {b}"] = grid.loc[b, f"jaccard {a}"] = v
    per.columns.name = None
    per["vocab_distinct"] = per["vocab_distinct"].astype(int)
    return pd.concat([per[["vocab_distinct", "token_length_mean"]], grid], axis=1)


def sweep_table(rows: list[dict]) -> pd.DataFrame:
    """A sweep run record's rows as one row per vocab size, one column per metric.

    The one-run totals (``train_seconds_one_run``, ``time_saved_seconds``, ``speedup``) belong to
    the largest size only: the other rows hold no value there (empty, not zero).
    """
    df = pd.DataFrame(rows)
    table = df.pivot_table(index="vocab_size", columns="metric", values="value", aggfunc="first", sort=True)
    table.columns.name = None
    return table


def train_custom(P: Params, *, variant: str | None = None, data: str | None = None, regex: str | None = None,
                 regex_pattern: str | None = None, vocab_size: int | None = None, engine: str | None = None,
                 name: str | None = None, out: str | None = None, force: bool = False):
    """``tokstudy train`` with ``--data`` or overrides: train and save a tokenizer, no pipeline run record.

    Returns ``(out_dir, vocab_size, report)`` (``report``: the data folder/file summary, or None). The
    output folder follows the output rule (:func:`check_out`), checked before any data is read.
    """
    from tokstudy import bpe, folders, paths, pretok

    v = P.tokenizer(variant) if variant else next(iter(P.tokenizers.values()))
    if regex is not None or regex_pattern is not None:  # the CLI choice replaces the variant's
        pretok.resolve(regex=regex, pattern=regex_pattern)  # a bad name: one line naming the known ones
        v = dataclasses.replace(v, regex=regex, pattern=regex_pattern)
    minimum = 256 + len(v.special_tokens or ())
    if vocab_size is not None and vocab_size < minimum:
        raise ToolError(f"--vocab-size {vocab_size} is too small: variant {v.name!r} needs at least {minimum} "
                        f"(256 byte symbols + {minimum - 256} special tokens)")
    v = dataclasses.replace(
        v,
        **({"name": name or Path(data).stem} if name or data else {}),
        **({"vocab_size": vocab_size} if vocab_size is not None else {}),
        **({"engine": engine} if engine else {}),
    )
    bpe.check_variant(v)  # before reading any data: a bad regex name or size fails in a second
    if not out and (data or v.name not in P.tokenizers or v != P.tokenizer(v.name)):
        raise ToolError(f"train: give --out DIR for a tokenizer that is not params.yaml's variant {v.name!r} as it is "
                        f"(data/{P.profile}/tokenizers/ holds only the pipeline's variants)")
    out_dir = Path(out or paths.tokenizer_dir(P.profile, v.name))
    report = None
    with output_dir("train", out_dir, force=force) as stage:
        if data:
            # training needs no language labels: a JSONL record may leave its `language` out
            docs, report = folders.read_user_source(Path(data), language="auto" if Path(data).is_dir() else "text")
            texts = [d.text for d in docs]
            source = {"data": str(Path(data).resolve())}
            if Path(data).is_file():
                source.update(data_sha256=results.sha256_file(data), data_sha256_of="the file")
        else:
            from tokstudy.stages import tokenizers

            texts = tokenizers.train_texts(P, P.tokenizer(variant))
            source = {"data": f"corpus {P.profile}:train, mix {v.mix}, {v.train_bytes} bytes, seed {P.seed}"}
        info: dict = {}
        tok = bpe.train(texts, v, seed=P.seed, info=info)
        if "data_sha256" not in source:
            source.update(data_sha256=info["train_texts_sha256"], data_sha256_of="the training texts (texts_sha256)")
        bpe.save(tok, stage, {"variant": v, "profile": P.profile, **info, **source})
    return out_dir, tok.get_vocab_size(), report


def transfer_model(base_model: str, new_tokenizer: str, *, out: str, old_tokenizer: str | None = None,
                   method: str = "fvt", pad_to_multiple_of: int | None = None,
                   force: bool = False) -> tuple[Path, list[dict]]:
    """Swap the tokenizer of the model directory ``base_model`` and save it to ``out``; returns ``(out, rows)``.

    ``out`` follows the output rule (:func:`check_out`) and is never an input, not even with ``force``;
    an ``old_tokenizer`` must have the vocabulary of the model folder's own tokenizer unless ``force``.
    """
    from tokstudy import transfer

    inputs = [base_model, new_tokenizer, old_tokenizer]
    transfer.check_model_dir(base_model)  # the cheap checks first: a bad tokenizer fails before the weights load
    check_out("transfer", out, force=force, inputs=inputs)
    old = load_tokenizer(old_tokenizer, "--old-tokenizer") if old_tokenizer else transfer.base_tokenizer(base_model)
    if old_tokenizer and not force:
        transfer.check_old_tokenizer(base_model, old, old_tokenizer)
    new = load_tokenizer(new_tokenizer, "NEW_TOKENIZER")
    with output_dir("transfer", out, force=force, inputs=inputs) as stage:
        model = transfer.load_base(base_model)
        model, stats = transfer.swap_tokenizer(model, old, new, method, pad_to_multiple_of=pad_to_multiple_of)
        transfer.save_transferred(model, stats.tokenizer, stage, stats)
    return Path(out), stats.rows()


def export_tiktoken(spec: str, out: str) -> tuple[Path, Path]:
    """Write tokenizer ``spec`` as a tiktoken rank file ``out`` plus ``out``'s ``.json`` (pattern, specials).

    Each must be absent, or both an earlier export (``tiktokenfile.check_out``), checked before loading ``spec``.
    """
    from tokstudy import tiktokenfile, tokenizer

    tiktokenfile.check_out(out, inputs=[spec])
    handle = tokenizer.load(spec)
    try:
        return tiktokenfile.export(handle, out)
    except OSError as exc:
        raise ToolError(f"--tiktoken {out}: cannot write it ({exc.strerror or exc}); choose a folder you can "
                        "write to") from None


def evaluate_model_dir(P: Params, model_dir: str, *, name: str | None, mbpp_path: str | None,
                       humaneval_limit: int | None, device: str | None, sandbox: str | None) -> Path:
    """``stages.evaluation.evaluate`` of a model directory the user names; returns the run record."""
    from tokstudy import lm
    from tokstudy.stages import evaluation

    name = name or Path(model_dir).name
    if not lm.is_model_dir(model_dir):  # no run record
        raise ToolError(f"tokstudy evaluate {model_dir}: no model there (config.json missing); give MODEL_DIR a "
                        f"trained Hugging Face model directory (`tokstudy finetune RUN` trains a params.yaml run)")
    return evaluation.evaluate(P, name, model_dir=model_dir, mbpp_path=mbpp_path, humaneval_limit=humaneval_limit,
                               device=device, sandbox=sandbox)
