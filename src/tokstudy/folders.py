"""A user's folder or JSONL file as documents (``tokstudy compare`` / ``train --data``).

A folder is read like ``git`` sees a project:

* ``.gitignore`` files (nested ones too; parsed by the ``pathspec`` library)
  are honoured, and :data:`SKIP_DIRS` (``.git``, ``.venv``, ``node_modules``,
  ``vendor``, ``build``, ...) are never entered;
* ``include`` / ``exclude`` are gitignore-style globs on the relative path;
* the language comes from the extension (:data:`EXTENSION_LANGUAGES`: code,
  markup, styles, templates, config, prose; ``extensions`` adds or overrides
  entries, ``tokstudy compare --ext .foo=lang``); a file with an unknown
  extension (``.json``, ``.lock``, none) is skipped and counted per extension,
  never called English;
* a file over ``max_file_bytes`` is skipped before it is read, one with a line
  over ``max_line_chars`` after (minified or generated);
* files are visited in the order of the sha256 of their relative path, so
  ``max_docs`` (per language) takes a deterministic sample, not the first
  files by name; files beyond the cap are never read.

Everything not read is counted in the :class:`FolderReport` the caller prints.
A ``.jsonl`` file gives one document per validated record
(:func:`tokstudy.sources.check_record`), in the same hash order.

The extension table is a plain dict rather than Pygments' lexer table:
Pygments also names data formats (JSON, YAML, INI) as languages, resolves
ambiguous extensions by sniffing the content, and renames lexers between
releases; the study needs a short, stable list. Markup, styles, templates
and configuration count as languages of the ``code`` domain, each under its
own name, so a user sees (and can exclude) them apart from the source code.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from tokstudy.errors import CorpusError
from tokstudy.params import DOMAINS
from tokstudy.sources import Document, Limits, jsonl_records, path_rank, sha256_text, text_problem

#: folders never entered (VCS, virtual environments, dependencies, build output, caches)
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", "node_modules", "bower_components", "__pycache__",
    "vendor", "third_party", "third-party", "dist", "build", "target", "site-packages", ".tox", ".nox",
    ".eggs", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".idea", ".vscode", ".dvc",
})

#: file extension -> language; prose languages (:data:`PROSE_LANGUAGES`) are the ``english`` domain
EXTENSION_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".c": "c", ".h": "c", ".cc": "c++", ".cpp": "c++", ".cxx": "c++",
    ".hpp": "c++", ".hh": "c++", ".hxx": "c++", ".java": "java", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".php": "php", ".cs": "c#", ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift", ".scala": "scala", ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".lua": "lua",
    ".pl": "perl", ".pm": "perl", ".r": "r", ".jl": "julia", ".sql": "sql", ".hs": "haskell",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".dart": "dart", ".clj": "clojure",
    ".ml": "ocaml", ".mli": "ocaml", ".fs": "f#", ".f90": "fortran", ".zig": "zig", ".nim": "nim",
    ".groovy": "groovy", ".ps1": "powershell", ".fish": "shell", ".bat": "batch", ".cmd": "batch",
    ".mm": "objective-c", ".vb": "visual-basic", ".proto": "protobuf",
    ".graphql": "graphql", ".gql": "graphql", ".tf": "terraform", ".cmake": "cmake", ".mk": "make",
    # markup, styles, templates (each its own language: their token statistics differ from the code's)
    ".html": "html", ".htm": "html", ".xhtml": "html", ".xml": "xml", ".svg": "xml", ".vue": "vue",
    ".svelte": "svelte", ".css": "css", ".scss": "scss", ".sass": "sass", ".less": "less", ".styl": "stylus",
    ".ejs": "ejs", ".jinja": "jinja", ".jinja2": "jinja", ".j2": "jinja", ".njk": "nunjucks",
    ".hbs": "handlebars", ".handlebars": "handlebars", ".mustache": "mustache", ".pug": "pug", ".erb": "erb",
    ".twig": "twig", ".liquid": "liquid", ".tex": "latex",
    # configuration (.json is left out: mostly data and lock files; `--ext .json=json` adds it)
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".ini": "ini", ".cfg": "ini", ".conf": "ini",
    ".properties": "ini",
    ".md": "markdown", ".markdown": "markdown", ".rst": "english", ".txt": "english", ".adoc": "english",
}
PROSE_LANGUAGES = frozenset({"english", "markdown"})
MAX_FILE_BYTES = 1_000_000
MAX_LINE_CHARS = 1_000


@dataclass
class FolderReport:
    """What was read from a user source and what was not, by reason."""

    path: str
    kept: Counter = field(default_factory=Counter)  # language -> documents
    skipped: Counter = field(default_factory=Counter)  # reason -> files (or records)
    unknown_extensions: Counter = field(default_factory=Counter)  # ".json" -> files
    skipped_dirs: Counter = field(default_factory=Counter)  # folder name -> folders not entered

    def summary(self) -> str:
        """One line: documents kept per language, then every skip count."""
        kept = ", ".join(f"{k} {v}" for k, v in sorted(self.kept.items())) or "nothing"
        parts = [f"{k} {v}" for k, v in sorted(self.skipped.items()) if v]
        if self.unknown_extensions:
            exts = ", ".join(f"{k} {v}" for k, v in self.unknown_extensions.most_common())
            parts.append(f"unknown extensions ({exts})")
        if self.skipped_dirs:
            dirs = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped_dirs.items()))
            parts.append(f"folders not entered ({dirs})")
        return f"{self.path}: read {kept}; skipped: {'; '.join(parts) or 'nothing'}"


def language_of(rel: str, extensions: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(language, domain)`` of a file from its extension; None for an unknown extension.

    ``extensions`` (``{".foo": "lang"}``) is looked up before :data:`EXTENSION_LANGUAGES`.

    >>> language_of("site/base.j2"), language_of("a.foo", {".foo": "python"}), language_of("a.foo")
    (('jinja', 'code'), ('python', 'code'), None)
    """
    ext = os.path.splitext(rel)[1].lower()
    language = (extensions or {}).get(ext) or EXTENSION_LANGUAGES.get(ext)
    return None if language is None else (language, _domain(language))


