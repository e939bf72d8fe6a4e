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
            out: str | os.PathLike) -> pd.DataFrame:
    """Compression rows of every tokenizer (NSL against ``base``); writes ``compare.csv`` and the figure to ``out``."""
    from tokstudy import plots

    base_counts = counts(base, datasets, f"count base {base_name}")
    rows: list[dict] = []
    for label, (path, handle) in handles.items():
        rows += metrics.compression_rows(handle, datasets, base_counts, alpha=alpha,
                                         counts=counts(handle, datasets, f"encode {label}"),
                                         extra={"tokenizer": label, "path": path, "base": base_name})
    df = pd.DataFrame(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "compare.csv", index=False)
    plots.compare(df, out)
    return df


def compare_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, tokenizer), one column per compression metric, datasets in the rows' order."""
    sel = df[df["metric"].isin(COMPARE_METRICS)]
    table = sel.pivot_table(index=["dataset", "tokenizer"], columns="metric", values="value", aggfunc="first",
                            sort=False)
    table.columns.name = None
    return table[[m for m in COMPARE_METRICS if m in table.columns]]


def overlap(handles: dict[str, tuple[str, Any]], out: str | os.PathLike) -> pd.DataFrame:
    """Pairwise vocabulary-overlap rows (with both paths); writes ``overlap.csv`` and the heatmap to ``out``."""
    from tokstudy import plots

    if len(handles) < 2:
        raise ToolError("overlap TOKENIZERS: give at least two tokenizers")
    df = pd.DataFrame(metrics.overlap_rows({label: h for label, (_w, h) in handles.items()}))
    paths_of = {label: w for label, (w, _h) in handles.items()}
    df["path"], df["other_path"] = df["tokenizer"].map(paths_of), df["other"].map(paths_of)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "overlap.csv", index=False)
    plots.overlap_heatmap(df, out)
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
                 name: str | None = None, out: str | None = None):
    """``tokstudy train`` with ``--data`` or overrides: train and save a tokenizer, no pipeline run record.

    Returns ``(out_dir, vocab_size, report)`` (``report``: the data folder/file summary, or None).
    """
    from tokstudy import bpe, folders, paths

    v = P.tokenizer(variant) if variant else next(iter(P.tokenizers.values()))
    if regex is not None or regex_pattern is not None:  # the CLI choice replaces the variant's
        v = dataclasses.replace(v, regex=regex, pattern=regex_pattern)
    v = dataclasses.replace(
        v,
        **({"name": name or Path(data).stem} if name or data else {}),
        **({"vocab_size": vocab_size} if vocab_size else {}),
        **({"engine": engine} if engine else {}),
    )
    bpe.check_variant(v)  # before reading any data: a bad regex name or size fails in a second
    if not out and (data or v.name not in P.tokenizers or v != P.tokenizer(v.name)):
        raise ToolError(f"train: give --out DIR for a tokenizer that is not params.yaml's variant {v.name!r} as it is "
                        f"(data/{P.profile}/tokenizers/ holds only the pipeline's variants)")
    out_dir = bpe.check_out_dir(out or paths.tokenizer_dir(P.profile, v.name))
    report = None
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
    bpe.save(tok, out_dir, {"variant": v, "profile": P.profile, **info, **source})
    return out_dir, tok.get_vocab_size(), report


def transfer_model(base_model: str, new_tokenizer: str, *, out: str, old_tokenizer: str | None = None,
                   method: str = "fvt", pad_to_multiple_of: int | None = None) -> tuple[Path, list[dict]]:
    """Swap the tokenizer of the model directory ``base_model`` and save it to ``out``; returns ``(out, rows)``."""
    from tokstudy import transfer

    transfer.check_model_dir(base_model)  # the cheap checks first: a bad tokenizer fails before the weights load
    old = load_tokenizer(old_tokenizer, "--old-tokenizer") if old_tokenizer else transfer.base_tokenizer(base_model)
    new = load_tokenizer(new_tokenizer, "NEW_TOKENIZER")
    model = transfer.load_base(base_model)
    model, stats = transfer.swap_tokenizer(model, old, new, method, pad_to_multiple_of=pad_to_multiple_of)
    return transfer.save_transferred(model, stats.tokenizer, out, stats), stats.rows()


def export_tiktoken(spec: str, out: str) -> tuple[Path, Path]:
    """Write tokenizer ``spec`` as a tiktoken rank file ``out`` plus ``out``'s ``.json`` (pattern, specials)."""
    from tokstudy import tiktokenfile, tokenizer

    return tiktokenfile.export(tokenizer.load(spec), out)


def evaluate_model_dir(P: Params, model_dir: str, *, name: str | None = None, **options) -> Path:
    """``stages.evaluation.evaluate`` of a model directory the user names; returns the run record."""
    from tokstudy import lm
    from tokstudy.stages import evaluation

    name = name or Path(model_dir).name
    if not lm.is_model_dir(model_dir):  # no run record
        raise ToolError(f"tokstudy evaluate {model_dir}: no model there (config.json missing); give MODEL_DIR a "
                        f"trained Hugging Face model directory (`tokstudy finetune RUN` trains a params.yaml run)")
    return evaluation.evaluate(P, name, model_dir=model_dir, **options)
