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
    if os.path.lexists(path) and not path.is_dir():  # never rename or delete a file that is in the way
        raise NotADirectoryError(f"{path} is a file, not a folder: atomic_dir replaces only a folder")
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
    if path.exists():  # moved onto a fresh empty temp folder (a stale one is removed by the next write)
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- the output rule of the CLI verbs
#
# A verb that writes (train/transfer/compare/overlap --out, export --tiktoken) writes only to a target
# that is absent, an empty folder, or a folder tokstudy wrote before (its record file says so: a
# tokenizer's meta.json, a transfer's transfer.json, MARKER for compare and overlap). Anything else is a
# one-line error naming the path; with --force a folder verb writes beside a user's files, never over them.
# A file of the user is never deleted, renamed or replaced, and an input is never written into.

#: the record compare and overlap leave in their output folder (the files they wrote)
MARKER = ".tokstudy.json"
_OWN_TEMP = re.compile(r"^\.tokstudy\.[A-Za-z0-9_]{8}\.tmp$")  # output_dir's staging folder inside an existing target


def _refuse(message: str):
    from tokstudy.errors import ToolError

    raise ToolError(message)


def _few(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # a folder, or unreadable
        return None


def marker_files(folder: str | os.PathLike) -> set[str] | None:
    """The files of ``folder`` that its :data:`MARKER` lists with their content as written (the marker included).

    None when it has no valid marker. A listed file that was changed since is not ours any more.
    """
    import json

    folder = Path(folder)
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = record.get("files") if isinstance(record, dict) and str(record.get("written_by", "")).startswith(
        "tokstudy ") else None
    if not isinstance(files, dict):
        return None
    return {name for name, sha in files.items() if isinstance(name, str) and _sha256(folder / name) == sha} | {MARKER}


def write_marker(folder: str | os.PathLike, verb: str) -> Path:
    """Write :data:`MARKER` into ``folder``: ``tokstudy VERB`` wrote every file there now (name -> sha256)."""
    import json

    folder = Path(folder)
    files = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.name != MARKER}
    path = folder / MARKER
    path.write_text(json.dumps({"written_by": f"tokstudy {verb}", "files": files}, indent=1) + "\n", encoding="utf-8")
    return path


def _input_at(target: Path, inputs) -> tuple[str, bool] | None:
    """``(input, same)`` when ``target`` is an existing input (``same``) or lies inside an input folder."""
    resolved = target.resolve()
    for spec in inputs:
        if spec is None or not os.path.lexists(Path(spec).expanduser()):
            continue  # not a path (a reference tokenizer name)
        q = Path(spec).expanduser().resolve()
        if resolved == q or (q.is_dir() and resolved.is_relative_to(q)):
            return str(spec), resolved == q
    return None


