"""tokstudy.fetch and fetched corpus sources, with fake registry clients (no network) plus one real npm fetch."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tokstudy import corpus, fetch, params
from tokstudy.errors import FetchError
from tokstudy.fetch import Pin
from tokstudy.params import CorpusParams, SourceSpec

FAKE_APT = r'''
import json, os, shutil, sys
archive = json.load(open(os.environ["FAKE_ARCHIVE"]))
args = [a for a in sys.argv[1:] if a != "--no-all-versions"]
if args[0] == "indextargets":
    print(archive["lists"] or "")
    sys.exit(0)
name, _, version = args[1].partition("=")
pkg = archive["packages"].get(name)
version = version or (pkg or {}).get("candidate")
if pkg is None or version not in pkg["versions"]:
    print(f"E: No packages found", file=sys.stderr)
    sys.exit(100)
deb = pkg["versions"][version]
if args[0] == "show":
    print(f"Package: {name}\nVersion: {version}\nSHA256: {deb['index_sha256']}\n")
elif args[0] == "download":
    shutil.copy(deb["file"], os.path.join(os.getcwd(), f"{name}_{version.replace(':', '%3a')}_all.deb"))
'''

FAKE_COPY = r'''
import os, shutil, sys
# npm pack NAME@VER --json --pack-destination DIR  |  pip download ... -d DIR
args = sys.argv[1:]
dest = args[args.index("--pack-destination") + 1] if "--pack-destination" in args else args[args.index("-d") + 1]
src = os.environ["FAKE_ARTIFACT"]
if not os.path.exists(src):
    print("E404 Not Found", file=sys.stderr)
    sys.exit(1)
os.makedirs(dest, exist_ok=True)
shutil.copy(src, dest)
'''


def _script(tmp: Path, name: str, body: str) -> str:
    p = tmp / "bin" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(f"#!{sys.executable}\n{body}")
    p.chmod(0o755)
    return str(p)


def _manpage(title: str, words: str) -> bytes:
    return gzip.compress(f'.TH {title} 1\n.SH NAME\n{title} \\- {words}\n.SH BESCHREIBUNG\n{words} {words}\n'.encode())


def _fake_deb(tmp: Path) -> Path:
    """A real .deb (dpkg-deb --build) holding German man pages, one symlink and a copyright file."""
    root = tmp / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: manpages-xx\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n")
    man = root / "usr/share/man/de/man1"
    man.mkdir(parents=True)
    for i, words in enumerate(["Zeigt den Inhalt eines Verzeichnisses", "Kopiert Dateien und Verzeichnisse"]):
        (man / f"prog{i}.1.gz").write_bytes(_manpage(f"prog{i}", words))
    os.symlink("prog0.1.gz", man / "alias.1.gz")
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/copyright").write_text("GPL")
    out = tmp / "manpages-xx_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fake Debian archive with one package (apt-get / apt-cache stand-ins) and an empty user cache."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is needed to build and unpack the test .deb")
    deb = _fake_deb(tmp_path)
    sha = fetch.sha256_file(deb)
    archive = {"lists": str(deb), "packages": {"manpages-xx": {
        "candidate": "1.0-1", "versions": {"1.0-1": {"file": str(deb), "index_sha256": sha}}}}}
    cfg = tmp_path / "archive.json"

    def save():
        cfg.write_text(json.dumps(archive))

    save()
    monkeypatch.setenv("FAKE_ARCHIVE", str(cfg))
    monkeypatch.setenv("TOKSTUDY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(fetch.ALLOW_MOVED_ENV, raising=False)
    apt = _script(tmp_path, "apt", FAKE_APT)
    monkeypatch.setitem(fetch.CLIENTS, "deb", (apt,))
    monkeypatch.setitem(fetch.CLIENTS, "deb-index", (apt,))
    return {"deb": deb, "sha256": sha, "archive": archive, "save": save}


def _spec(pin: str, sha256: str, **kw) -> SourceSpec:
    base = dict(name="xx", kind="manpages", language="de", domain="multilingual", fetch=pin, sha256=sha256,
                root="usr/share/man/de", path=None, include=("man*/*",), exclude=(), package=())
    return SourceSpec(**{**base, **kw})


def _params() -> params.Params:
    import dataclasses

    cp = CorpusParams(budget_bytes=1_000_000, max_file_bytes=100_000, max_line_chars=1000, min_file_bytes=10,
                      val_fraction=0.0, test_fraction=0.0, min_test_docs=0, max_files_per_source=100, sources=None)
    return dataclasses.replace(params.load("smoke"), profile="unit", corpus=cp)


def _build(out_dir: Path, specs: list[SourceSpec]) -> dict:
    """``corpus.build`` of ``specs``: the fetch API's caller."""
    P = _params()
    return corpus.build(specs, P.corpus, out_dir, label=P.profile)


