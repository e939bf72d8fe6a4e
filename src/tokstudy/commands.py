"""The ``tokstudy`` verbs that work on the user's own files: compare, overlap, custom training, transfer, export.

Unlike the pipeline steps (:mod:`tokstudy.stages`), these take paths and names
given on the command line and write where they are told (no run record); the
CLI parses flags, calls one of these and prints what it returns
(:mod:`tokstudy.tables`). Errors name the CLI argument at fault.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from tokstudy import metrics, results
from tokstudy.errors import TokstudyError, ToolError
from tokstudy.params import Params

#: the compression metrics ``compare`` tabulates, in table order
COMPARE_METRICS = ("bytes_per_token", "nsl", "renyi_efficiency")
#: the per-dataset totals ``compare`` shows beside them (of the base's pass: the same for every tokenizer but tokens)
COUNT_COLUMNS = ("docs", "bytes", "tokens")
COMPARE_COLUMNS = (*COUNT_COLUMNS, *COMPARE_METRICS)
_CHUNK = 64  # documents counted per progress-bar update
_BATCH_CHARS = 1 << 20  # characters per encode_batch call of a tokenizer that batches itself
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
              max_docs: int | None = 1000, extensions: dict[str, str] | None = None):
    """``(datasets, report)`` of a folder, a JSONL file, or ``PROFILE:SPLIT`` of a built corpus (report: None).

    A folder or file is sampled by ``folders.read_user_source`` (``max_docs`` per
    language, in sha256(path) order; ``extensions``: ``{".foo": "lang"}`` over the built-in table);
    a split keeps its first ``max_docs`` per dataset.
    """
    from tokstudy import corpus, folders, params

    path = Path(spec).expanduser()
    if path.exists():
        docs, report = folders.read_user_source(
            path, include=include, exclude=exclude, max_file_bytes=max_file_bytes,
            max_line_chars=max_line_chars, max_docs=max_docs, extensions=extensions)
        return corpus.datasets(docs), report
    if ":" not in spec:
        raise ToolError(f"compare CORPUS {spec!r} is neither a folder, a JSONL file nor PROFILE:SPLIT (e.g. cpu:test)")
    if extensions:
        raise ToolError(f"compare --ext applies to a folder, not to the corpus split {spec!r}; drop --ext")
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


def _encoded(handle, texts: list[str], pool) -> Iterator[list[int]]:
    """``handle``'s ids of each text, in order, as they come.

    A tiktoken encoding releases the GIL per text: its texts go through ``pool`` (one pool for the whole
    ``compare``, not one per batch as ``encode_ordinary_batch`` makes). Any other tokenizer encodes ~1 MB
    batches with its own ``encode_batch`` (HF tokenizers: Rust threads, no Python pool).
    """
    if pool is not None and getattr(handle, "kind", None) == "tiktoken":
        yield from pool.map(handle.encode, texts)
        return
    batch = getattr(handle, "encode_batch", None)
    start, size = 0, 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= _BATCH_CHARS or i == len(texts) - 1:
            part = texts[start:i + 1]
            yield from (batch(part) if callable(batch) else map(handle.encode, part))
            start, size = i + 1, 0


def counts(handle, datasets: metrics.Datasets, desc: str, pool=None) -> dict[str, metrics.Counts]:
    """Token, byte, char and document totals and the id counter of ``handle`` on every dataset (one progress bar
    over all files). ``pool``: a ``ThreadPoolExecutor`` for a tokenizer that releases the GIL (:func:`_encoded`)."""
    import numpy as np

    out: dict[str, metrics.Counts] = {}
    with tqdm(total=sum(len(texts) for _dom, texts in datasets.values()), desc=desc, unit="file") as bar:
        for name, (_domain, texts) in sorted(datasets.items()):
            texts = [t for t in texts if t]
            if not texts:
                raise metrics.MetricsError(f"dataset {name!r} has no non-empty text; drop it or give other files")
            total, ids_seen = metrics.Counts(), np.zeros(0, dtype=np.int64)
            pending: list = []
            for text, ids in zip(texts, _encoded(handle, texts, pool), strict=True):
                total.tokens += len(ids)
                total.bytes += len(text.encode("utf-8"))
                total.chars += len(text)
                total.docs += 1
                pending.append(np.asarray(ids, dtype=np.int64))
                if len(pending) >= _CHUNK or total.docs == len(texts):  # bincount in chunks: few numpy calls
                    part = np.bincount(np.concatenate(pending)) if any(len(p) for p in pending) else ids_seen[:0]
                    if len(part) > len(ids_seen):
                        ids_seen = np.pad(ids_seen, (0, len(part) - len(ids_seen)))
                    ids_seen[:len(part)] += part
                    bar.update(len(pending))
                    pending = []
            seen = np.flatnonzero(ids_seen)
            total.counter.update(dict(zip(seen.tolist(), ids_seen[seen].tolist(), strict=True)))
            out[name] = total
    return out


def merged_counts(parts: list[metrics.Counts]) -> metrics.Counts:
    """The counts of several datasets (or files) taken as one (pooled)."""
    out = metrics.Counts()
    for c in parts:
        out.tokens, out.bytes, out.chars, out.docs = (out.tokens + c.tokens, out.bytes + c.bytes,
                                                      out.chars + c.chars, out.docs + c.docs)
        out.counter.update(c.counter)
    return out


def same_tokenizer(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two tokenizer specs name the same tokenizer (``cl100k`` and ``cl100k_base``; a folder and its
    ``tokenizer.json``), so that ``compare`` loads and encodes it once."""
    from tokstudy import reference, tokenizer

    def identity(spec):
        p = Path(spec)
        if p.exists():
            p = p.resolve()
            return ("path", str(p / "tokenizer.json" if (p / "tokenizer.json").is_file() else p))
        try:
            return ("ref", reference.resolve(str(spec)) or str(spec))
        except tokenizer.TokenizerError:
            return ("spec", str(spec))

    return identity(a) == identity(b)