def parse_extension(text: str) -> tuple[str, str]:
    """``".foo=lang"`` as ``(".foo", "lang")`` (``tokstudy compare --ext``); else a one-line :class:`CorpusError`.

    >>> parse_extension(".TPL=html")
    ('.tpl', 'html')
    """
    ext, sep, language = text.partition("=")
    ext, language = ext.strip().lower(), language.strip().lower()
    if not (sep and re.fullmatch(r"\.[a-z0-9_+-]+", ext) and re.fullmatch(r"[a-z0-9][a-z0-9_+#.-]*", language)):
        raise CorpusError(f"{text!r} is not .EXT=LANGUAGE; write e.g. .tpl=html (an extension with its dot, a "
                          "language name of letters, digits, + # . _ -)")
    return ext, language


def _domain(language: str) -> str:
    return "english" if language in PROSE_LANGUAGES else "code"


def _globs(patterns: Sequence[str]) -> pathspec.PathSpec | None:
    return pathspec.PathSpec.from_lines("gitignore", patterns) if patterns else None


class _GitIgnores:
    """The ``.gitignore`` files met on the way down; the deepest file with a matching pattern decides."""

    def __init__(self) -> None:
        self.specs: dict[str, pathspec.GitIgnoreSpec] = {}  # "" or "sub/dir/" -> its .gitignore

    def add(self, reldir: str, dirpath: str) -> None:
        f = os.path.join(dirpath, ".gitignore")
        if not os.path.isfile(f):
            return
        try:
            with open(f, encoding="utf-8") as fh:
                self.specs[reldir] = pathspec.GitIgnoreSpec.from_lines(fh)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise CorpusError(f"{f}: cannot read this .gitignore ({e}); fix or remove it") from e

    def ignored(self, rel: str) -> bool:
        """``rel`` ("a/b.py", or "a/b/" for a folder) is ignored by the nearest .gitignore that matches it."""
        parts = rel.rstrip("/").split("/")
        for depth in range(len(parts) - 1, -1, -1):
            base = "".join(p + "/" for p in parts[:depth])
            spec = self.specs.get(base)
            if spec is not None:
                decision = spec.check_file(rel[len(base):]).include
                if decision is not None:
                    return decision
        return False