def test_fetched_deb_round_trip_yields_documents_with_language_and_domain(registry, tmp_path):
    spec = _spec("deb:manpages-xx=1.0-1", registry["sha256"])
    m = _build(tmp_path / "out", [spec])
    docs = corpus.read_split(tmp_path / "out" / "train.jsonl")
    assert sorted(d.path for d in docs) == ["man1/prog0.1.gz", "man1/prog1.1.gz"]
    assert {(d.language, d.domain, d.source) for d in docs} == {("de", "multilingual", "xx")}
    assert any("Kopiert Dateien und Verzeichnisse" in d.text and ".SH" not in d.text for d in docs)
    src = m["sources"]["xx"]
    assert src["skipped"]["symlink"] == 1 and src["root"] == "usr/share/man/de"
    assert src["artifact"] == {"pin": "deb:manpages-xx=1.0-1", "pinned_version": "1.0-1", "version": "1.0-1",
                               "sha256": registry["sha256"], "file": "manpages-xx_1.0-1_all.deb",
                               "pinned_sha256": registry["sha256"], "moved": False}
    # unpacked once, keyed by the sha256; a second get calls no client at all
    tree = fetch.artifacts_dir() / registry["sha256"] / "tree"
    assert (tree / "usr/share/doc/copyright").read_text() == "GPL"
    fetch.CLIENTS["deb"] = fetch.CLIENTS["deb-index"] = ("/nonexistent/apt-get",)
    again = fetch.get(Pin.parse("deb:manpages-xx=1.0-1", registry["sha256"], "sources.xx"))
    assert again.tree == str(tree)


def test_hash_mismatch_is_an_error_and_nothing_is_cached(registry):
    pin = Pin.parse("deb:manpages-xx=1.0-1", "0" * 64, "sources.xx")
    with pytest.raises(FetchError, match=r"^sources\.xx\.sha256: manpages-xx_1\.0-1_all\.deb has sha256 "):
        fetch.get(pin)
    assert [p.name for p in fetch.artifacts_dir().iterdir()] == []


def test_unknown_package_and_missing_lists(registry):
    pin = Pin.parse("deb:no-such-pkg=1.0", "a" * 64, "sources.zz")
    with pytest.raises(FetchError, match=r"^sources\.zz\.fetch: Debian has no package 'no-such-pkg'; fix the name"):
        fetch.get(pin)
    registry["archive"]["lists"] = ""
    registry["save"]()
    with pytest.raises(FetchError, match=r"^sources\.zz: apt has no package lists .* run `apt-get update` as root, "
                                         r"or without root: mkdir -p .*Dir::State::Lists="):
        fetch.get(pin)


def _move_to_next_version(registry) -> None:
    """The archive drops 1.0-1: its current manpages-xx is 1:1.1-1 (the same file, so the same sha256)."""
    pkg = registry["archive"]["packages"]["manpages-xx"]
    pkg["versions"]["1:1.1-1"] = pkg["versions"].pop("1.0-1")
    pkg["candidate"] = "1:1.1-1"
    registry["save"]()


