"""Corpus sources: documents, validated JSONL records, globs and the per-source reader.

A :class:`SourceReader` lists the candidates of one ``params.yaml`` source
(``python-stdlib``, ``dir``, ``zip``, ``manpages``, ``jsonl``), visits them in
the order of the sha256 of their relative path and yields the usable
documents; skipped files are counted by reason (:data:`SKIP_REASONS`).
:func:`jsonl_records` validates every line of a JSONL file (ours or a user's)
and names ``file:line`` in the error. :func:`group_key` names the split group of a
document (see "Split groups" in :mod:`tokstudy.corpus`).
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import json
import logging
import lzma
import os
import posixpath
import re
import sysconfig
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tokstudy.errors import CorpusError
from tokstudy.params import DOMAINS, CorpusParams, SourceSpec
from tokstudy.roff import roff_to_text

log = logging.getLogger(__name__)

KINDS = ("python-stdlib", "dir", "zip", "manpages", "jsonl")
SKIP_REASONS = (
    "symlink",
    "unreadable",
    "non_utf8",
    "binary",
    "too_large",
    "too_small",
    "long_line",
    "duplicate",
)


@dataclass(frozen=True)
class Document:
    text: str
    language: str
    domain: str
    source: str
    path: str
    sha256: str  # of text.encode("utf-8")

    @property
    def nbytes(self) -> int:
        return len(self.text.encode("utf-8"))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def sha256_text(text: str) -> str:
    """The sha256 of a document's UTF-8 bytes (lone surrogates kept, as the build stores them)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_DOCUMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Document))


def check_record(rec: object, where: str, fix: str, *, document: bool = False) -> dict:
    """``rec`` if it is a valid record, else a one-line :class:`CorpusError` naming ``where`` and ``fix``.

    Any record: a JSON object whose ``text`` is a string; ``language`` (when
    present) a non-empty string, ``domain`` one of :data:`DOMAINS`, ``sha256``
    the hash of ``text``. ``document=True`` (a built corpus) also requires
    exactly the fields of :class:`Document`, all present.
    """
    if not isinstance(rec, dict):
        raise CorpusError(f"{where}: a record must be a JSON object, got {type(rec).__name__}; {fix}")
    if document:
        missing = [k for k in _DOCUMENT_FIELDS if k not in rec]
        extra = sorted(set(rec) - set(_DOCUMENT_FIELDS))
        if missing or extra:
            problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])
            raise CorpusError(f"{where}: fields {' and '.join(problems)}; {fix}")
        for k in ("source", "path"):
            if not isinstance(rec[k], str):
                raise CorpusError(f"{where}: {k!r} must be a string, got {rec[k]!r}; {fix}")
    text = rec.get("text")
    if not isinstance(text, str):
        raise CorpusError(f"{where}: needs a string field 'text', got {json.dumps(text)[:40]}; {fix}")
    lang = rec.get("language")
    if (document or lang is not None) and not (isinstance(lang, str) and lang.strip()):
        raise CorpusError(f"{where}: 'language' must be a non-empty string, got {lang!r}; {fix}")
    dom = rec.get("domain")
    if (document or dom is not None) and dom not in DOMAINS:
        raise CorpusError(f"{where}: 'domain' must be one of {DOMAINS}, got {dom!r}; {fix}")
    sha = rec.get("sha256")
    if document or sha is not None:
        actual = sha256_text(text)
        if sha != actual:
            raise CorpusError(f"{where}: 'sha256' {str(sha)[:16]}... does not match its text ({actual[:16]}...); {fix}")
    return rec


def jsonl_records(path: str | os.PathLike, fix: str, *, document: bool = False,
                  non_utf8: Counter | None = None) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of each non-blank line of a JSONL file, validated by :func:`check_record`.

    A line that is not UTF-8 is an error, or, when a ``non_utf8`` counter is
    given, counted there under ``"non_utf8"`` and skipped.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if non_utf8 is None:
                    raise CorpusError(f"{where}: not UTF-8 ({e.reason}); {fix}") from e
                non_utf8["non_utf8"] += 1
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{where}: not a JSON object ({e.msg}); {fix}") from e
            yield lineno, check_record(rec, where, fix, document=document)


