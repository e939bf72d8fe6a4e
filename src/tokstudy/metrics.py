"""Compression and vocabulary metrics of a tokenizer: pure functions on token counts.

Definitions follow the authors' released evaluation code (``eval.py``,
``utils.py``, ``process_evals.ipynb``; docs/paper.md#compression-metrics):

* Every document of a dataset is encoded **without special tokens**; empty
  texts are skipped.
* **NSL** (normalised sequence length, paper §2.1) of a dataset is a *ratio of
  sums*: ``Σ_i len(T(D_i)) / Σ_i len(T_base(D_i))``, with the Llama-2 tokenizer
  as ``T_base``.  Lower is better.
* **Bytes per token** / **chars per token**: ``Σ UTF-8 bytes / Σ tokens`` and
  ``Σ characters / Σ tokens`` over the dataset.
* **Rényi efficiency** (Zouhar et al. 2023, "Tokenization and the Noiseless
  Channel"): with the unigram distribution ``p`` of token ids in the dataset,
  ``H_α(p) = 1/(1-α) · log2 Σ p_i^α`` (Shannon ``-Σ p log2 p`` at α = 1),
  divided by ``log2 |V_obs|`` (distinct ids observed in the dataset) as the
  authors did, or by ``log2 |V|`` (the full vocabulary) for the ``_fullv``
  variant.  α = 2.5 in the paper.
* **Utilisation**: ``|V_obs| / |V|``.
* A domain score (code / English) is the **unweighted mean over that domain's
  datasets**; "average" is the unweighted mean of the domain scores.  A pooled
  ratio over all documents of a domain gives different numbers
  (:func:`pooled_nsl` exists only to show that).

Counting is the only step that touches a tokenizer: :func:`token_counts` takes
anything with ``.encode(text) -> list[int]`` (``tokstudy.tokenizer.TokenizerHandle``).
The base tokenizer's counts are cached (in a folder the caller names) by :func:`base_counts`.

Each :class:`Counts` also keeps every document's token and byte count (in order), so a run record can
carry them (:func:`document_counts`, integer lists) and a domain's NSL gets a bootstrap interval over test
documents (:func:`nsl_interval`: documents resampled within each dataset, paired with the base's counts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tokstudy import paths
from tokstudy.errors import MetricsError

log = logging.getLogger(__name__)

RATIO_METRICS = (
    "bytes_per_token",
    "chars_per_token",
    "nsl",
    "renyi_efficiency",
    "renyi_efficiency_fullv",
    "utilisation",
)
TOTAL_METRICS = ("tokens", "bytes", "docs")
INTERVAL_METRICS = ("nsl_ci_low", "nsl_ci_high")
CACHE_VERSION = 2  # 2: per-document token and byte counts


@dataclass
class Counts:
    """Token statistics of one tokenizer on one dataset (empty texts skipped)."""

    tokens: int = 0
    bytes: int = 0
    chars: int = 0
    docs: int = 0
    counter: Counter = field(default_factory=Counter)
    doc_tokens: list[int] = field(default_factory=list)  # per document, in order
    doc_bytes: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "tokens": self.tokens,
            "bytes": self.bytes,
            "chars": self.chars,
            "docs": self.docs,
            "counter": {str(k): v for k, v in sorted(self.counter.items())},
            "doc_tokens": list(self.doc_tokens),
            "doc_bytes": list(self.doc_bytes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Counts:
        return cls(
            tokens=int(data["tokens"]),
            bytes=int(data["bytes"]),
            chars=int(data["chars"]),
            docs=int(data["docs"]),
            counter=Counter({int(k): int(v) for k, v in data.get("counter", {}).items()}),
            doc_tokens=[int(x) for x in data["doc_tokens"]],
            doc_bytes=[int(x) for x in data["doc_bytes"]],
        )


Datasets = Mapping[str, tuple[str, Sequence[str]]]  # {dataset: (domain, [text, ...])}


# --------------------------------------------------------------------------- counting


def token_counts(handle, texts: Iterable[str]) -> Counts:
    """Encode every non-empty text with ``handle`` and total tokens, bytes, chars and ids."""
    out = Counts()
    texts = [t for t in texts if t]
    batch = getattr(handle, "encode_batch", None)
    encoded = batch(texts) if callable(batch) and texts else (handle.encode(t) for t in texts)
    for text, ids in zip(texts, encoded, strict=True):
        nbytes = len(text.encode("utf-8"))
        out.tokens += len(ids)
        out.bytes += nbytes
        out.chars += len(text)
        out.docs += 1
        out.counter.update(ids)
        out.doc_tokens.append(len(ids))
        out.doc_bytes.append(nbytes)
    return out


def limit_texts(texts: Sequence[str], max_docs: int | None = None, max_bytes: int | None = None) -> list[str]:
    """The first non-empty texts, at most ``max_docs`` of them and (beyond the first) ``max_bytes`` in all."""
    out, total = [], 0
    for t in texts:
        if not t:
            continue
        nb = len(t.encode("utf-8"))
        if (max_docs is not None and len(out) >= max_docs) or (
            max_bytes is not None and out and total + nb > max_bytes
        ):
            break
        out.append(t)
        total += nb
    return out


def limit_docs(datasets: Datasets, max_docs: int | None) -> dict[str, tuple[str, list[str]]]:
    """:func:`limit_texts` of every dataset: its first ``max_docs`` non-empty texts (``None``: all of them)."""
    return {name: (domain, limit_texts(texts, max_docs)) for name, (domain, texts) in datasets.items()}


def dataset_counts(handle, datasets: Datasets, desc: str | None = None) -> dict[str, Counts]:
    """:func:`token_counts` for every dataset of ``{dataset: (domain, texts)}``."""
    out = {}
    for name, (_domain, texts) in tqdm(
        sorted(datasets.items()), desc=desc or f"encode {getattr(handle, 'name', '?')}", leave=False
    ):
        out[name] = token_counts(handle, texts)
        if out[name].docs == 0:
            raise MetricsError(f"dataset {name!r} has no non-empty text; rebuild the corpus or drop the dataset")
    return out


def datasets_hash(datasets: Datasets) -> str:
    """A sha256 over dataset names, domains and texts (the cache key of :func:`base_counts`)."""
    h = hashlib.sha256()
    for name, (domain, texts) in sorted(datasets.items()):
        h.update(f"{name}\0{domain}\0{len(texts)}\0".encode())
        for t in texts:
            h.update(hashlib.sha256(t.encode("utf-8")).digest())
    return h.hexdigest()


def base_counts(base_handle, datasets: Datasets, cache_dir: str | Path | None = None) -> dict[str, Counts]:
    """Counts of the base (NSL denominator) tokenizer, cached in ``cache_dir`` (``None``: not cached).

    The cache file is ``<cache_dir>/base-<name>-<hash16>.json``, keyed by
    :func:`datasets_hash` of exactly the texts given (so truncate first), and
    written atomically.
    """
    key = datasets_hash(datasets)
    name = str(getattr(base_handle, "name", "base")).replace("/", "_")
    path = Path(cache_dir) / f"base-{name}-{key[:16]}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("version") == CACHE_VERSION and data.get("datasets_sha256") == key:
            log.info("base counts of %s from cache %s", name, path)
            return {k: Counts.from_json(v) for k, v in data["counts"].items()}
        log.warning("ignoring stale base-count cache %s", path)
    counts = dataset_counts(base_handle, datasets, desc=f"encode base {name}")
    if path is not None:
        record = {
            "version": CACHE_VERSION,
            "base": name,
            "vocab_size": getattr(base_handle, "vocab_size", None),
            "datasets_sha256": key,
            "counts": {k: v.to_json() for k, v in counts.items()},
        }
        paths.atomic_write(path, json.dumps(record) + "\n")
    return counts


# --------------------------------------------------------------------------- metrics


def _totals(counts: Counts | int, what: str) -> int:
    return int(getattr(counts, what)) if isinstance(counts, Counts) else int(counts)


def bytes_per_token(counts: Counts) -> float:
    """Σ UTF-8 bytes / Σ tokens over the dataset."""
    if counts.tokens <= 0:
        raise MetricsError("bytes_per_token of a dataset with no tokens")
    return counts.bytes / counts.tokens


def chars_per_token(counts: Counts) -> float:
    """Σ characters / Σ tokens over the dataset."""
    if counts.tokens <= 0:
        raise MetricsError("chars_per_token of a dataset with no tokens")
    return counts.chars / counts.tokens


def nsl(counts_tok: Counts | int, counts_base: Counts | int) -> float:
    """Normalised sequence length: Σ tokens of the tokenizer / Σ tokens of the base, same documents.

    With two :class:`Counts`, their byte totals must match (else they were
    counted on different documents).
    """
    if isinstance(counts_tok, Counts) and isinstance(counts_base, Counts):
        if (counts_tok.bytes, counts_tok.docs) != (counts_base.bytes, counts_base.docs):
            raise MetricsError(
                f"NSL needs both tokenizers on the same documents; got {counts_tok.docs} docs/"
                f"{counts_tok.bytes} bytes vs base {counts_base.docs} docs/{counts_base.bytes} bytes "
                "(recompute the base counts on the same truncated datasets)"
            )
    num, den = _totals(counts_tok, "tokens"), _totals(counts_base, "tokens")
    if den <= 0:
        raise MetricsError("NSL with a base that produced no tokens")
    return num / den


def pooled_nsl(counts_tok: Mapping[str, Counts], counts_base: Mapping[str, Counts], names: Iterable[str]) -> float:
    """Ratio of sums pooled over several datasets (NOT the paper's aggregate; see module doc)."""
    names = list(names)
    return sum(counts_tok[n].tokens for n in names) / sum(counts_base[n].tokens for n in names)


def renyi_entropy(counter: Mapping[Any, int], alpha: float = 2.5) -> float:
    """Rényi entropy in bits of the unigram distribution in ``counter`` (Shannon at α = 1)."""
    freqs = [f for f in counter.values() if f > 0]
    total = sum(freqs)
    if total <= 0:
        raise MetricsError("Rényi entropy of an empty token distribution")
    probs = [f / total for f in freqs]
    if not alpha > 0:  # nan too
        raise MetricsError(f"Rényi alpha must be > 0, got {alpha}")
    if math.isclose(alpha, 1.0):
        return -sum(p * math.log2(p) for p in probs)
    if math.isinf(alpha):  # the limit: min-entropy
        return -math.log2(max(probs))
    # log2(sum p^α) in log space (log-sum-exp): p^α underflows to 0 for a large α (1000: a math domain error)
    scaled = [alpha * math.log2(p) for p in probs]
    top = max(scaled)
    return (top + math.log2(sum(2.0 ** (x - top) for x in scaled))) / (1.0 - alpha)


def renyi_efficiency(counter: Mapping[Any, int], alpha: float = 2.5, vocab_size: int | None = None) -> float:
    """Rényi efficiency ``H_α(p) / log2 |V|``.

    ``vocab_size=None`` uses ``|V_obs|`` (distinct ids with a positive count), as
    the authors' ``utils.renyi_efficiency`` does; pass the vocabulary size for
    the full-|V| variant of Zouhar et al.  With a single observed id the
    |V_obs| variant is 0/0 and returns ``nan``.
    """
    h = renyi_entropy(counter, alpha)
    n = int(vocab_size) if vocab_size is not None else sum(1 for f in counter.values() if f > 0)
    if n <= 1:
        return float("nan")
    return h / math.log2(n)


def utilisation(counter: Mapping[Any, int], vocab_size: int) -> float:
    """Share of the vocabulary observed: ``|V_obs| / |V|``."""
    if vocab_size <= 0:
        raise MetricsError(f"vocab_size must be positive, got {vocab_size}")
    return sum(1 for f in counter.values() if f > 0) / vocab_size


def dataset_metrics(counts: Counts, base: Counts | None, vocab_size: int, alpha: float = 2.5) -> dict[str, float]:
    """All per-dataset metrics of one tokenizer (``nsl`` only when ``base`` is given)."""
    out = {
        "bytes_per_token": bytes_per_token(counts),
        "chars_per_token": chars_per_token(counts),
        "renyi_efficiency": renyi_efficiency(counts.counter, alpha),
        "renyi_efficiency_fullv": renyi_efficiency(counts.counter, alpha, vocab_size=vocab_size),
        "utilisation": utilisation(counts.counter, vocab_size),
        "tokens": counts.tokens,
        "bytes": counts.bytes,
        "docs": counts.docs,
    }
    if base is not None:
        out["nsl"] = nsl(counts, base)
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def aggregate(
    per_dataset: Mapping[str, Mapping[str, float]], domains: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """Unweighted means of the ratio metrics: ``{"mean:<domain>": {...}, "average": {...}}``.

    ``average`` is the unweighted mean of the domain means (the paper's "Average").
    Totals (tokens, bytes, docs) are not averaged.
    """
    by_domain: dict[str, list[str]] = {}
    for name in sorted(per_dataset):
        by_domain.setdefault(domains[name], []).append(name)
    out: dict[str, dict[str, float]] = {}
    for domain, names in sorted(by_domain.items()):
        out[f"mean:{domain}"] = {
            m: _mean([per_dataset[n][m] for n in names])
            for m in RATIO_METRICS
            if all(m in per_dataset[n] for n in names)
        }
    metrics = set.intersection(*(set(v) for v in out.values())) if out else set()
    out["average"] = {m: _mean([v[m] for v in out.values()]) for m in RATIO_METRICS if m in metrics}
    return out


def document_counts(counts: Mapping[str, Counts], base: Mapping[str, Counts] | None = None) -> dict[str, dict]:
    """Per-document counts for a run record: ``{dataset: {"bytes": [...], "tokens": [...], "base_tokens": [...]}}``.

    Integer lists in document order (``base_tokens`` only with ``base``), enough to recompute every NSL and
    its interval from the record alone.
    """
    out = {}
    for name, c in sorted(counts.items()):
        out[name] = {"bytes": list(c.doc_bytes), "tokens": list(c.doc_tokens)}
        if base is not None:
            b = base[name]
            if b.doc_bytes != c.doc_bytes:
                raise MetricsError(f"dataset {name!r}: the base was counted on other documents; recompute its counts")
            out[name]["base_tokens"] = list(b.doc_tokens)
    return out


def nsl_interval(counts: Mapping[str, Counts], base: Mapping[str, Counts], names: Iterable[str], n_boot: int,
                 confidence: float, seed: int) -> tuple[float, float]:
    """Bootstrap interval of the unweighted mean over datasets ``names`` of their NSL (a domain's NSL).

    Documents are resampled within each dataset, each with its own and the base's token count
    (:func:`tokstudy.bootstrap.stratified_ratio_ci`; percentile, ``n_boot`` resamples, seeded).
    """
    from tokstudy.bootstrap import stratified_ratio_ci

    groups = []
    for name in sorted(names):
        c, b = counts[name], base[name]
        if c.doc_bytes != b.doc_bytes or len(c.doc_tokens) != c.docs:
            raise MetricsError(f"dataset {name!r}: no per-document counts of both tokenizers on the same documents; "
                               "recompute the counts (and delete stale base-count caches)")
        groups.append((c.doc_tokens, b.doc_tokens))
    return stratified_ratio_ci(groups, n_boot, confidence, seed)


def compression_rows(
    handle,
    datasets: Datasets,
    base: Any = None,
    alpha: float = 2.5,
    *,
    extra: Mapping[str, Any] | None = None,
    counts: Mapping[str, Counts] | None = None,
    n_boot: int | None = None,
    confidence: float | None = None,
    seed: int = 0,
) -> list[dict]:
    """Tidy rows of every compression metric of ``handle`` on ``datasets``.

    ``datasets`` is ``{dataset: (domain, [texts])}`` (``corpus.datasets``,
    truncated with :func:`limit_docs`).  ``base`` is the NSL denominator: a
    tokenizer handle, precomputed ``{dataset: Counts}`` (:func:`base_counts`),
    or ``None`` (no NSL rows).  ``extra`` keys (e.g. ``regex``, ``mix``,
    ``vocab_size`` of a variant) are added to every row; ``counts`` reuses
    already computed counts of ``handle``.

    Rows: ``tokenizer, dataset, domain, metric, value, vocab_size, base`` with
    per-dataset rows, ``dataset="mean:<domain>"`` rows (unweighted mean over the
    domain's datasets) and ``dataset="average", domain="all"`` rows. With a base and
    ``n_boot``/``confidence``, each ``mean:<domain>`` also gets ``nsl_ci_low``/``nsl_ci_high``
    rows (:func:`nsl_interval`, seeded with ``seed``; the rows carry ``n_boot`` and ``confidence``).
    """
    if not datasets:
        raise MetricsError("no datasets to evaluate; build the corpus test split first")
    counts = dict(counts) if counts is not None else dataset_counts(handle, datasets)
    base_name = None
    if base is not None and not isinstance(base, Mapping):
        base_name = getattr(base, "name", None)
        base = dataset_counts(base, datasets, desc=f"encode base {base_name}")
    if base is not None:
        missing = sorted(set(datasets) - set(base))
        if missing:
            raise MetricsError(f"base counts lack dataset(s) {missing}; recompute them with base_counts")
    vocab_size = int(handle.vocab_size)
    per_dataset = {
        name: dataset_metrics(counts[name], base[name] if base is not None else None, vocab_size, alpha)
        for name in sorted(datasets)
    }
    domains = {name: dom for name, (dom, _t) in datasets.items()}
    common = {
        "tokenizer": handle.name,
        "vocab_size": vocab_size,
        "base": base_name,
        "renyi_alpha": alpha,
        **dict(extra or {}),
    }
    if common["base"] is None:
        common.pop("base")
    if common["vocab_size"] != vocab_size:  # a variant's nominal size differs from the trained one
        common["vocab_size_actual"] = vocab_size
    rows = []
    for name, values in per_dataset.items():
        for metric, value in values.items():
            rows.append({**common, "dataset": name, "domain": domains[name], "metric": metric, "value": value})
    for name, values in aggregate(per_dataset, domains).items():
        domain = name.split(":", 1)[1] if name.startswith("mean:") else "all"
        for metric, value in values.items():
            rows.append({**common, "dataset": name, "domain": domain, "metric": metric, "value": value})
        if base is not None and (n_boot, confidence) != (None, None) and domain != "all":
            names = [n for n, d in domains.items() if d == domain]
            lo, hi = nsl_interval(counts, base, names, int(n_boot or 0), float(confidence or 0), seed)
            for metric, value in zip(INTERVAL_METRICS, (lo, hi), strict=True):
                rows.append({**common, "dataset": name, "domain": domain, "metric": metric, "value": value,
                             "n_boot": n_boot, "confidence": confidence})
    return rows


# --------------------------------------------------------------------------- vocabulary overlap


LONG_TOKEN_BYTES = (16, 32)  # token lengths worth reporting for code generation (docs/paper.md#superbpe)


def token_shape_rows(handle, counts: Mapping[str, Counts], domains: Mapping[str, str],
                     extra: Mapping[str, Any] | None = None) -> list[dict]:
    """Per domain, the share of token occurrences on the test text that are longer than each of
    :data:`LONG_TOKEN_BYTES` bytes (``tokens_over_<n>b``) and that cross a line break, i.e. hold a newline
    followed by more text (``tokens_crossing_newline``); and per vocabulary the count of such tokens
    (``dataset="vocab"``). Counts come from :func:`dataset_counts` (no re-encoding).

    >>> class H:  # ids 0..2: b"a", b"x\\ny" (crosses a line), 20 bytes
    ...     vocab_size, special_ids = 3, ()
    ...     def token_bytes(self, i): return [b"a", b"x\\ny", b"z" * 20][i]
    >>> c = Counts(tokens=4, counter=Counter({0: 2, 1: 1, 2: 1}))
    >>> {(r["dataset"], r["metric"]): r["value"] for r in token_shape_rows(H(), {"py": c}, {"py": "code"})
    ...  if r["dataset"] == "mean:code"}  # doctest: +NORMALIZE_WHITESPACE
    {('mean:code', 'tokens_over_16b'): 0.25, ('mean:code', 'tokens_over_32b'): 0.0,
     ('mean:code', 'tokens_crossing_newline'): 0.25}
    """
    specials = set(getattr(handle, "special_ids", ()) or ())
    shape: dict[int, tuple[int, bool]] = {}
    for i in range(int(handle.vocab_size)):
        if i in specials:
            continue
        try:
            b = bytes(handle.token_bytes(i))
        except (KeyError, IndexError):
            continue
        shape[i] = (len(b), b"\n" in b.rstrip(b"\n"))
    extra = dict(extra or {})
    tok_name = getattr(handle, "name", None)
    rows = [{**extra, "tokenizer": tok_name, "dataset": "vocab", "domain": "all", "metric": f"vocab_tokens_over_{n}b",
             "value": sum(length > n for length, _ in shape.values())} for n in LONG_TOKEN_BYTES]
    rows.append({**extra, "tokenizer": tok_name, "dataset": "vocab", "domain": "all",
                 "metric": "vocab_tokens_crossing_newline", "value": sum(c for _, c in shape.values())})
    for domain in sorted(set(domains.values())):
        total, over, crossing = 0, dict.fromkeys(LONG_TOKEN_BYTES, 0), 0
        for name, c in counts.items():
            if domains.get(name) != domain:
                continue
            for i, k in c.counter.items():
                length, crosses = shape.get(int(i), (0, False))
                total += k
                crossing += k * crosses
                for n in LONG_TOKEN_BYTES:
                    over[n] += k * (length > n)
        if not total:
            continue
        base = {**extra, "tokenizer": tok_name, "dataset": f"mean:{domain}", "domain": domain}
        rows += [{**base, "metric": f"tokens_over_{n}b", "value": over[n] / total} for n in LONG_TOKEN_BYTES]
        rows.append({**base, "metric": "tokens_crossing_newline", "value": crossing / total})
    return rows


def token_set(handle) -> set[bytes]:
    """The distinct byte strings of ``handle``'s vocabulary, specials (and empty tokens) left out."""
    specials = set(getattr(handle, "special_ids", ()) or ())
    out = set()
    for i in range(int(handle.vocab_size)):
        if i in specials:
            continue
        try:
            b = handle.token_bytes(i)
        except (KeyError, IndexError):  # an id with no token (gaps in some tiktoken vocabularies)
            continue
        if b:
            out.add(bytes(b))
    return out


@dataclass
class VocabOverlap:
    """Overlap of two vocabularies as sets of token byte strings."""

    name_a: str
    name_b: str
    tokens_a: set[bytes]
    tokens_b: set[bytes]

    @property
    def shared(self) -> set[bytes]:
        return self.tokens_a & self.tokens_b

    @property
    def only_a(self) -> set[bytes]:
        return self.tokens_a - self.tokens_b

    @property
    def only_b(self) -> set[bytes]:
        return self.tokens_b - self.tokens_a

    @property
    def jaccard(self) -> float:
        union = self.tokens_a | self.tokens_b
        return len(self.shared) / len(union) if union else float("nan")

    def rows(self) -> list[dict]:
        """Tidy rows: overlap counts, Jaccard, mean token length and token-length histograms (bytes)."""
        pair = {"tokenizer": self.name_a, "other": self.name_b}
        rows = [
            {**pair, "metric": "vocab_jaccard", "value": self.jaccard},
            {**pair, "metric": "vocab_shared", "value": len(self.shared)},
            {**pair, "metric": "vocab_only_tokenizer", "value": len(self.only_a)},
            {**pair, "metric": "vocab_only_other", "value": len(self.only_b)},
        ]
        for name, other, toks in ((self.name_a, self.name_b, self.tokens_a), (self.name_b, self.name_a, self.tokens_b)):
            rows.append({"tokenizer": name, "other": other, "metric": "vocab_distinct", "value": len(toks)})
            rows.append(
                {"tokenizer": name, "other": other, "metric": "token_length_mean",
                 "value": _mean([len(t) for t in toks])}
            )
            for length, n in sorted(Counter(len(t) for t in toks).items()):
                rows.append(
                    {"tokenizer": name, "other": other, "metric": "token_length_count",
                     "token_length": length, "value": n}
                )
        return rows


def overlap_rows(handles: Mapping[str, Any]) -> list[dict]:
    """Pairwise :func:`vocab_overlap` rows for ``{name: handle}`` (each unordered pair once)."""
    names = list(handles)
    sets = {n: token_set(handles[n]) for n in names}
    rows: list[dict] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rows += VocabOverlap(a, b, sets[a], sets[b]).rows()
    return rows


def vocab_overlap(handle_a, handle_b) -> VocabOverlap:
    """Compare two vocabularies by token byte strings (``handle.token_bytes``), specials skipped."""
    return VocabOverlap(str(handle_a.name), str(handle_b.name), token_set(handle_a), token_set(handle_b))