def test_a_debian_version_that_left_the_archive_is_an_error_naming_what_moved(registry, tmp_path, monkeypatch):
    _move_to_next_version(registry)
    pin = Pin.parse("deb:manpages-xx=1.0-1", "b" * 64, "sources.xx")
    with pytest.raises(FetchError, match=(
            r"^sources\.xx\.fetch: deb:manpages-xx=1\.0-1 has left the Debian archive, whose current version is "
            rf"manpages-xx=1:1\.1-1 \(sha256 {registry['sha256']}\); after checking it, set sources\.xx\.fetch to "
            rf"deb:manpages-xx=1:1\.1-1 and sources\.xx\.sha256 to {registry['sha256']} in params\.yaml, or set "
            r"TOKSTUDY_ALLOW_MOVED_PINS=1 to build with it")):
        fetch.get(pin)
    assert list(fetch.artifacts_dir().iterdir()) == []  # nothing downloaded or unpacked
    # the corpus build (the fetch API's caller) stops on it too, writing nothing
    with pytest.raises(FetchError, match="has left the Debian archive"):
        _build(tmp_path / "out", [_spec("deb:manpages-xx=1.0-1", "b" * 64)])
    assert not (tmp_path / "out").exists()
    # "0" is no opt-in
    monkeypatch.setenv(fetch.ALLOW_MOVED_ENV, "0")
    with pytest.raises(FetchError, match="has left the Debian archive"):
        fetch.get(pin)


def test_a_moved_debian_version_with_the_environment_opt_in_is_used_and_recorded(registry, tmp_path, monkeypatch,
                                                                                  caplog):
    _move_to_next_version(registry)
    monkeypatch.setenv(fetch.ALLOW_MOVED_ENV, "1")
    spec = _spec("deb:manpages-xx=1.0-1", "b" * 64)
    with caplog.at_level(logging.WARNING, logger="tokstudy.fetch"):
        m = _build(tmp_path / "out", [spec])  # the caller is unchanged
    art = m["sources"]["xx"]["artifact"]
    assert (art["pinned_version"], art["version"], art["sha256"], art["pinned_sha256"]) == (
        "1.0-1", "1:1.1-1", registry["sha256"], "b" * 64)
    assert art["moved"] == {"pin": "deb:manpages-xx=1.0-1", "pinned_sha256": "b" * 64, "version": "1:1.1-1",
                            "sha256": registry["sha256"]}
    assert "deb:manpages-xx=1.0-1 has left the Debian archive; using the current manpages-xx=1:1.1-1" in caplog.text
    # the index's sha256 still guards the replacement
    pkg = registry["archive"]["packages"]["manpages-xx"]
    pkg["versions"]["1:1.1-1"]["index_sha256"] = "c" * 64
    registry["save"]()
    shutil.rmtree(fetch.artifacts_dir())
    with pytest.raises(FetchError, match=r"the pin says cccc"):
        fetch.get(Pin.parse("deb:manpages-xx=1.0-1", "b" * 64, "sources.xx"))