def training_overlap(handles: dict[str, tuple[str, Any]], corpus_spec: str) -> list[str]:
    """One warning per tokenizer whose recorded training data (its ``meta.json`` ``data``: what ``train --data``
    or the pipeline wrote) overlaps the compared corpus: its scores there are not out-of-sample."""
    import json

    corpus_path = Path(corpus_spec).expanduser()
    corpus = corpus_path.resolve() if corpus_path.exists() else None
    out = []
    for label, (where_, _h) in handles.items():
        p = Path(where_)
        meta = (p if p.is_dir() else p.parent) / "meta.json"
        try:
            data = json.loads(meta.read_text(encoding="utf-8")).get("data") if p.exists() else None
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(data, str) or not data:
            continue
        if corpus is None:  # PROFILE:SPLIT: the pipeline records "corpus PROFILE:train, mix ..."
            hit = data.startswith(f"corpus {corpus_spec},") or data == f"corpus {corpus_spec}"
        else:
            trained = Path(data)
            hit = trained.is_absolute() and (trained == corpus or trained.is_relative_to(corpus)
                                             or corpus.is_relative_to(trained))
        if hit:
            out.append(f"warning: tokenizer {label} was trained on {data} ({meta}), which overlaps {corpus_spec}: "
                       "its scores there are in-sample (optimistic); compare on files it was not trained on")
    return out


@dataclasses.dataclass
class Comparison:
    """What ``compare`` computed: the tidy rows (compare.csv), the JSON metadata block, notes to print."""

    rows: pd.DataFrame
    metadata: dict
    notes: list[str]