def _walk(root: str, include, exclude, skip_dirs: Iterable[str], report: FolderReport) -> list[str]:
    """Relative paths of the files under ``root`` that git would see and the globs allow."""
    ignores, skip_dirs, out = _GitIgnores(), frozenset(skip_dirs), []
    for dirpath, dirnames, filenames in os.walk(root):  # never follows directory symlinks
        reldir = os.path.relpath(dirpath, root)
        reldir = "" if reldir == "." else reldir.replace(os.sep, "/") + "/"
        ignores.add(reldir, dirpath)
        keep = []
        for d in sorted(dirnames):
            rel = reldir + d + "/"
            if d in skip_dirs or d.endswith(".egg-info"):
                report.skipped_dirs[d] += 1
            elif ignores.ignored(rel):
                report.skipped["gitignored"] += 1
            elif exclude is not None and exclude.match_file(rel):
                report.skipped["excluded"] += 1
            else:
                keep.append(d)
        dirnames[:] = keep
        for fn in sorted(filenames):
            rel = reldir + fn
            if ignores.ignored(rel):
                report.skipped["gitignored"] += 1
            elif (exclude is not None and exclude.match_file(rel)) or (
                include is not None and not include.match_file(rel)
            ):
                report.skipped["excluded"] += 1
            elif os.path.islink(os.path.join(dirpath, fn)):
                report.skipped["symlink"] += 1
            else:
                out.append(rel)
    return out


def _read_text(full: str, limits: Limits) -> tuple[str | None, str | None]:
    """(text, None) or (None, skip reason); a file over the size cap is not read."""
    try:
        if limits.max_file_bytes is not None and os.stat(full).st_size > limits.max_file_bytes:
            return None, "too_large"
        with open(full, "rb") as fh:
            data = fh.read()
    except OSError:
        return None, "unreadable"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "non_utf8"
    problem = text_problem(text, limits)
    return (None, problem) if problem else (text, None)


class _Keeper:
    """Keeps documents: drops duplicates, caps each language at ``max_docs``, counts it all."""

    def __init__(self, report: FolderReport, max_docs: int | None, source: str):
        self.report, self.max_docs, self.source = report, max_docs, source
        self.seen: set[str] = set()
        self.docs: list[Document] = []

    def full(self, language: str) -> bool:
        if self.max_docs is not None and self.report.kept[language] >= self.max_docs:
            self.report.skipped["over_max_docs"] += 1
            return True
        return False

    def add(self, text: str, language: str, domain: str, rel: str) -> None:
        sha = sha256_text(text)
        if sha in self.seen:
            self.report.skipped["duplicate"] += 1
            return
        self.seen.add(sha)
        self.docs.append(Document(text, language, domain, self.source, rel, sha))
        self.report.kept[language] += 1


def _read_dir(root: Path, language: str, domain: str, walked: list[str], limits: Limits, keeper: _Keeper,
              extensions: Mapping[str, str] | None = None) -> None:
    for rel in sorted(walked, key=lambda r: (path_rank(r), r)):
        if language == "auto":
            guessed = language_of(rel, extensions)
            if guessed is None:
                ext = os.path.splitext(rel)[1].lower() or "(no extension)"
                keeper.report.unknown_extensions[ext] += 1
                keeper.report.skipped["unknown_extension"] += 1
                continue
            lang, dom = guessed
        else:
            lang, dom = language, _domain(language)
        if keeper.full(lang):
            continue
        text, problem = _read_text(str(root / rel), limits)
        if problem:
            keeper.report.skipped[problem] += 1
            continue
        keeper.add(text, lang, dom if domain == "auto" else domain, rel)