def test_a_moved_debian_version_with_the_argument_opt_in_is_used_and_recorded(registry):
    _move_to_next_version(registry)
    pin = Pin.parse("deb:manpages-xx=1.0-1", "b" * 64, "sources.xx")
    art = fetch.get(pin, allow_moved=True)
    assert art.moved and (art.version, art.sha256, art.pinned_sha256) == ("1:1.1-1", registry["sha256"], "b" * 64)
    assert art.record()["moved"] == {"pin": "deb:manpages-xx=1.0-1", "pinned_sha256": "b" * 64,
                                     "version": "1:1.1-1", "sha256": registry["sha256"]}
    assert (Path(art.tree) / "usr/share/doc/copyright").read_text() == "GPL"
    # the replacement is cached, but using it again still needs the opt-in
    with pytest.raises(FetchError, match="has left the Debian archive"):
        fetch.get(pin)
    again = fetch.get(pin, allow_moved=True)
    assert again.tree == art.tree and again.record() == art.record()
    # so does a pin whose sha256 names the cached file of another version
    relabelled = Pin.parse("deb:manpages-xx=1.0-1", registry["sha256"], "sources.xx")
    with pytest.raises(FetchError, match=r"^sources\.xx\.fetch: the file with sources\.xx\.sha256 is "
                                         r"manpages-xx=1:1\.1-1 \(manpages-xx_1%3a1\.1-1_all\.deb\), not the pinned "
                                         r"deb:manpages-xx=1\.0-1; set sources\.xx\.fetch to its version"):
        fetch.get(relabelled)
    assert fetch.get(relabelled, allow_moved=True).record()["moved"]["version"] == "1:1.1-1"
    # a pin of the current version is no move
    current = fetch.get(Pin.parse("deb:manpages-xx=1:1.1-1", registry["sha256"], "sources.xx"))
    assert not current.moved and current.record()["moved"] is False


def test_missing_client_names_it_and_the_fix(registry, monkeypatch):
    monkeypatch.setitem(fetch.CLIENTS, "npm", ("no-such-npm-client",))
    with pytest.raises(FetchError, match=r"^sources\.js: no-such-npm-client not found, needed to fetch "
                                         r"npm:left-pad@1\.3\.0; install npm \(Node\.js\) or drop the source from "
                                         r"corpus\.sources$"):
        fetch.get(Pin.parse("npm:left-pad@1.3.0", "d" * 64, "sources.js"))


@pytest.mark.parametrize("pin, sha, message", [
    ("deb:foo", "a" * 64, r"^sources\.s\.fetch: 'deb:foo' is not a pin; write deb:NAME=VERSION"),
    ("cargo:foo=1", "a" * 64, r"^sources\.s\.fetch: 'cargo:foo=1' is not a pin"),
    ("npm:foo@1.0.0", "abc", r"^sources\.s\.sha256: 'abc' is not a sha256"),
    ("pypi:foo==1.0", None, r"^sources\.s\.sha256: None is not a sha256"),
])
def test_bad_pins(pin, sha, message):
    with pytest.raises(FetchError, match=message):
        Pin.parse(pin, sha, "sources.s")