def _rows(label: str, path: str, handle, datasets, own, base_counts, included, alpha: float,
          common: dict) -> list[dict]:
    """Per-dataset rows (``in_means`` says whether the dataset counts in the means), then the macro means
    (``mean:<domain>``, ``average``: the paper's) and the pooled ones (``pooled:<domain>``, ``pooled:all``) over
    the included datasets."""
    extra = {"tokenizer": label, "path": path, **common}
    rows = [{**r, "in_means": r["dataset"] in included}
            for r in metrics.compression_rows(handle, datasets, base_counts, alpha=alpha, counts=own, extra=extra)
            if r["dataset"] in datasets]
    if not included:
        return rows
    vocab = int(handle.vocab_size)
    values = {n: metrics.dataset_metrics(own[n], base_counts[n], vocab, alpha) for n in included}
    domains = {n: datasets[n][0] for n in included}
    groups = {d: [n for n in included if domains[n] == d] for d in sorted(set(domains.values()))}
    groups_all = {**{f"mean:{d}": names for d, names in groups.items()}, "average": list(included)}
    for name, means in metrics.aggregate(values, domains).items():
        names = groups_all[name]
        totals = merged_counts([own[n] for n in names])
        means.update(docs=totals.docs, bytes=totals.bytes, tokens=totals.tokens)
        rows += [{**extra, "vocab_size": vocab, "renyi_alpha": alpha, "dataset": name,
                  "domain": name.split(":", 1)[1] if ":" in name else "all", "metric": m, "value": v,
                  "aggregate": "macro"} for m, v in means.items()]
    for name, names in {**{f"pooled:{d}": n for d, n in groups.items()}, "pooled:all": list(included)}.items():
        pooled = metrics.dataset_metrics(merged_counts([own[n] for n in names]),
                                         merged_counts([base_counts[n] for n in names]),
                                         vocab, alpha)
        rows += [{**extra, "vocab_size": vocab, "renyi_alpha": alpha, "dataset": name,
                  "domain": name.split(":", 1)[1], "metric": m, "value": v, "aggregate": "pooled"}
                 for m, v in pooled.items()]
    return rows


def compare(handles: dict[str, tuple[str, Any]], base, datasets: metrics.Datasets, *, base_name: str, alpha: float,
            out: str | os.PathLike, force: bool = False, inputs=(), corpus: str = "", min_bytes: int = 0,
            min_docs: int = 0, figure: bool = True) -> Comparison:
    """Compression rows of every tokenizer (NSL against ``base``); writes ``compare.csv`` (and, with ``figure``,
    the figure) to ``out``.

    ``base`` is a handle, or the label of one of ``handles`` (it is then encoded once). A dataset with fewer
    than ``min_docs`` documents or ``min_bytes`` bytes is shown but left out of the means (a note says so).
    ``out`` follows the output rule (:func:`check_out`; ``inputs``: the paths read, never written into).
    """
    from concurrent.futures import ThreadPoolExecutor

    import tokstudy
    from tokstudy import paths

    with output_dir("compare", out, force=force, inputs=inputs) as stage, \
            ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        own = {label: counts(h, datasets, f"encode {label}", pool) for label, (_w, h) in handles.items()}
        base_counts = own[base] if isinstance(base, str) else counts(base, datasets, f"count base {base_name}", pool)
        small = {n: c for n, c in base_counts.items() if c.docs < min_docs or c.bytes < min_bytes}
        included = [n for n in sorted(datasets) if n not in small]
        common = {"base": base_name, "corpus": corpus}
        rows: list[dict] = []
        for label, (path, handle) in handles.items():
            rows += _rows(label, path, handle, datasets, own[label], base_counts, included, alpha, common)
        df = pd.DataFrame(rows)
        notes = []
        if small:
            what = ", ".join(f"{n} ({c.docs} file{'s' * (c.docs != 1)}, {c.bytes} bytes)"
                             for n, c in sorted(small.items()))
            notes.append(f"note: left out of the means, under --min-docs {min_docs} or --min-bytes {min_bytes}: "
                         f"{what}" + ("" if included else "; no dataset is large enough for a mean"))
        stage.mkdir()
        df.to_csv(stage / "compare.csv", index=False)
        if figure:
            from tokstudy import plots

            plots.compare(df[df["aggregate"].isna()] if "aggregate" in df else df, stage)
        paths.write_marker(stage, "compare")
    metadata = {
        "tokstudy_version": tokstudy.__version__,
        "corpus": corpus,
        "base": base_name,
        "tokenizers": {label: w for label, (w, _h) in handles.items()},
        "renyi_alpha": alpha,
        "min_bytes": min_bytes,
        "min_docs": min_docs,
        "counts": {"datasets": len(datasets), "datasets_in_means": len(included),
                   "docs": sum(c.docs for c in base_counts.values()),
                   "bytes": sum(c.bytes for c in base_counts.values())},
        "datasets_left_out_of_means": sorted(small),
        "means": {"mean:<domain>, average": "macro: unweighted mean over datasets (the paper's)",
                  "pooled:<domain>, pooled:all": "pooled: all tokens over all bytes (byte-weighted)"},
    }
    return Comparison(df, metadata, notes)