# ----------------------------------------------------------------------------- globs


def _segment_regex(seg: str) -> str:
    out, i = [], 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in seg[i + 2 :]:
            j = seg.index("]", i + 2)
            body = seg[i + 1 : j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern:
    """Compile a ``**``-aware glob on ``/``-separated relative paths."""
    parts = pattern.strip("/").split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment_regex(part) + ("" if last else "/"))
    return re.compile("".join(out), re.DOTALL)


def glob_match(rel: str, include: Sequence[str], exclude: Sequence[str] = ()) -> bool:
    """``rel`` matches one ``include`` glob and no ``exclude`` glob."""
    return any(glob_regex(p).fullmatch(rel) for p in include) and not any(
        glob_regex(p).fullmatch(rel) for p in exclude
    )


# ----------------------------------------------------------------------------- sources


@dataclass
class _Candidate:
    rel: str
    rank: str
    read: Callable[[], bytes] | None = None  # raw bytes (decompressed)
    size: int | None = None  # plain on-disk size when it equals the text's byte size
    text: str | None = None  # already decoded (jsonl)
    language: str | None = None
    symlink: bool = False


def path_rank(rel: str) -> str:
    """The selection key of a relative path: its sha256 (independent of any filesystem order)."""
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()


def _read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".bz2"):
        return bz2.decompress(data)
    return data


def source_root(spec: SourceSpec, base: str | None = None) -> str:
    """The directory (``dir``, ``manpages``, ``python-stdlib``) or file (``zip``, ``jsonl``) ``spec`` reads.

    ``base`` is the unpacked artifact of a fetched source: ``root`` / ``path`` are relative to it.
    """
    key = "path" if spec.kind in ("zip", "jsonl") else "root"
    value = getattr(spec, key)
    if spec.kind == "python-stdlib" and not value and base is None:
        return sysconfig.get_paths()["stdlib"]
    if not value and not (base is not None and key == "root"):
        raise CorpusError(
            f"source {spec.name!r} ({spec.kind}) needs `{key}`; set sources.{spec.name}.{key} in params.yaml"
        )
    if base is None:
        return value
    if os.path.isabs(value or "") or ".." in Path(value or "").parts:
        raise CorpusError(f"source {spec.name!r}: {key} {value!r} must be relative to the fetched {spec.fetch}; "
                          f"fix sources.{spec.name}.{key} in params.yaml")
    return os.path.join(base, value) if value else base


def _include(spec: SourceSpec) -> tuple[str, ...]:
    if spec.kind == "python-stdlib" and spec.include == ("**/*",):
        return ("**/*.py",)
    return spec.include


def _list_dir(spec: SourceSpec, root: str) -> list[_Candidate]:
    if not os.path.isdir(root):
        raise CorpusError(
            f"source {spec.name!r}: directory {root} does not exist; fix sources.{spec.name}.root in params.yaml "
            + (f"(a folder inside {spec.fetch})" if spec.fetch else
               f"or install {', '.join(spec.package) or 'the files it points to'}")
        )
    include, exclude = _include(spec), spec.exclude
    out = []
    for dirpath, dirnames, filenames in os.walk(root):  # never follows directory symlinks
        dirnames.sort()
        reldir = os.path.relpath(dirpath, root)
        reldir = "" if reldir == "." else reldir.replace(os.sep, "/") + "/"
        for fn in sorted(filenames):
            rel = reldir + fn
            if not glob_match(rel, include, exclude):
                continue
            full = os.path.join(dirpath, fn)
            compressed = fn.endswith((".gz", ".xz", ".bz2"))
            size = None
            if not compressed and spec.kind != "manpages":
                with contextlib.suppress(OSError):
                    size = os.lstat(full).st_size
            out.append(
                _Candidate(rel, path_rank(rel), functools.partial(_read_file, full), size, symlink=os.path.islink(full))
            )
    return out