def _tgz(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_npm_and_pypi_artifacts_unpack_and_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKSTUDY_CACHE", str(tmp_path / "cache"))
    tgz = _tgz(tmp_path / "pkg-1.0.0.tgz", {"package/src/a.ts": "export const a: number = 1;\n"})
    whl = tmp_path / "mod-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("mod/__init__.py", "VALUE = 1\n")
    copy = _script(tmp_path, "copy", FAKE_COPY)
    monkeypatch.setitem(fetch.CLIENTS, "npm", (copy,))
    monkeypatch.setitem(fetch.CLIENTS, "pypi", (copy,))
    monkeypatch.setenv("FAKE_ARTIFACT", str(tgz))
    art = fetch.get(Pin.parse("npm:pkg@1.0.0", fetch.sha256_file(tgz), "sources.ts"))
    assert (Path(art.tree) / "package/src/a.ts").read_text() == "export const a: number = 1;\n"
    monkeypatch.setenv("FAKE_ARTIFACT", str(whl))
    art = fetch.get(Pin.parse("pypi:mod==1.0", fetch.sha256_file(whl), "sources.py"))
    assert (Path(art.tree) / "mod/__init__.py").read_text() == "VALUE = 1\n" and art.file == whl.name
    with pytest.raises(FetchError, match=r"^sources\.py\.sha256: mod-1\.0-py3-none-any\.whl has sha256 "):
        fetch.get(Pin.parse("pypi:mod==1.0", "e" * 64, "sources.py"))
    monkeypatch.setenv("FAKE_ARTIFACT", str(tmp_path / "absent.tgz"))
    with pytest.raises(FetchError, match=r"^sources\.ts\.fetch: npm cannot pack pkg@2\.0\.0 \(E404 Not Found\)"):
        fetch.get(Pin.parse("npm:pkg@2.0.0", "f" * 64, "sources.ts"))


def test_fetched_source_with_nothing_left_after_filtering(registry, tmp_path):
    spec = _spec("deb:manpages-xx=1.0-1", registry["sha256"], include=("man9/*",))
    with pytest.raises(corpus.CorpusError, match=r"match sources\.xx\.include \['man9/\*'\]"):
        _build(tmp_path / "out", [spec])
    assert not (tmp_path / "out").exists()
    spec = _spec("deb:manpages-xx=1.0-1", registry["sha256"], root="/usr/share/man")
    with pytest.raises(corpus.CorpusError, match=r"root '/usr/share/man' must be relative to the fetched deb:"):
        _build(tmp_path / "out", [spec])


def test_unknown_name_in_corpus_sources(tmp_path):
    import dataclasses

    P = _params()
    P = dataclasses.replace(P, corpus=dataclasses.replace(P.corpus, sources=("python", "klingon")))
    with pytest.raises(corpus.CorpusError, match=r"^corpus\.sources names unknown source\(s\) \['klingon'\]"):
        corpus.select_sources(P.sources, P.corpus.sources)


@pytest.mark.slow  # the one test that uses the network (skipped without it)
def test_real_npm_fetch(tmp_path, monkeypatch):
    """One real, small fetch (ms@2.1.3, 3 kB) through the npm client."""
    monkeypatch.setenv("TOKSTUDY_CACHE", str(tmp_path / "cache"))
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    probe = subprocess.run(["npm", "view", "ms@2.1.3", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"the npm registry is unreachable: {probe.stderr.strip()[:80]}")
    sha = "f6616e15e530ed552f9daa2d3ce71963947c6bc7c98c9b64fd3e673fd02622c6"
    try:
        art = fetch.get(Pin.parse("npm:ms@2.1.3", sha, "sources.ms"))
    except FetchError as e:
        pytest.fail(str(e))
    assert json.loads((Path(art.tree) / "package/package.json").read_text())["version"] == "2.1.3"


def test_every_download_prints_a_progress_line_and_a_cached_artifact_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOKSTUDY_CACHE", str(tmp_path / "cache"))
    tgz = _tgz(tmp_path / "pkg-1.0.0.tgz", {"package/a.js": "let a = 1;\n" * 100})
    monkeypatch.setitem(fetch.CLIENTS, "npm", (_script(tmp_path, "copy", FAKE_COPY),))
    monkeypatch.setenv("FAKE_ARTIFACT", str(tgz))
    pin = Pin.parse("npm:pkg@1.0.0", fetch.sha256_file(tgz), "sources.js")
    fetch.get(pin)
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    root = tmp_path / "cache" / "artifacts"
    size = tgz.stat().st_size / 1e6
    assert lines == [f"downloading npm:pkg@1.0.0 (npm pack) into {root} ...",
                     f"downloaded npm:pkg@1.0.0: pkg-1.0.0.tgz ({size:.1f} MB, sha256 {pin.sha256[:12]} as pinned); "
                     "unpacking"]
    assert cap.out == ""
    fetch.get(pin)  # cached: no download, no line
    assert capsys.readouterr().err == ""
    # a failed download still said what it was fetching before the one-line error
    monkeypatch.setenv("FAKE_ARTIFACT", str(tmp_path / "absent.tgz"))
    with pytest.raises(FetchError):
        fetch.get(Pin.parse("npm:pkg@2.0.0", "f" * 64, "sources.js"))
    assert capsys.readouterr().err.splitlines() == [f"downloading npm:pkg@2.0.0 (npm pack) into {root} ..."]