def compare_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, tokenizer): documents, bytes, tokens, each compression metric and ``in_means``
    (empty on the mean rows), in the rows' order."""
    sel = df[df["metric"].isin(COMPARE_COLUMNS)]
    table = sel.pivot_table(index=["dataset", "tokenizer"], columns="metric", values="value", aggfunc="first",
                            sort=False)
    table.columns.name = None
    table = table[[m for m in COMPARE_COLUMNS if m in table.columns]]
    for col in COUNT_COLUMNS:
        table[col] = table[col].round().astype("int64")
    flags = df.drop_duplicates(["dataset", "tokenizer"]).set_index(["dataset", "tokenizer"])["in_means"]
    table["in_means"] = flags.reindex(table.index).map({True: "yes", False: "no"}).fillna("")
    return table


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


def overlap_metadata(handles: dict[str, tuple[str, Any]]) -> dict:
    """The ``metadata`` block of ``overlap --format json``: the tokenizers (label: path) and the tokstudy version."""
    import tokstudy

    return {"tokstudy_version": tokstudy.__version__, "tokenizers": {label: w for label, (w, _h) in handles.items()}}


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
        bpe.save(tok, stage, {"variant": _variant_record(v, data=bool(data), sized=vocab_size is not None),
                              "profile": P.profile, **info, **source})
    return out_dir, tok.get_vocab_size(), report


def _variant_record(v, *, data: bool, sized: bool) -> dict:
    """What meta.json records of the variant a custom run used: only what applied to it. With ``--data`` the
    variant's corpus mix and byte budget did not (``data`` and ``train_bytes`` beside it say what was read), and
    with ``--vocab-size`` its size label did not (``vocab_size``: the size asked for; the top-level one is the
    trained size)."""
    rec = dataclasses.asdict(v)
    for key in (("mix", "train_bytes") if data else ()) + (("vocab",) if data or sized else ()):
        rec.pop(key, None)
    return rec


def focus_aux(method: str, aux_text: Sequence[str] | None, *, profile: str | None, dim: int | None,
              epochs: int | None, min_count: int | None, seed: int | None):
    """``transfer --method focus``'s auxiliary text and settings (:class:`tokstudy.transfer.FocusAux`), a flag left
    out taken from the profile's ``transfer.focus`` (and ``seed``); ``None`` for the other methods, which refuse
    ``--aux-*`` flags. Checked (the files read) before anything loads or is written."""
    from tokstudy import params, transfer

    given = [f for f, v in (("--aux-text", aux_text), ("--aux-dim", dim), ("--aux-epochs", epochs),
                            ("--aux-min-count", min_count), ("--seed", seed)) if v is not None]
    if method != "focus":
        if given:
            raise ToolError(f"{given[0]} is used by --method focus only; drop it or pass --method focus")
        return None
    if not aux_text:
        raise ToolError("--method focus needs --aux-text FILE: text in the new tokenizer's domain (e.g. code "
                        "like the model will see) that FOCUS's auxiliary fastText embeddings train on")
    P = params.load(profile)
    F = P.transfer.focus
    return transfer.FocusAux(texts=transfer.read_aux_texts(aux_text), dim=dim or F.dim, epochs=epochs or F.epochs,
                             min_count=min_count or F.min_count, seed=P.seed if seed is None else seed)


def transfer_model(base_model: str, new_tokenizer: str, *, out: str, old_tokenizer: str | None = None,
                   method: str = "fvt", pad_to_multiple_of: int | None = None,
                   force: bool = False, focus=None) -> tuple[Path, list[dict]]:
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
        model, stats = transfer.swap_tokenizer(model, old, new, method, pad_to_multiple_of=pad_to_multiple_of,
                                               focus=focus)
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