def _read_jsonl(path: Path, language: str, domain: str, limits: Limits, keeper: _Keeper) -> None:
    fix = 'each line must be {"text": "...", "language": "..."} ("language" may be left out for `train --data`)'
    records = []
    for lineno, rec in jsonl_records(path, fix, non_utf8=keeper.report.skipped):
        lang = rec.get("language") or (None if language == "auto" else language)
        if lang is None:
            raise CorpusError(f"{path}:{lineno}: no 'language' in the record and language='auto'; {fix}")
        rel = f"{path.name}:{lineno}"
        records.append((path_rank(rel), rel, rec, lang))
    for _, rel, rec, lang in sorted(records, key=lambda r: r[:2]):
        if keeper.full(lang):
            continue
        problem = text_problem(rec["text"], limits)
        if problem:
            keeper.report.skipped[problem] += 1
            continue
        dom = rec.get("domain") or (_domain(lang) if domain == "auto" else domain)
        keeper.add(rec["text"], lang, dom, rel)


def read_user_source(
    path: str | os.PathLike,
    language: str = "auto",
    domain: str = "auto",
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_file_bytes: int | None = MAX_FILE_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_docs: int | None = None,
    skip_dirs: Iterable[str] = SKIP_DIRS,
    extensions: Mapping[str, str] | None = None,
) -> tuple[list[Document], FolderReport]:
    """Documents of a user folder or ``.jsonl`` file (see the module docstring) and the report of what was skipped.

    ``language="auto"`` names each file's language by its extension (a JSONL
    record by its ``language`` field); another value labels every file (or
    record without a language) with it; ``extensions`` (``{".foo": "lang"}``, from
    :func:`parse_extension`) adds to or overrides :data:`EXTENSION_LANGUAGES`. ``domain="auto"`` follows the language.
    ``max_docs`` caps the documents per language. Documents come in the order
    of the sha256 of their relative path (``name.jsonl:LINE`` for records).
    """
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"user source {p} does not exist; pass a directory or a .jsonl file")
    if domain != "auto" and domain not in DOMAINS:
        raise CorpusError(f"domain must be 'auto' or one of {DOMAINS}, got {domain!r}")
    if max_docs is not None and max_docs <= 0:
        raise CorpusError(f"max_docs must be positive, got {max_docs}; pass --max-docs N with N >= 1")
    report = FolderReport(str(p))
    limits = Limits(max_file_bytes, 1, max_line_chars)
    keeper = _Keeper(report, max_docs, p.stem or "user")
    if p.is_dir():
        walked = _walk(str(p), _globs(include), _globs(exclude), skip_dirs, report)
        _read_dir(p, language, domain, walked, limits, keeper, extensions)
    elif p.is_file() and p.suffix == ".jsonl":
        if include or exclude:
            raise CorpusError(f"{p}: --include/--exclude apply to folders, not to a .jsonl file; drop them")
        _read_jsonl(p, language, domain, limits, keeper)
    else:
        raise CorpusError(f"user source {p} is not a folder or a .jsonl file; pass a directory or a .jsonl file")
    if not keeper.docs:
        raise CorpusError(f"no usable files in {report.summary()}; it needs UTF-8 text files with a known "
                          "extension (or --include / an explicit language) or 'text' records")
    return keeper.docs, report


__all__ = ["EXTENSION_LANGUAGES", "PROSE_LANGUAGES", "SKIP_DIRS", "FolderReport", "language_of", "parse_extension",
           "read_user_source"]