def _list_zip(spec: SourceSpec, path: str, stack: contextlib.ExitStack) -> list[_Candidate]:
    if not os.path.isfile(path):
        raise CorpusError(
            f"source {spec.name!r}: archive {path} does not exist (or is a dangling link); fix "
            f"sources.{spec.name}.path in params.yaml or install {', '.join(spec.package) or 'the package'}"
        )
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (OSError, zipfile.BadZipFile) as e:
        raise CorpusError(
            f"source {spec.name!r}: cannot open {path} as a zip ({e}); fix sources.{spec.name}.path"
        ) from e
    out = []
    for info in zf.infolist():
        if info.is_dir() or not glob_match(info.filename, spec.include, spec.exclude):
            continue
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        out.append(
            _Candidate(info.filename, path_rank(info.filename), functools.partial(zf.read, info), info.file_size,
                       symlink=is_link)
        )
    return out


def _list_jsonl(spec: SourceSpec, path: str) -> tuple[list[_Candidate], Counter]:
    if not os.path.isfile(path):
        raise CorpusError(
            f"source {spec.name!r}: file {path} does not exist; fix sources.{spec.name}.path in params.yaml"
        )
    skipped: Counter = Counter()
    fix = f"each line of sources.{spec.name}.path must be {{\"text\": \"...\"}} (domain {spec.domain!r} if given)"
    out = []
    for lineno, rec in jsonl_records(path, fix, non_utf8=skipped):
        if rec.get("domain", spec.domain) != spec.domain:
            raise CorpusError(f"{path}:{lineno}: domain {rec['domain']!r} differs from sources.{spec.name}.domain "
                              f"{spec.domain!r}; put other-domain records in their own source")
        rel = f"{os.path.basename(path)}:{lineno}"
        out.append(_Candidate(rel, path_rank(rel), text=rec["text"], language=rec.get("language")))
    return out, skipped


# ----------------------------------------------------------------------------- split groups

FLAT_SHARE = 0.5  # a directory holding more than this share of a source's candidates is a flat collection
_COMPRESSED = (".gz", ".xz", ".bz2")


def man_page_name(rel: str) -> str:
    """The page of a man-page file, the same in every section: ``man3/printf.3.gz`` -> ``printf``."""
    base = posixpath.basename(rel)
    for ext in _COMPRESSED:
        base = base.removesuffix(ext)
    return base.rsplit(".", 1)[0] if "." in base.strip(".") else base


def flat_dirs(rels: Sequence[str]) -> frozenset[str]:
    """The directories (``""``: the root) that hold more than :data:`FLAT_SHARE` of ``rels``.

    Such a directory is a collection of independent files (bash completions, Linux UAPI
    headers, one page per library module), not a package: its files are grouped one by one.
    """
    counts = Counter(posixpath.dirname(r) for r in rels)
    return frozenset(d for d, n in counts.items() if n > FLAT_SHARE * len(rels))


def group_key(kind: str, rel: str, flat: frozenset[str] = frozenset()) -> str:
    """The split group of the document at ``rel`` (relative to its source's root) in a source of ``kind``.

    ``page:<name>`` for a man page (all sections, and every language's translation, of one page share
    a key); ``file:<rel>`` for a JSONL record, a file at the source root or in a flat directory
    (``flat``, see :func:`flat_dirs`); else ``dir:<directory>/``, the directory the file sits in.
    """
    if kind == "manpages":
        return f"page:{man_page_name(rel)}"
    if kind == "jsonl":
        return f"file:{rel}"
    d = posixpath.dirname(rel)
    return f"file:{rel}" if d == "" or d in flat else f"dir:{d}/"


@dataclass
class Limits:
    """Size filters of a document (None: no limit)."""

    max_file_bytes: int | None = None
    min_file_bytes: int = 1
    max_line_chars: int | None = None

    @classmethod
    def of(cls, cp: CorpusParams) -> Limits:
        return cls(cp.max_file_bytes, cp.min_file_bytes, cp.max_line_chars)


def text_problem(text: str, limits: Limits) -> str | None:
    """The skip reason of a decoded text (``binary``, ``too_large``, ``too_small``, ``long_line``); None if usable."""
    if "\x00" in text:
        return "binary"
    n = len(text.encode("utf-8", "surrogatepass"))
    if limits.max_file_bytes is not None and n > limits.max_file_bytes:
        return "too_large"
    if n < max(limits.min_file_bytes, 1) or not text.strip():
        return "too_small"
    if limits.max_line_chars is not None and max(map(len, text.split("\n"))) > limits.max_line_chars:
        return "long_line"
    return None


