"""A reproducible code + English corpus from software installed on the machine.

:func:`build` reads the sources of ``params.yaml`` (``sources:``), filters and
deduplicates their files, spreads a byte budget over them, splits the kept
documents into train/validation/test and writes::

    data/<profile>/corpus/train.jsonl        one JSON object per document:
    data/<profile>/corpus/validation.jsonl     text, language, domain, source,
    data/<profile>/corpus/test.jsonl           path, sha256
    data/<profile>/corpus/manifest.json      what was read, from which package
                                             version, and what was skipped

Source kinds
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
    budget is split evenly between the domains (code, english), and a domain's
    part evenly between its sources; each source fills its share with whole
    files in the selection order. What a source cannot use (it runs out of
    files or hits the file cap) goes to the other sources of its domain, and
    only when every source of a domain is done, to the other domain
    (water-filling, round after round, until no source can add a file). A
    source stops at the first file that does not fit its share, so the total
    never exceeds the budget.

Split
    A document goes to ``test`` when ``int(sha256[:8], 16) % 10000`` is below
    ``test_fraction * 10000``, to ``validation`` when below
    ``(test_fraction + val_fraction) * 10000``, otherwise to ``train``: the split
    of a document never changes when sources are added or removed.

Building twice from the same installed files gives byte-identical outputs.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import importlib.metadata
import json
import logging
import lzma
import math
import os
import platform
import random
import re
import subprocess
import sysconfig
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from tqdm import tqdm

from tokstudy import paths
from tokstudy.params import DOMAINS, CorpusParams, Params, SourceSpec

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
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
SPLIT_MODULUS = 10_000
REBUILD_HINT = "run notebooks/00_corpus.ipynb or `dvc repro corpus`"


class CorpusError(ValueError):
    """The corpus cannot be built or read; the message names the fix."""


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


# ----------------------------------------------------------------------------- roff


_ROFF_NAMED = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "bu": "\u2022", "aq": "'", "dq": '"',
    "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "co": "\u00a9", "rg": "\u00ae",
    "tm": "\u2122", "mu": "\u00d7", "di": "\u00f7", "de": "\u00b0", "+-": "\u00b1", "<=": "\u2264",
    ">=": "\u2265", "!=": "\u2260", "->": "\u2192", "<-": "\u2190", "ga": "`", "ha": "^", "ti": "~",
    "rs": "\\", "sl": "/", "ba": "|", "or": "|", "lh": "\u261c", "rh": "\u261e", "sc": "\u00a7",
    "ua": "\u2191", "da": "\u2193", "fo": "\u00ab", "fc": "\u00bb", "Fo": "\u00ab", "Fc": "\u00bb",
    "R": "\u00ae", "Tm": "\u2122",
}
# strings defined by the man/mdoc macros and pod2man preambles
_ROFF_STRINGS = {"lq": "\u201c", "rq": "\u201d", "R": "\u00ae", "Tm": "\u2122", "S": "", "Aq": "'",
                 "C`": '"', "C'": '"', "L\"": "\u201c", "R\"": "\u201d", "--": "-", "PI": "\u03c0"}

_ESCAPE = re.compile(
    r"""\\(?:
        (?P<comment>["#].*)                                  # \" comment to end of line
      | \((?P<named2>..)                                     # \(xx
      | \[(?P<named>[^\]]*)\]                                # \[name]
      | \*(?:\((?P<str2>..)|\[(?P<strn>[^\]]*)\]|(?P<str1>.)) # \*x \*(xx \*[name]
      | [fFn](?:\(..|\[[^\]]*\]|.)                           # font / number register
      | s[-+]?(?:\d\d?|\(\d\d|\[[^\]]*\])                    # size
      | [hvwoLlbDxXNHSRZ](?:'[^']*'|\[[^\]]*\]|\|[^|]*\|)?   # drawing, motions, widths
      | k.                                                   # mark
      | (?P<char>.)                                          # anything else
    )""",
    re.VERBOSE,
)
_CHAR_ESCAPES = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t",
                 "&": "", "|": "", "^": "", "%": "", "c": "", "/": "", ",": "", ":": "",
                 "{": "", "}": "", "a": "", "d": "", "u": "", "r": "", "p": "", "z": "",
                 "'": "'", "`": "`", ".": ".", "!": "", "?": "", "j": "", "E": "\\"}

# requests whose arguments are text to keep, and how to join them
_TEXT_MACROS_SPACE = {"SH", "SS", "B", "I", "SM", "SB", "IP", "SY", "OP", "Nm", "Nd", "Sh", "Ss",
                      "Pp", "Dl", "Ar", "Fl", "Cm", "Xr", "It", "Op", "Fn", "Fa", "Ft", "Va",
                      "Ev", "Pa", "Dq", "Sq", "Ql", "Li", "Em", "Sy", "Ic", "Ad", "Er", "Ms", "Tn",
                      "Ux", "At", "Bx", "Ox", "Nx", "Fx", "Lk", "Mt", "No", "Ns", "Pq", "Aq", "Bq"}
_TEXT_MACROS_ALT = {"BR", "RB", "BI", "IB", "IR", "RI"}


def _unescape(line: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group("comment") is not None:
            return ""
        name = m.group("named2") or m.group("named")
        if name is not None:
            return _ROFF_NAMED.get(name, "")
        s = m.group("str2") or m.group("strn") or m.group("str1")
        if s is not None:
            return _ROFF_STRINGS.get(s, "")
        c = m.group("char")
        if c is not None:
            return _CHAR_ESCAPES.get(c, c)
        return ""

    return _ESCAPE.sub(sub, line)


def _split_args(s: str) -> list[str]:
    args, cur, quoted, i = [], [], False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if quoted and i + 1 < len(s) and s[i + 1] == '"':
                cur.append('"')
                i += 1
            else:
                quoted = not quoted
        elif c in " \t" and not quoted:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        args.append("".join(cur))
    return args


def roff_to_text(src: str) -> str:
    """Plain text of a man page: roff requests dropped, text-bearing macros kept.

    Deliberately simple (no macro expansion): headings, paragraphs, option
    lists and examples survive; definitions, conditionals, tables' format lines
    and font/size escapes go. A ``.so`` include-only page gives ``""``.
    """
    out: list[str] = []
    end_block: str | None = None
    in_table_spec = False
    src = re.sub(r"(?<!\\)\\\n", "", src)  # a trailing backslash joins the next line
    for raw in src.splitlines():
        if end_block is not None:
            if raw.strip().startswith(end_block):
                end_block = None
            continue
        if in_table_spec:
            if raw.rstrip().endswith("."):
                in_table_spec = False
            continue
        if raw.startswith((".", "'")):
            body = raw[1:].lstrip()
            if not body or body.startswith(('\\"', "\\#")):
                continue
            name, _, rest = body.partition(" ")
            name = name.strip()
            if name in ("de", "de1", "am", "ig"):
                end_block = ".."
                continue
            if name == "TS":
                in_table_spec = True
                continue
            if name in ("so", "mso"):
                continue
            if name in _TEXT_MACROS_SPACE or name in _TEXT_MACROS_ALT:
                args = [_unescape(a) for a in _split_args(rest)]
                if name == "IP":
                    args = args[:1]  # the tag; the rest is an indent
                joiner = "" if name in _TEXT_MACROS_ALT else " "
                text = joiner.join(args).strip()
                if name in ("SH", "SS", "Sh", "Ss"):
                    out.append("")
                if text:
                    out.append(text)
                continue
            if name in ("PP", "LP", "P", "sp", "TP", "Pp"):
                if out and out[-1] != "":
                    out.append("")
            continue  # any other request
        line = _unescape(raw)
        out.append(line.replace("\t", " ").rstrip())
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n" if text else ""


# ----------------------------------------------------------------------------- versions


@functools.lru_cache(maxsize=None)
def _dpkg_version(pkg: str) -> str | None:
    try:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", pkg],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    v = r.stdout.strip()
    return v if r.returncode == 0 and v else None


def _package_version(pkg: str, spec: SourceSpec) -> tuple[str | None, str | None]:
    """(version, how it was found) of a package a source reads; (None, None) when unknown."""
    v = _dpkg_version(pkg)
    if v:
        return v, "dpkg"
    try:
        return importlib.metadata.version(pkg), "pypi"
    except Exception:  # noqa: BLE001 - unknown distribution, bad metadata: version unknown
        pass
    if spec.root:
        for pj in (Path(spec.root) / pkg / "package.json", Path(spec.root) / "node_modules" / pkg / "package.json"):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                return str(json.loads(pj.read_text(encoding="utf-8"))["version"]), "npm"
    if spec.kind == "zip" and spec.path:
        # a JDK's src.zip lives in <jdk>/lib/; <jdk>/release names the build
        release = Path(spec.path).resolve().parent.parent / "release"
        with contextlib.suppress(OSError):
            fields = dict(
                line.split("=", 1) for line in release.read_text(encoding="utf-8").splitlines() if "=" in line
            )
            v = fields.get("JAVA_RUNTIME_VERSION") or fields.get("JAVA_VERSION")
            if v:
                return v.strip('"'), "jdk-release"
    return None, None


def _versions(spec: SourceSpec) -> tuple[dict, dict]:
    versions, via = {}, {}
    if spec.kind == "python-stdlib":
        versions["python"], via["python"] = platform.python_version(), "interpreter"
    for pkg in spec.package:
        versions[pkg], via[pkg] = _package_version(pkg, spec)
    return versions, via


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


def _rank(rel: str) -> str:
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


def source_root(spec: SourceSpec) -> str:
    if spec.kind == "python-stdlib":
        return spec.root or sysconfig.get_paths()["stdlib"]
    if spec.kind in ("zip", "jsonl"):
        if not spec.path:
            raise CorpusError(f"source {spec.name!r} ({spec.kind}) needs `path`; set sources.{spec.name}.path in params.yaml")
        return spec.path
    if not spec.root:
        raise CorpusError(f"source {spec.name!r} ({spec.kind}) needs `root`; set sources.{spec.name}.root in params.yaml")
    return spec.root


def _include(spec: SourceSpec) -> tuple[str, ...]:
    if spec.kind == "python-stdlib" and spec.include == ("**/*",):
        return ("**/*.py",)
    return spec.include


def _list_dir(spec: SourceSpec, root: str) -> list[_Candidate]:
    if not os.path.isdir(root):
        raise CorpusError(
            f"source {spec.name!r}: directory {root} does not exist; fix sources.{spec.name}.root in params.yaml "
            f"or install {', '.join(spec.package) or 'the files it points to'}"
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
                _Candidate(rel, _rank(rel), functools.partial(_read_file, full), size, symlink=os.path.islink(full))
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
        raise CorpusError(f"source {spec.name!r}: cannot open {path} as a zip ({e}); fix sources.{spec.name}.path") from e
    out = []
    for info in zf.infolist():
        if info.is_dir() or not glob_match(info.filename, spec.include, spec.exclude):
            continue
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        out.append(
            _Candidate(info.filename, _rank(info.filename), functools.partial(zf.read, info), info.file_size, symlink=is_link)
        )
    return out


def _list_jsonl(spec: SourceSpec, path: str) -> tuple[list[_Candidate], Counter]:
    if not os.path.isfile(path):
        raise CorpusError(f"source {spec.name!r}: file {path} does not exist; fix sources.{spec.name}.path in params.yaml")
    skipped: Counter = Counter()
    out = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped["non_utf8"] += 1
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{lineno}: not a JSON object ({e.msg}); each line must be {{\"text\": ...}}") from e
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise CorpusError(f"{path}:{lineno}: needs a string field 'text' (and optionally 'language')")
            rel = f"{os.path.basename(path)}:{lineno}"
            out.append(_Candidate(rel, _rank(rel), text=rec["text"], language=rec.get("language") or None))
    return out, skipped


@dataclass
class _Limits:
    max_file_bytes: int | None = None
    min_file_bytes: int = 1
    max_line_chars: int | None = None


class _SourceReader:
    """Visits one source's candidates in selection order and yields usable documents."""

    def __init__(self, spec: SourceSpec, limits: _Limits, stack: contextlib.ExitStack):
        if spec.kind not in KINDS:
            raise CorpusError(f"source {spec.name!r}: unknown kind {spec.kind!r}; use one of {KINDS}")
        self.spec, self.limits = spec, limits
        self.root = source_root(spec)
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
        self.natural_order = list(cands)  # walk / archive / line order
        cands.sort(key=lambda c: (c.rank, c.rel))
        self.candidates = cands
        self.pos = 0
        self.examined = 0
        self.kept: list[Document] = []
        self.bytes = 0
        self.pending: tuple[Document, int] | None = None
        self.exhausted = False
        self.bar: tqdm | None = None

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def _make(self, c: _Candidate) -> tuple[Document, int] | None:
        lim = self.limits
        if c.symlink:
            return self._skip("symlink")
        if c.size is not None and lim.max_file_bytes is not None and c.size > lim.max_file_bytes:
            return self._skip("too_large")  # cheap: decided without reading
        if c.text is not None:
            text = c.text
        else:
            try:
                data = c.read()
            except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, RuntimeError, ValueError) as e:
                log.debug("source %s: cannot read %s: %s", self.spec.name, c.rel, e)
                return self._skip("unreadable")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return self._skip("non_utf8")
        if "\x00" in text:
            return self._skip("binary")
        if self.spec.kind == "manpages":
            text = roff_to_text(text)
        encoded = text.encode("utf-8", "surrogatepass")
        n = len(encoded)
        if lim.max_file_bytes is not None and n > lim.max_file_bytes:
            return self._skip("too_large")
        if n < max(lim.min_file_bytes, 1) or not text.strip():
            return self._skip("too_small")
        if lim.max_line_chars is not None and max(map(len, text.split("\n"))) > lim.max_line_chars:
            return self._skip("long_line")
        doc = Document(
            text=text,
            language=c.language or self.spec.language,
            domain=self.spec.domain,
            source=self.spec.name,
            path=c.rel,
            sha256=hashlib.sha256(encoded).hexdigest(),
        )
        return doc, n

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


def _limits(cp: CorpusParams) -> _Limits:
    return _Limits(cp.max_file_bytes, cp.min_file_bytes, cp.max_line_chars)


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


def _targets(readers: list[_SourceReader], budget: int, done: set[int]) -> dict[int, int]:
    """Byte target per source: even per domain, then even per source within it; done sources keep their bytes."""
    domains = sorted({r.spec.domain for r in readers})
    members = {dom: [r for r in readers if r.spec.domain == dom] for dom in domains}
    dom_caps = [
        sum(r.bytes for r in members[dom]) if all(id(r) in done for r in members[dom]) else None for dom in domains
    ]
    targets = {}
    for dom, dom_budget in zip(domains, _waterfill(budget, dom_caps)):
        rs = members[dom]
        for r, t in zip(rs, _waterfill(dom_budget, [r.bytes if id(r) in done else None for r in rs])):
            targets[id(r)] = int(t)
    return targets


def _fill(readers: list[_SourceReader], budget: int, max_files: int) -> None:
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
                    r._skip("duplicate")
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
    """The split of a document, from its content hash only."""
    h = int(sha256[:8], 16) % SPLIT_MODULUS
    if h < round(test_fraction * SPLIT_MODULUS):
        return "test"
    if h < round((test_fraction + val_fraction) * SPLIT_MODULUS):
        return "validation"
    return "train"


def _hash_list(hashes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _as_specs(sources: Mapping[str, SourceSpec] | Sequence[SourceSpec] | None, params: Params) -> list[SourceSpec]:
    if sources is None:
        sources = params.sources
    specs = list(sources.values()) if isinstance(sources, Mapping) else list(sources)
    if not specs:
        raise CorpusError("no corpus sources; add some under `sources:` in params.yaml")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise CorpusError(f"duplicate source names {names}; each source needs its own name")
    return specs


def build(
    params: Params,
    out_dir: str | os.PathLike | None = None,
    sources: Mapping[str, SourceSpec] | Sequence[SourceSpec] | None = None,
) -> dict:
    """Build the corpus of ``params`` (or of ``sources``) and return its manifest.

    Writes ``{train,validation,test}.jsonl`` and ``manifest.json`` atomically
    to ``out_dir`` (default ``data/<profile>/corpus``).
    """
    cp = params.corpus
    if cp.val_fraction < 0 or cp.test_fraction < 0 or cp.val_fraction + cp.test_fraction >= 1:
        raise CorpusError(
            f"corpus.val_fraction={cp.val_fraction} + test_fraction={cp.test_fraction} must be in [0, 1); fix params.yaml"
        )
    if cp.budget_bytes <= 0 or cp.max_files_per_source <= 0:
        raise CorpusError("corpus.budget_bytes and corpus.max_files_per_source must be positive; fix params.yaml")
    specs = _as_specs(sources, params)
    out_dir = Path(out_dir) if out_dir is not None else paths.corpus_dir(params.profile)
    limits = _limits(cp)

    with contextlib.ExitStack() as stack:
        readers = [_SourceReader(s, limits, stack) for s in specs]
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

    splits: dict[str, list[Document]] = {s: [] for s in SPLITS}
    for r in readers:
        for doc in r.kept:
            splits[split_of(doc.sha256, cp.val_fraction, cp.test_fraction)].append(doc)

    src_manifest = {}
    for r in readers:
        s = r.spec
        versions, via = _versions(s)
        src_manifest[s.name] = {
            "kind": s.kind,
            "language": s.language,
            "domain": s.domain,
            ("path" if s.kind in ("zip", "jsonl") else "root"): r.root,
            "include": list(_include(s)) if s.kind != "jsonl" else None,
            "exclude": list(s.exclude),
            "packages": list(s.package),
            "versions": versions,
            "version_via": via,
            "candidates": len(r.candidates),
            "examined": r.examined,
            "files": len(r.kept),
            "bytes": r.bytes,
            "sha256": _hash_list(d.sha256 for d in r.kept),
            "exhausted": r.exhausted,
            "skipped": dict(r.skipped),
        }
    split_manifest = {}
    for name, docs in splits.items():
        langs: dict[str, dict[str, int]] = {}
        for d in sorted(docs, key=lambda d: d.language):
            e = langs.setdefault(d.language, {"documents": 0, "bytes": 0})
            e["documents"] += 1
            e["bytes"] += d.nbytes
        split_manifest[name] = {
            "documents": len(docs),
            "bytes": sum(e["bytes"] for e in langs.values()),
            "sha256": _hash_list(d.sha256 for d in docs),
            "languages": langs,
        }
    all_docs = [d for r in readers for d in r.kept]
    manifest = {
        "profile": params.profile,
        "documents": len(all_docs),
        "bytes": sum(r.bytes for r in readers),
        "sha256": _hash_list(d.sha256 for d in all_docs),
        "corpus_params": dataclasses.asdict(cp),
        "selection": "candidates in sha256(relative path) order; whole files; even byte share per domain, "
        "then per source within a domain; unused shares go to the domain's other sources, then to the other domain",
        "split_rule": f"int(sha256[:8],16) % {SPLIT_MODULUS}: < test_fraction*{SPLIT_MODULUS} -> test, "
        f"< (test_fraction+val_fraction)*{SPLIT_MODULUS} -> validation, else train",
        "sources": src_manifest,
        "splits": split_manifest,
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
        params.profile, manifest["documents"], manifest["bytes"], out_dir,
        ", ".join(f"{k} {v['documents']}" for k, v in split_manifest.items()),
    )
    return manifest


# ----------------------------------------------------------------------------- reading back


def load(profile: str, split: str, corpus_dir: str | os.PathLike | None = None) -> list[Document]:
    """The documents of one split of a built corpus."""
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; use one of {SPLITS}")
    d = Path(corpus_dir) if corpus_dir is not None else paths.corpus_dir(profile)
    f = d / f"{split}.jsonl"
    if not f.is_file():
        raise CorpusError(f"no corpus for profile {profile!r} at {f}; {REBUILD_HINT} (profile={profile})")
    docs = []
    with open(f, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                docs.append(Document(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise CorpusError(f"{f}:{lineno} is corrupt ({e}); {REBUILD_HINT}") from e
    return docs


def load_or_build(params: Params, split: str) -> list[Document]:
    """:func:`load`; in the ``smoke`` profile a missing corpus is built first, so a
    notebook opened on its own runs top to bottom (other profiles get the error
    naming the DVC stage)."""
    if params.profile == "smoke" and not (paths.corpus_dir(params.profile) / f"{split}.jsonl").is_file():
        build(params)
    return load(params.profile, split)


def load_manifest(profile: str, corpus_dir: str | os.PathLike | None = None) -> dict:
    d = Path(corpus_dir) if corpus_dir is not None else paths.corpus_dir(profile)
    f = d / "manifest.json"
    if not f.is_file():
        raise CorpusError(f"no corpus manifest for profile {profile!r} at {f}; {REBUILD_HINT}")
    return json.loads(f.read_text(encoding="utf-8"))


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
        log.warning("sample_mix: corpus too small for %d bytes at mix %s; sampling %d bytes", budget_bytes, dict(mix), budget)
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


#: file extension -> language, for user folders read with ``language="auto"``
EXTENSION_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".c": "c", ".h": "c", ".cc": "c++", ".cpp": "c++", ".hpp": "c++",
    ".cxx": "c++", ".java": "java", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust",
    ".rb": "ruby", ".php": "php", ".cs": "c#", ".kt": "kotlin", ".swift": "swift", ".scala": "scala",
    ".sh": "shell", ".bash": "shell", ".lua": "lua", ".pl": "perl", ".r": "r", ".jl": "julia",
    ".sql": "sql", ".hs": "haskell", ".ex": "elixir", ".dart": "dart", ".m": "objective-c",
    ".md": "markdown", ".rst": "english", ".txt": "english", "": "english",
}
PROSE_LANGUAGES = {"english", "markdown"}


def guess_language(path: str) -> tuple[str, str]:
    """``(language, domain)`` of a file from its extension (unknown extensions count as English text)."""
    ext = os.path.splitext(path)[1].lower()
    language = EXTENSION_LANGUAGES.get(ext, "english")
    return language, ("english" if language in PROSE_LANGUAGES else "code")


def read_user_source(
    path: str | os.PathLike,
    language: str,
    domain: str,
    corpus_params: CorpusParams | None = None,
) -> list[Document]:
    """Documents of a user directory (every file, recursively, in sorted path order) or a ``.jsonl`` file (line order).

    Invalid UTF-8, binary and empty files, symlinks and duplicates are dropped
    (and logged); ``corpus_params`` adds the size and line-length filters.
    Records of a JSONL file may carry their own ``language``.
    ``language="auto"`` / ``domain="auto"`` take them from each file's extension
    (:func:`guess_language`), so one folder of mixed code gives one dataset per language.
    """
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"user source {p} does not exist; pass a directory or a .jsonl file")
    if language == "auto" or domain == "auto":
        docs = read_user_source(p, "user" if language == "auto" else language, "code", corpus_params)
        out = []
        for d in docs:
            if d.language == "user":
                lang, dom = guess_language(d.path)
            else:  # a JSONL record that names its own language
                lang, dom = d.language, ("english" if d.language in PROSE_LANGUAGES else "code")
            out.append(dataclasses.replace(d, language=lang if language == "auto" else d.language,
                                           domain=dom if domain == "auto" else domain))
        return out
    if domain not in DOMAINS:
        raise CorpusError(f"domain must be one of {DOMAINS}, got {domain!r}")
    name = p.stem or "user"
    if p.is_dir():
        spec = SourceSpec(name=name, kind="dir", language=language, domain=domain, root=str(p), path=None,
                          include=("**/*",), exclude=(), package=())
    else:
        spec = SourceSpec(name=name, kind="jsonl", language=language, domain=domain, root=None, path=str(p),
                          include=("**/*",), exclude=(), package=())
    limits = _limits(corpus_params) if corpus_params is not None else _Limits()
    with contextlib.ExitStack() as stack:
        reader = _SourceReader(spec, limits, stack)
        reader.candidates = reader.natural_order  # a user source keeps its own order
        seen: set[str] = set()
        docs = []
        while (got := reader.next()) is not None:
            doc = got[0]
            if doc.sha256 in seen:
                reader._skip("duplicate")
                continue
            seen.add(doc.sha256)
            docs.append(doc)
    skipped = {k: v for k, v in reader.skipped.items() if v}
    if skipped:
        log.info("user source %s: kept %d documents, skipped %s", p, len(docs), skipped)
    if not docs:
        raise CorpusError(f"no usable files under {p} (skipped {skipped}); it needs UTF-8 text files or 'text' records")
    return docs


__all__ = [
    "CorpusError",
    "Document",
    "SPLITS",
    "SKIP_REASONS",
    "build",
    "load",
    "load_manifest",
    "datasets",
    "sample_mix",
    "read_user_source",
    "roff_to_text",
    "split_of",
    "glob_match",
]
