"""Where tokstudy reads and writes, and how it writes safely.

Every artefact lives under the project root, scoped by *profile* so that a
smoke run (CI, nbval) never overwrites the results of the default ``cpu``
profile that ``dvc repro`` produces::

    data/<profile>/corpus/            train/validation/test JSONL + manifest
    data/<profile>/tokenizers/<name>/ tokenizer.json, HF configs, meta.json (bpe.TOKENIZER_FILES)
    data/<profile>/models/<name>/     HF model directories
    results/<profile>/runs/*.json     one JSON per run, with provenance
    results/<profile>/results.csv     tidy table built by ``results.collect``
    figures/<profile>/                figures (PNG + PDF), one folder per profile

The project root is ``$TOKSTUDY_ROOT`` if set, else the checkout the current
folder is in (a folder with ``params.yaml`` and ``src/tokstudy/``), else the
current folder itself (an installed package used outside a checkout).
Settings come from the root's ``params.yaml``; where the root has none, from
the copy of the repository's ``params.yaml`` that the build puts in the
package (:data:`PACKAGED_PARAMS`).

Reference tokenizer files (profile-free, shared by every checkout and
install) live in the user cache, :func:`cache_dir` ``/reference/<name>/``:
``platformdirs.user_cache_dir("tokstudy")`` (``~/.cache/tokstudy`` on Linux),
or ``$TOKSTUDY_CACHE`` when set.

All writes go through :func:`atomic_write` or :func:`atomic_dir`: a crash
half-way never leaves a truncated file where a good one was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import platformdirs

DEFAULT_PROFILE = "cpu"


def _find_root() -> Path:
    env = os.environ.get("TOKSTUDY_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "params.yaml").is_file() and (d / "src" / "tokstudy").is_dir():
            return d
    return here  # outside a checkout: outputs under the current folder


#: the repository's params.yaml as shipped inside the package (a symlink to it in a checkout)
PACKAGED_PARAMS = Path(__file__).resolve().with_name("params.yaml")
ROOT = _find_root()
PARAMS_FILE = ROOT / "params.yaml" if (ROOT / "params.yaml").is_file() else PACKAGED_PARAMS
DATA = ROOT / "data"
RESULTS = ROOT / "results"
FIGURES = ROOT / "figures"


def relative(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when it lies under it (as run records name files), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cache_dir() -> Path:
    """The user cache: ``$TOKSTUDY_CACHE`` if set, else ``platformdirs.user_cache_dir("tokstudy")``; read per call."""
    return Path(os.environ.get("TOKSTUDY_CACHE") or platformdirs.user_cache_dir("tokstudy")).expanduser()


def reference_dir() -> Path:
    """Where reference tokenizer files are cached: ``cache_dir() / "reference"``."""
    return cache_dir() / "reference"


def data_dir(profile: str) -> Path:
    return DATA / profile


def corpus_dir(profile: str) -> Path:
    return data_dir(profile) / "corpus"


def tokenizer_dir(profile: str, name: str) -> Path:
    return data_dir(profile) / "tokenizers" / name


def model_dir(profile: str, name: str) -> Path:
    return data_dir(profile) / "models" / name


def results_dir(profile: str) -> Path:
    return RESULTS / profile


def runs_dir(profile: str) -> Path:
    return results_dir(profile) / "runs"


def results_csv(profile: str) -> Path:
    return results_dir(profile) / "results.csv"


def figures_dir(profile: str) -> Path:
    """figures/<profile>/ for every profile: dvc.yaml declares it as the figures stage's output."""
    return FIGURES / profile


def _fsync(path: str | os.PathLike) -> None:
    """Flush a file's or a directory's entry to disk (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            _fsync(os.path.join(dirpath, f))
        _fsync(dirpath)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove what killed :func:`atomic_write` / :func:`atomic_dir` calls for ``path`` left behind.

    Those are the siblings ``.<name>.XXXXXXXX.tmp``; returns the removed paths.
    Assumes one writer per path at a time (as every caller in tokstudy does).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
    removed = []
    for p in path.parent.iterdir():
        if pattern.match(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file, ``fsync`` and ``os.replace`` (then sync the directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync(path.parent)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only on success.

    On an exception the temporary directory is removed and ``path`` (if it
    existed) is left untouched. On success every file is fsynced before the
    rename and the parent directory after it. Temporary directories of earlier,
    killed writes to ``path`` are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; the result is an ordinary directory
    try:
        yield tmp
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