class SourceReader:
    """Visits one source's candidates in selection order and yields usable documents."""

    def __init__(self, spec: SourceSpec, limits: Limits, stack: contextlib.ExitStack, base: str | None = None):
        if spec.kind not in KINDS:
            raise CorpusError(f"source {spec.name!r}: unknown kind {spec.kind!r}; use one of {KINDS}")
        self.spec, self.limits = spec, limits
        self.root = source_root(spec, base)
        self.include = _include(spec)
        self.skipped: Counter = Counter({r: 0 for r in SKIP_REASONS})
        if spec.kind == "zip":
            cands = _list_zip(spec, self.root, stack)
        elif spec.kind == "jsonl":
            cands, pre = _list_jsonl(spec, self.root)
            self.skipped.update(pre)
        else:
            cands = _list_dir(spec, self.root)
        if not cands:
            raise CorpusError(
                f"no files under {self.root} match sources.{spec.name}.include {list(_include(spec))} "
                f"(exclude {list(spec.exclude)}); check sources.{spec.name}.root/include in params.yaml"
            )
        cands.sort(key=lambda c: (c.rank, c.rel))
        self.candidates = cands
        self.flat = flat_dirs([c.rel for c in cands]) if spec.kind not in ("manpages", "jsonl") else frozenset()
        self.pos = 0
        self.examined = 0
        self.kept: list[Document] = []
        self.bytes = 0
        self.pending: tuple[Document, int] | None = None
        self.exhausted = False
        self.bar: tqdm | None = None

    def group(self, rel: str) -> str:
        """The split group of this source's document at ``rel`` (:func:`group_key`)."""
        return group_key(self.spec.kind, rel, self.flat)

    def skip(self, reason: str) -> None:
        """Count one skipped candidate under ``reason``."""
        self.skipped[reason] += 1

    def _make(self, c: _Candidate) -> tuple[Document, int] | None:
        lim = self.limits
        if c.symlink:
            return self.skip("symlink")
        if c.size is not None and lim.max_file_bytes is not None and c.size > lim.max_file_bytes:
            return self.skip("too_large")  # cheap: decided without reading
        if c.text is not None:
            text = c.text
        else:
            try:
                data = c.read()
            except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, RuntimeError, ValueError) as e:
                log.debug("source %s: cannot read %s: %s", self.spec.name, c.rel, e)
                return self.skip("unreadable")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return self.skip("non_utf8")
        if "\x00" in text:
            return self.skip("binary")
        if self.spec.kind == "manpages":
            text = roff_to_text(text)
        problem = text_problem(text, lim)
        if problem is not None:
            return self.skip(problem)
        doc = Document(
            text=text,
            language=c.language or self.spec.language,
            domain=self.spec.domain,
            source=self.spec.name,
            path=c.rel,
            sha256=sha256_text(text),
        )
        return doc, len(text.encode("utf-8", "surrogatepass"))

    def next(self) -> tuple[Document, int] | None:
        """The next usable document (the pending one first); None when exhausted."""
        if self.pending is not None:
            got, self.pending = self.pending, None
            return got
        while self.pos < len(self.candidates):
            c = self.candidates[self.pos]
            self.pos += 1
            self.examined += 1
            if self.bar is not None:
                if self.bar.desc != f"corpus {self.spec.name}":
                    self.bar.set_description_str(f"corpus {self.spec.name}", refresh=False)
                self.bar.update(1)
            got = self._make(c)
            if got is not None:
                return got
        self.exhausted = True
        return None


__all__ = [
    "CorpusError", "Document", "KINDS", "SKIP_REASONS", "Limits", "SourceReader",
    "FLAT_SHARE", "check_record", "jsonl_records", "flat_dirs", "glob_match", "group_key", "man_page_name",
    "path_rank", "sha256_text", "source_root", "text_problem",
]