def _check_new(target: Path, flag: str, shown) -> None:
    """``target`` does not exist: the nearest existing folder above it must be a folder we may write in."""
    above = target.parent
    while not os.path.lexists(above) and above != above.parent:
        above = above.parent
    if not above.is_dir():
        _refuse(f"{flag} {shown}: {above} is a file, so nothing can be created under it; choose a path in a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        _refuse(f"{flag} {shown}: cannot create it in {above} (permission denied); choose a folder you can write to")


def check_output(path: str | os.PathLike, *, flag: str = "--out", force: bool = False, owned=marker_files,
                 inputs=(), writes=()) -> Path:
    """The absolute ``path`` if a verb may put its output folder there; else a one-line ToolError naming ``flag``.

    Allowed: an absent path (in a folder we may write to), an empty folder, or a folder whose every entry
    ``owned(folder)`` (the files an earlier run wrote, None: not ours) lists. With ``force``, a folder
    holding other files too, which are kept: only a file named as one of ``writes`` refuses it then.
    Never an input (``inputs``: paths read by the verb) or a path inside an input folder, even with ``force``.
    """
    target = Path(os.path.abspath(Path(path).expanduser()))
    hit = _input_at(target, inputs)
    if hit is not None:
        _refuse(f"{flag} {path} is {'' if hit[1] else 'inside '}the input {hit[0]}: tokstudy never writes into its "
                "inputs (not even with --force); choose another folder")
    if target.is_dir():
        if not os.access(target, os.W_OK | os.X_OK):
            _refuse(f"{flag} {path}: cannot write in this folder (permission denied); choose a folder you can write to")
        names = {p.name for p in target.iterdir() if not _OWN_TEMP.match(p.name)}
        foreign = names - ((owned(target) or set()) if names else set())
        if foreign and not force:
            _refuse(f"{flag} {path} holds files tokstudy did not write ({_few(foreign)}): choose a new or empty "
                    "folder, or pass --force to write beside them (they are kept)")
        if foreign & set(writes):
            _refuse(f"{flag} {path} holds your {_few(foreign & set(writes))}, which the output would replace: "
                    "choose another folder (--force never replaces your files)")
        return target
    if os.path.lexists(target):
        _refuse(f"{flag} {path} is a file, not a folder: choose a new or empty folder (tokstudy never replaces "
                "your files, not even with --force)")
    _check_new(target, flag, path)
    return target


def check_output_file(path: str | os.PathLike, *, flag: str, ours: bool, inputs=()) -> Path:
    """The absolute ``path`` if a verb may write that file: absent, or an earlier output of ours (``ours``)."""
    target = Path(os.path.abspath(Path(path).expanduser()))
    hit = _input_at(target, inputs)
    if hit is not None:
        _refuse(f"{flag} {path} is {'' if hit[1] else 'inside '}the input {hit[0]}: tokstudy never writes into its "
                "inputs; choose another path")
    if target.is_dir():
        _refuse(f"{flag} {path} is a folder; give a file path in it (e.g. {Path(path) / target.name}.tiktoken)")
    if os.path.lexists(target):
        if not ours:
            _refuse(f"{flag} {path} exists and tokstudy did not write it: move it away or choose another name "
                    "(tokstudy never replaces your files)")
        if not os.access(target.parent, os.W_OK | os.X_OK):
            _refuse(f"{flag} {path}: cannot write in {target.parent} (permission denied); choose another path")
        return target
    _check_new(target, flag, path)
    return target


def _missing_parents(target: Path) -> list[Path]:
    """The folders above ``target`` that do not exist yet, deepest first."""
    out = []
    for d in target.parents:
        if os.path.lexists(d):
            break
        out.append(d)
    return out


def _remove_empty(folders: list[Path]) -> None:
    for d in folders:  # deepest first; stops at one that is not empty
        try:
            d.rmdir()
        except OSError:
            break


def _publish(stage: Path, target: Path, owned, record: str, flag: str, shown) -> None:
    """Move the staged output into ``target``: one rename when it is new, else file by file (``record`` last)."""
    _fsync_tree(stage)
    if not target.is_dir():
        os.replace(stage, target)
        _fsync(target.parent)
        return
    before = owned(target) or set()
    new = sorted(p.name for p in stage.iterdir())
    clash = {n for n in new if os.path.lexists(target / n) and n not in before}
    if clash:
        _refuse(f"{flag} {shown} holds your {_few(clash)}, which the output would replace: choose another folder")
    for name in sorted(new, key=lambda n: n == record):
        dst = target / name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(stage / name, dst)
    for name in before - set(new):  # what an earlier run wrote and this one did not (e.g. other weight shards)
        old = target / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif os.path.lexists(old):
            old.unlink()
    _fsync(target)


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, *, flag: str = "--out", force: bool = False, owned=marker_files,
               record: str = MARKER, inputs=(), writes=()) -> Iterator[Path]:
    """Yield a staging path (not created yet) for a verb's output folder; it becomes ``path`` on success.

    :func:`check_output` first (a refused target is a one-line ToolError before any work). The staging
    folder lies beside a new target (one rename at the end) or inside an existing one (its files are
    moved in one by one, ``record`` last, and files an earlier run wrote but this one did not are removed;
    other files are left alone). On any exception, KeyboardInterrupt included, the staging folder and
    the folders made for it are removed and the target is as it was.
    """
    target = check_output(path, flag=flag, force=force, owned=owned, inputs=inputs, writes=writes)
    made = _missing_parents(target)
    try:
        for d in reversed(made):
            d.mkdir()
        if target.is_dir():
            remove_stale_temps(target / "tokstudy")
            holder = Path(tempfile.mkdtemp(dir=target, prefix=".tokstudy.", suffix=".tmp"))
        else:
            remove_stale_temps(target)
            holder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        _remove_empty(made)
        _refuse(f"{flag} {path}: cannot write there ({exc.strerror or exc}); choose a folder you can write to")
    stage = holder / "out"
    try:
        yield stage
        stage.mkdir(exist_ok=True)
        os.chmod(stage, 0o755)
        try:
            _publish(stage, target, owned, record, flag, path)
        except OSError as exc:
            _refuse(f"{flag} {path}: cannot write there ({exc.strerror or exc}); choose a folder you can write to")
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        if not target.exists():
            _remove_empty(made)
        raise
    shutil.rmtree(holder, ignore_errors=True)
