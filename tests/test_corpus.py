"""tokstudy.corpus, .sources, .roff, .packages and .folders on small fixtures built in tmp_path."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from tokstudy import corpus, folders, params, roff, sources
from tokstudy.corpus import Document
from tokstudy.errors import CorpusError
from tokstudy.params import CorpusParams, SourceSpec


def _build(P, out_dir, sources=None):
    """``corpus.build`` of ``sources`` (default: the profile's ``corpus.sources``) under ``P.corpus``."""
    specs = sources if sources is not None else corpus.select_sources(P.sources, P.corpus.sources)
    return corpus.build(specs, P.corpus, out_dir, label=P.profile)


def _params(**corpus_kw) -> params.Params:
    base = dict(budget_bytes=10_000_000, max_file_bytes=2_000, max_line_chars=200, min_file_bytes=20,
                val_fraction=0.1, test_fraction=0.1, min_test_docs=0, max_files_per_source=1_000)
    base.update(corpus_kw)
    return dataclasses.replace(params.load("smoke"), profile="unit", corpus=CorpusParams(**{"sources": None, **base}))


def _write(root: Path, rel: str, data: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _code(i: int, lang: str = "py") -> str:
    return f"def function_{i}(x):\n    # file number {i} in {lang}\n    return x * {i} + {i * 7}\n"


def _spec(**kw) -> SourceSpec:
    return SourceSpec(**{"fetch": None, "sha256": None, "root": None, "path": None, "include": ("**/*",),
                         "exclude": (), "package": (), **kw})


def _dir_source(name, root, language="python", domain="code", include=("**/*",), **kw) -> SourceSpec:
    return _spec(name=name, kind="dir", language=language, domain=domain, root=str(root), include=include, **kw)


def _read_split(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def _all_docs(out: Path) -> dict[str, list[dict]]:
    return {s: _read_split(out, s) for s in corpus.SPLITS}


# ----------------------------------------------------------------------------- helpers


def test_glob_match_semantics():
    assert sources.glob_match("stdio.h", ["**/*.h"])
    assert sources.glob_match("sys/types.h", ["**/*.h"])
    assert not sources.glob_match("sys/types.hpp", ["**/*.h"])
    assert not sources.glob_match("a/b.h", ["*.h"])  # * stays inside one directory
    assert not sources.glob_match("test/x.py", ["**/*.py"], ["test/**"])
    assert sources.glob_match("lib/test_x.py", ["**/*.py"], ["test/**"])
    assert sources.glob_match("man3/open.3.gz", ["man[1-3]/*"])
    assert not sources.glob_match("man8/x.8.gz", ["man[1-3]/*"])


def test_roff_to_text_keeps_prose_and_drops_requests():
    src = (
        '.\\" a comment\n.TH LS 1 "2022"\n.de XX\nhidden macro body\n..\n'
        ".SH NAME\nls \\- list directory contents\n.SH DESCRIPTION\n.PP\n"
        "List \\fBall\\fR entries\\(em sorted.\n.BR dir (1)\n.TP\n\\fB\\-a\\fR, \\fB\\-\\-all\\fR\n"
        ".BI \"int open(int \" fd \\\n\");\n"
    )
    assert roff.roff_to_text(src) == (
        "NAME\nls - list directory contents\n\nDESCRIPTION\n\n"
        "List all entries\u2014 sorted.\ndir(1)\n\n-a, --all\nint open(int fd);\n"
    )
    assert roff.roff_to_text(".so man1/other.1\n") == ""


def test_split_of_hand_computed():
    # int("00000000", 16) % 10000 = 0 -> test; 0xffffffff % 10000 = 7295 -> train
    assert corpus.split_of("0" * 64, 0.1, 0.1) == "test"
    assert corpus.split_of("f" * 64, 0.1, 0.1) == "train"
    # 0x000007d0 = 2000: test below 1000, validation below 2000 + 1000
    assert corpus.split_of("000007d0" + "0" * 56, 0.1, 0.1) == "train"
    assert corpus.split_of("000007d0" + "0" * 56, 0.1, 0.11) == "validation"
    assert corpus.split_of("000007d0" + "0" * 56, 0.0, 0.21) == "test"


# ----------------------------------------------------------------------------- build


def test_filters_skip_and_count(tmp_path):
    src = tmp_path / "src"
    _write(src, "good.py", _code(1))
    _write(src, "pkg/good2.py", _code(2))
    _write(src, "latin1.py", "# caf\xe9 ".encode("latin-1") * 10)
    _write(src, "big.py", "x = 1\n" * 400)  # 2400 bytes > max_file_bytes 2000
    _write(src, "minified.py", "x=" + "1+" * 150 + "1\n")  # one 303-char line > max_line_chars 200
    _write(src, "tiny.py", "x=1\n")  # 4 bytes < min_file_bytes 20
    _write(src, "blob.py", b"\x00\x01\x02" * 20)
    os.symlink(src / "good.py", src / "link.py")
    out = tmp_path / "out"
    m = _build(_params(), out_dir=out, sources=[_dir_source("py", src, include=("**/*.py",))])
    s = m["sources"]["py"]
    assert s["skipped"] == {
        "symlink": 1, "unreadable": 0, "non_utf8": 1, "binary": 1, "too_large": 1,
        "too_small": 1, "long_line": 1, "duplicate": 0,
    }
    assert s["files"] == 2 and s["candidates"] == 8 and s["examined"] == 8
    kept = sorted(d["path"] for docs in _all_docs(out).values() for d in docs)
    assert kept == ["good.py", "pkg/good2.py"]
    assert s["bytes"] == len(_code(1).encode()) + len(_code(2).encode())
    hashes = sorted(hashlib.sha256(_code(i).encode()).hexdigest() for i in (1, 2))
    assert s["sha256"] == hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def test_dedup_across_sources(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "x.py", _code(1))
    _write(a, "y.py", _code(2))
    _write(b, "copy_of_x.py", _code(1))
    _write(b, "z.py", _code(3))
    m = _build(_params(), out_dir=tmp_path / "out", sources=[_dir_source("a", a), _dir_source("b", b)])
    assert m["sources"]["a"]["files"] == 2
    assert m["sources"]["b"]["files"] == 1
    assert m["sources"]["b"]["skipped"]["duplicate"] == 1
    docs = [d for ds in _all_docs(tmp_path / "out").values() for d in ds]
    assert len({d["sha256"] for d in docs}) == len(docs) == 3


def test_split_is_stable_and_disjoint(tmp_path):
    src = tmp_path / "src"
    for i in range(300):
        _write(src, f"f{i:03d}.py", _code(i))
    P = _params(val_fraction=0.1, test_fraction=0.2)
    m1 = _build(P, out_dir=tmp_path / "o1", sources=[_dir_source("py", src)])
    where1 = {d["sha256"]: s for s, ds in _all_docs(tmp_path / "o1").items() for d in ds}
    assert len(where1) == 300 == m1["documents"]  # each document in exactly one split
    counts = {s: m1["splits"][s]["documents"] for s in corpus.SPLITS}
    assert 30 <= counts["test"] <= 90 and 10 <= counts["validation"] <= 55 and counts["train"] > 150
    for s, ds in _all_docs(tmp_path / "o1").items():  # files at the root: each its own split group
        assert all(corpus.split_of(corpus.group_hash(f"file:{d['path']}"), 0.1, 0.2) == s for d in ds)

    for i in range(300, 340):  # more files, and a second source
        _write(src, f"f{i:03d}.py", _code(i))
    other = tmp_path / "other"
    _write(other, "o.js", "function other() { return 'a new source' }\n")
    _build(P, out_dir=tmp_path / "o2", sources=[_dir_source("py", src), _dir_source("js", other, "javascript")])
    where2 = {d["sha256"]: s for s, ds in _all_docs(tmp_path / "o2").items() for d in ds}
    assert len(where2) == 341
    assert all(where2[h] == s for h, s in where1.items())


def test_rebuild_is_byte_identical(tmp_path):
    src, eng = tmp_path / "src", tmp_path / "eng"
    for i in range(40):
        _write(src, f"d{i % 4}/f{i}.py", _code(i))
        _write(eng, f"doc{i}.txt", f"This is English paragraph number {i}.\nIt explains thing {i * 3}.\n")
    sources = [_dir_source("py", src), _dir_source("en", eng, "english", "english")]
    P = _params(budget_bytes=3_000)
    _build(P, out_dir=tmp_path / "o1", sources=sources)
    _build(P, out_dir=tmp_path / "o2", sources=sources)
    names = sorted(p.name for p in (tmp_path / "o1").iterdir())
    assert names == ["manifest.json", "test.jsonl", "train.jsonl", "validation.jsonl"]
    for name in names:
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes(), name


def test_budget_is_respected_and_shared(tmp_path):
    big_py, small_c, eng = tmp_path / "py", tmp_path / "c", tmp_path / "en"
    for i in range(200):
        _write(big_py, f"f{i}.py", _code(i))
        _write(eng, f"d{i}.txt", f"English text about topic {i}, written as a sentence.\n")
    for i in range(3):
        _write(small_c, f"f{i}.h", f"/* header {i} */\nint c_function_{i}(void);\n")
    c_bytes = sum(p.stat().st_size for p in small_c.iterdir())
    budget = 8_000
    m = _build(
        _params(budget_bytes=budget), out_dir=tmp_path / "out",
        sources=[_dir_source("py", big_py), _dir_source("c", small_c, "c"),
                 _dir_source("en", eng, "english", "english")],
    )
    src = m["sources"]
    assert m["bytes"] == sum(s["bytes"] for s in src.values()) <= budget
    assert m["bytes"] > budget - 200  # whole files of < 100 bytes fill it up
    # c runs out: its share of the code half goes to python
    assert src["c"]["exhausted"] and src["c"]["bytes"] == c_bytes
    assert budget / 2 - 100 < src["py"]["bytes"] + src["c"]["bytes"] <= budget / 2 + 100
    assert budget / 2 - 100 < src["en"]["bytes"] <= budget / 2 + 100
    on_disk = sum(len(d["text"].encode()) for ds in _all_docs(tmp_path / "out").values() for d in ds)
    assert on_disk == m["bytes"]


def test_max_files_per_source_is_deterministic(tmp_path):
    src = tmp_path / "src"
    for i in range(50):
        _write(src, f"f{i}.py", _code(i))
    P = _params(max_files_per_source=7)
    m = _build(P, out_dir=tmp_path / "o", sources=[_dir_source("py", src)])
    assert m["sources"]["py"]["files"] == 7
    kept = sorted(d["path"] for ds in _all_docs(tmp_path / "o").values() for d in ds)
    # chosen by the hash of the relative path, not by name or filesystem order
    expect = sorted(sorted((f"f{i}.py" for i in range(50)), key=lambda r: hashlib.sha256(r.encode()).hexdigest())[:7])
    assert kept == expect


def test_manifest_versions_and_languages(tmp_path):
    src = tmp_path / "src"
    _write(src, "a.py", _code(1))
    spec = _dir_source("py", src, package=("no-such-package-tokstudy", "pyyaml"))
    stdlib = _spec(name="std", kind="python-stdlib", language="python", domain="code",
                        include=("json/*.py",))
    m = _build(_params(max_file_bytes=100_000, max_line_chars=1000), out_dir=tmp_path / "o",
                     sources=[spec, stdlib])
    v = m["sources"]["py"]["versions"]
    assert v["no-such-package-tokstudy"] is None
    import yaml

    assert v["pyyaml"] == yaml.__version__
    import platform

    assert m["sources"]["std"]["versions"] == {"python": platform.python_version()}
    assert m["sources"]["std"]["files"] >= 4  # json/__init__, decoder, encoder, scanner, tool
    langs = {lang for s in m["splits"].values() for lang in s["languages"]}
    assert langs == {"python"}
    assert sum(s["documents"] for s in m["splits"].values()) == m["documents"]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text()) == m


def test_zip_and_manpage_sources(tmp_path):
    zpath = tmp_path / "src.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("java.base/java/lang/Foo.java", "package java.lang;\npublic class Foo { int x = 1; }\n")
        zf.writestr("java.base/sun/Bar.java", "package sun;\npublic class Bar { int y = 2; }\n")
    man = tmp_path / "man"
    _write(man, "man1/tool.1.gz", gzip.compress(b".TH TOOL 1\n.SH NAME\ntool \\- does a useful thing\n.PP\n"
                                                  b"The \\fBtool\\fR command reads input and writes output.\n"))
    _write(man, "man1/alias.1.gz", gzip.compress(b".so man1/tool.1\n"))
    sources = [
        _spec(name="java", kind="zip", language="java", domain="code", path=str(zpath),
                   include=("java.base/java/**/*.java",)),
        _spec(name="man", kind="manpages", language="english-man", domain="english", root=str(man),
                   include=("man1/*",)),
    ]
    m = _build(_params(), out_dir=tmp_path / "o", sources=sources)
    docs = {d["source"]: d for ds in _all_docs(tmp_path / "o").values() for d in ds}
    assert docs["java"]["path"] == "java.base/java/lang/Foo.java"
    assert m["sources"]["java"]["candidates"] == 1
    assert docs["man"]["text"] == (
        "NAME\ntool - does a useful thing\n\nThe tool command reads input and writes output.\n"
    )
    assert m["sources"]["man"]["skipped"]["too_small"] == 1  # the .so alias


def test_empty_and_missing_sources_raise_with_fix(tmp_path):
    src = tmp_path / "src"
    _write(src, "a.txt", "hello " * 10)
    with pytest.raises(CorpusError, match=r"check sources\.py\.root/include in params\.yaml"):
        _build(_params(), out_dir=tmp_path / "o", sources=[_dir_source("py", src, include=("**/*.py",))])
    _write(src, "bad.py", b"\xff\xfe not utf-8 at all, nope" * 3)
    with pytest.raises(CorpusError, match=r"no usable files under .*non_utf8.*check sources\.py\.root/include"):
        _build(_params(), out_dir=tmp_path / "o", sources=[_dir_source("py", src, include=("**/*.py",))])
    with pytest.raises(CorpusError, match=r"sources\.py\.root in params\.yaml"):
        _build(_params(), out_dir=tmp_path / "o", sources=[_dir_source("py", tmp_path / "nope")])
    spec = _spec(name="j", kind="zip", language="java", domain="code", path=str(tmp_path / "no.zip"))
    with pytest.raises(CorpusError, match=r"sources\.j\.path"):
        _build(_params(), out_dir=tmp_path / "o", sources=[spec])
    assert not (tmp_path / "o").exists()  # nothing half-written


# ----------------------------------------------------------------------------- reading back


def test_read_split_round_trip(tmp_path):
    src = tmp_path / "src"
    for i in range(30):
        _write(src, f"f{i}.py", _code(i))
    _build(_params(), out_dir=tmp_path / "o", sources=[_dir_source("py", src)])
    docs = [d for s in corpus.SPLITS for d in corpus.read_split(tmp_path / "o" / f"{s}.jsonl")]
    assert len(docs) == 30 and all(isinstance(d, Document) for d in docs)
    by_path = {d.path: d for d in docs}
    assert by_path["f3.py"].text == _code(3)
    assert by_path["f3.py"].sha256 == hashlib.sha256(_code(3).encode()).hexdigest()


def _doc(text, lang, domain, i):
    return Document(text, lang, domain, lang, f"{i}", hashlib.sha256(text.encode()).hexdigest())


def test_datasets_groups_by_language():
    docs = [_doc("a = 1", "python", "code", 0), _doc("Hello.", "english", "english", 1),
            _doc("b = 2", "python", "code", 2)]
    assert corpus.datasets(docs) == {"english": ("english", ["Hello."]), "python": ("code", ["a = 1", "b = 2"])}
    with pytest.raises(CorpusError, match="own language name"):
        corpus.datasets([*docs, _doc("x", "python", "english", 3)])


def _mix_docs():
    docs = []
    for i in range(300):
        docs.append(_doc(f"code {i} " + "x" * (50 + i % 97), "python", "code", i))
        docs.append(_doc(f"english {i} " + "y" * (40 + i % 61), "english", "english", i))
    return docs


def test_sample_mix_shares_and_determinism():
    docs = _mix_docs()
    by_text = {d.text: d for d in docs}
    budget = 10_000
    texts = corpus.sample_mix(docs, {"code": 0.7, "english": 0.3}, budget, seed=1)
    got = {"code": 0, "english": 0}
    for t in texts:
        got[by_text[t].domain] += len(t.encode())
    max_doc = max(d.nbytes for d in docs)
    assert 0 <= got["code"] - 7_000 < max_doc
    assert 0 <= got["english"] - 3_000 < max_doc
    assert corpus.sample_mix(list(reversed(docs)), {"code": 0.7, "english": 0.3}, budget, seed=1) == texts
    assert corpus.sample_mix(docs, {"code": 0.7, "english": 0.3}, budget, seed=2) != texts
    only_code = corpus.sample_mix(docs, {"code": 1.0, "english": 0.0}, budget, seed=1)
    assert all(by_text[t].domain == "code" for t in only_code)


def test_sample_mix_small_corpus_keeps_shares_and_empty_domain_errors():
    docs = _mix_docs()
    eng_bytes = sum(d.nbytes for d in docs if d.domain == "english")
    texts = corpus.sample_mix(docs, {"code": 0.5, "english": 0.5}, 10 * eng_bytes, seed=0)
    eng = sum(len(t.encode()) for t in texts if t.startswith("english"))
    code = sum(len(t.encode()) for t in texts if t.startswith("code"))
    assert eng == eng_bytes and abs(code - eng) < 200  # budget scaled down, shares kept
    with pytest.raises(CorpusError, match="no english documents"):
        corpus.sample_mix([d for d in docs if d.domain == "code"], {"code": 0.7, "english": 0.3}, 1000, seed=0)


def test_balanced_mix_takes_a_third_of_each_domain_and_datasets_keep_their_domain():
    # 10 documents of exactly 100 bytes per domain: a third of 600 bytes is two documents each
    docs = [_doc(f"{lang} {i:02d} " + "z" * (100 - len(f"{lang} {i:02d} ")), lang, dom, i)
            for lang, dom in (("go", "code"), ("english-man", "english"), ("de", "multilingual")) for i in range(10)]
    assert {d.nbytes for d in docs} == {100}
    balanced = params.load("smoke").mix("balanced")
    texts = corpus.sample_mix(docs, balanced, 600, seed=3)
    assert sorted(t.split()[0] for t in texts) == ["de", "de", "english-man", "english-man", "go", "go"]
    assert corpus.datasets(docs)["de"][0] == "multilingual"
    assert params.load("smoke").mix("code70")["multilingual"] == 0.02  # the paper's code mix carries a little


def test_read_user_source_jsonl_and_dir(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(
        json.dumps({"text": "fn main() { println!(\"hi\"); }", "language": "rust"}) + "\n"
        + json.dumps({"text": "Some English prose here."}) + "\n\n"
        + json.dumps({"text": "Some English prose here."}) + "\n",
        encoding="utf-8",
    )
    docs, report = folders.read_user_source(f, "english", "english")
    first_copy = min(("mine.jsonl:2", "mine.jsonl:4"), key=lambda r: hashlib.sha256(r.encode()).hexdigest())
    assert sorted((d.language, d.domain, d.path) for d in docs) == [
        ("english", "english", first_copy),  # of two equal texts, the one first in hash order
        ("rust", "english", "mine.jsonl:1"),
    ]
    assert report.skipped == {"duplicate": 1}
    d = tmp_path / "code"
    _write(d, "a.rs", "fn a() {}\n")
    _write(d, "sub/b.rs", "fn b() {}\n")
    _write(d, "img.bin", b"\x89PNG\x00\x00\xff")
    docs, report = folders.read_user_source(d, "rust", "code")
    assert sorted((x.path, x.text) for x in docs) == [("a.rs", "fn a() {}\n"), ("sub/b.rs", "fn b() {}\n")]
    assert report.skipped == {"non_utf8": 1}
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"nope": 1}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: needs a string field 'text'"):
        folders.read_user_source(tmp_path / "bad.jsonl", "x", "code")
    with pytest.raises(CorpusError, match=r"mine\.jsonl:2: no 'language' in the record and language='auto'"):
        folders.read_user_source(f)  # never silently called English
    with pytest.raises(CorpusError, match="does not exist"):
        folders.read_user_source(tmp_path / "missing", "x", "code")
    with pytest.raises(CorpusError, match="not a folder or a .jsonl file"):
        folders.read_user_source(_write(tmp_path, "data.json", "{}"))


def _project(root: Path) -> Path:
    """A project folder with everything a tokenizer comparison must not read."""
    _write(root, "src/app.py", _code(1))
    _write(root, "src/util.py", _code(2))
    _write(root, "README.md", "This project does a useful thing, described in English prose.\n")
    _write(root, "sub/lib.go", "package sub\n\nfunc Lib() int { return 42 }\n")
    _write(root, ".git/config", "[core]\n\trepositoryformatversion = 0\n")
    _write(root, ".git/hooks/pre-commit.py", _code(3))
    _write(root, "node_modules/left-pad/index.js", "module.exports = function leftPad() {}\n")
    _write(root, ".venv/lib/site.py", _code(4))
    _write(root, "package.json", '{"name": "x", "version": "1.0.0"}\n')
    _write(root, "conf/settings.yaml", "a: 1\nb: 2\n")
    _write(root, ".gitignore", "secret.py\nlogs/\n*.gen.py\n!keep.gen.py\n")
    _write(root, "secret.py", _code(5))
    _write(root, "logs/run.py", _code(6))
    _write(root, "src/x.gen.py", _code(7))
    _write(root, "src/keep.gen.py", _code(8))
    _write(root, "sub/.gitignore", "local.go\n")
    _write(root, "sub/local.go", "package sub\n\nfunc Local() {}\n")
    _write(root, "dist/bundle.min.js", "var a=1;" * 250_000)  # 2 MB on one line: in a skipped folder
    _write(root, "web/huge.min.js", "var b=2;" * 250_000)  # 2 MB on one line: over the size cap
    _write(root, "web/long.js", "var c=3;" * 200 + "\n")  # 1600-char line, under the size cap
    return root


def test_project_folder_reads_only_what_git_sees(tmp_path):
    docs, report = folders.read_user_source(_project(tmp_path / "proj"))
    assert sorted((d.path, d.language, d.domain) for d in docs) == [
        ("README.md", "markdown", "english"),
        ("conf/settings.yaml", "yaml", "code"),  # config is in the extension table (issue 20)
        ("src/app.py", "python", "code"),
        ("src/keep.gen.py", "python", "code"),
        ("src/util.py", "python", "code"),
        ("sub/lib.go", "go", "code"),
    ]
    assert report.skipped_dirs == {".git": 1, ".venv": 1, "dist": 1, "node_modules": 1}
    assert report.unknown_extensions == {".json": 1, "(no extension)": 2}  # + the two .gitignore
    assert report.skipped == {"gitignored": 4, "unknown_extension": 3, "too_large": 1, "long_line": 1}
    assert report.kept == {"python": 3, "yaml": 1, "markdown": 1, "go": 1}
    line = report.summary()
    assert "too_large 1" in line and ".json 1" in line and "node_modules 1" in line and "python 3" in line


def test_include_exclude_globs_and_caps(tmp_path):
    root = _project(tmp_path / "proj")
    docs, report = folders.read_user_source(root, include=["*.py", "*.js"], exclude=["src/util.py", "web/"],
                                            max_line_chars=None)
    assert sorted(d.path for d in docs) == ["src/app.py", "src/keep.gen.py"]
    # not included: README.md, sub/lib.go, package.json, conf/settings.yaml, two .gitignore; excluded: src/util.py, web/
    assert report.skipped["excluded"] == 8
    docs, report = folders.read_user_source(root, include=["web/*.js"], max_line_chars=None)
    assert [d.path for d in docs] == ["web/long.js"] and report.skipped["too_large"] == 1
    docs, _ = folders.read_user_source(root, include=["web/*.js"], max_file_bytes=None, max_line_chars=None)
    assert sorted(d.path for d in docs) == ["web/huge.min.js", "web/long.js"]


def test_max_docs_is_a_hash_sample_not_the_first_files(tmp_path):
    for i in range(30):
        _write(tmp_path / "p", f"f{i:02d}.py", _code(i))
    docs, report = folders.read_user_source(tmp_path / "p", max_docs=5)
    rels = [f"f{i:02d}.py" for i in range(30)]
    by_hash = sorted(rels, key=lambda r: hashlib.sha256(r.encode()).hexdigest())[:5]
    assert [d.path for d in docs] == by_hash
    assert by_hash != rels[:5]
    assert report.skipped == {"over_max_docs": 25} and report.kept == {"python": 5}
    assert [d.path for d in folders.read_user_source(tmp_path / "p", max_docs=5)[0]] == by_hash
    with pytest.raises(CorpusError, match="max_docs must be positive"):
        folders.read_user_source(tmp_path / "p", max_docs=0)


def test_compare_flags_reach_the_folder_reader(tmp_path, capsys):
    from tokstudy import cli

    root = _project(tmp_path / "proj")
    a = cli.build_parser().parse_args(["compare", str(root), "gpt2", "--include", "*.py", "--include", "web/*.js",
                                       "--exclude", "src/util.py", "--max-docs", "1", "--max-file-bytes", "1000",
                                       "--max-line-chars", "5000"])
    ds = cli._docs_from(a.corpus, a)
    assert list(ds) == ["python"] and len(ds["python"][1]) == 1
    printed = capsys.readouterr().out
    # app.py and keep.gen.py are python: one over --max-docs; long.js (1601 bytes) and huge.min.js over 1000 bytes
    assert "over_max_docs 1" in printed and "too_large 2" in printed and "long_line" not in printed


def test_cli_exits_nonzero_naming_the_bad_record(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "language": "python"}\n{"text": 12345, "language": "python"}\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "tokstudy.cli", "compare", str(bad), "gpt2",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{bad}:2: needs a string field 'text', got 12345" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


_GOOD = {"text": "x = 1\n", "language": "python", "domain": "code", "source": "s", "path": "a.py",
         "sha256": hashlib.sha256(b"x = 1\n").hexdigest()}


@pytest.mark.parametrize("change, message", [
    ({"text": None}, "needs a string field 'text', got null"),
    ({"text": 12345}, "needs a string field 'text', got 12345"),
    ({"sha256": "0" * 64}, "'sha256' 0000000000000000... does not match its text"),
    ({"domain": "klingon"}, "'domain' must be one of"),
    ({"language": ""}, "'language' must be a non-empty string"),
    ({"extra": 1}, r"fields unknown \['extra'\]"),
])
def test_read_split_validates_every_record(tmp_path, change, message):
    f = tmp_path / "train.jsonl"
    f.write_text(json.dumps(_GOOD) + "\n" + json.dumps({**_GOOD, **change}) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"train\.jsonl:2: {message}.*dvc repro corpus"):
        corpus.read_split(f)
    f.write_text(json.dumps(_GOOD) + "\n", encoding="utf-8")
    assert corpus.read_split(f) == [Document(**_GOOD)]


def test_bad_jsonl_source_fails_the_build_and_writes_nothing(tmp_path):
    f = tmp_path / "user.jsonl"
    f.write_text(json.dumps({"text": "a fine document with enough words"}) + "\n" + '{"text": null}\n',
                 encoding="utf-8")
    spec = _spec(name="user", kind="jsonl", language="prose", domain="english", path=str(f))
    with pytest.raises(CorpusError, match=r"user\.jsonl:2: needs a string field 'text', got null"):
        _build(_params(), out_dir=tmp_path / "o", sources=[spec])
    f.write_text(json.dumps({"text": "a fine document", "domain": "code"}) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"user\.jsonl:1: domain 'code' differs from sources\.user\.domain"):
        _build(_params(), out_dir=tmp_path / "o", sources=[spec])
    assert not (tmp_path / "o").exists()


def test_jsonl_source_in_build(tmp_path):
    f = tmp_path / "user.jsonl"
    f.write_text("".join(json.dumps({"text": f"user document number {i} with some words"}) + "\n" for i in range(20)),
                 encoding="utf-8")
    spec = _spec(name="user", kind="jsonl", language="prose", domain="english", path=str(f))
    m = _build(_params(), out_dir=tmp_path / "o", sources=[spec])
    assert m["sources"]["user"]["files"] == 20
    assert m["sources"]["user"]["path"] == str(f)


@pytest.mark.slow
def test_smoke_profile_build_from_fetched_artifacts(tmp_path):
    """The smoke corpus (its pinned artifacts from the user cache, fetched once): three domains, two datasets each."""
    P = params.load("smoke")
    m = _build(P, out_dir=tmp_path / "corpus")
    assert m["bytes"] <= P.corpus.budget_bytes
    assert set(m["sources"]) == set(P.corpus.sources)
    for domain in params.DOMAINS:
        langs = {s["language"] for s in m["sources"].values() if s["files"] and s["domain"] == domain}
        assert len(langs) >= 2, (domain, langs)
    for name, s in m["sources"].items():
        assert s["artifact"]["sha256"] == P.sources[name].sha256 or s["artifact"]["moved"]
    assert all(m["splits"][s]["documents"] > 0 for s in corpus.SPLITS)
    # read back: no split group straddles splits, and the recorded overlap is the one the files give
    back = {s: corpus.read_split(tmp_path / "corpus" / f"{s}.jsonl") for s in corpus.SPLITS}
    assert corpus.straddling(back, corpus.group_of(m)) == []
    assert m["overlap"]["test"] == corpus.verbatim_overlap(back["train"], back["test"])
    assert set(m["overlap"]["test"]["datasets"]) == set(m["splits"]["test"]["languages"])
    assert m["overlap"]["test"]["domains"]["code"]["share"] < 0.05  # measured 0.013 (0.021 split per document)


def test_auto_language_from_extension(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    return 1\n" * 5)
    (tmp_path / "b.go").write_text("package main\nfunc main() {}\n" * 5)
    (tmp_path / "notes.md").write_text("Some prose about the code, long enough to count.\n" * 3)
    docs, _ = folders.read_user_source(tmp_path, "auto", "auto")
    ds = corpus.datasets(docs)
    assert ds["python"][0] == "code" and ds["go"][0] == "code" and ds["markdown"][0] == "english"
    assert folders.language_of("x/Y.CPP") == ("c++", "code") and folders.language_of("data.json") is None
    # an explicit language still wins
    assert {d.language for d in folders.read_user_source(tmp_path, "mine", "code")[0]} == {"mine"}


def _lang_doc(language: str, i: int) -> Document:
    text = f"{language} document {i}\n"
    return Document(text=text, language=language, domain="code", source=language, path=f"{i}.txt",
                    sha256=sources.sha256_text(text))


def test_small_datasets_are_topped_up_to_min_test_docs():
    big = [_lang_doc("big", i) for i in range(400)]
    small = [_lang_doc("small", i) for i in range(9)]
    cp = _params(val_fraction=0.0, test_fraction=0.05, min_test_docs=6).corpus
    def group(d):
        return d.path

    plain = corpus.assign_splits(big + small, dataclasses.replace(cp, min_test_docs=0), group)
    topped = corpus.assign_splits(big + small, cp, group)
    # the big dataset already has >= 6 test documents: untouched
    assert [d for d in topped["test"] if d.language == "big"] == [d for d in plain["test"] if d.language == "big"]
    small_test = [d for d in topped["test"] if d.language == "small"]
    assert len(small_test) == 4  # min(6, 9 // 2): at most half a dataset moves
    # the moved documents (one-document groups here) are the small dataset's lowest-hash training groups
    was_train = sorted((d for d in plain["train"] if d.language == "small"),
                       key=lambda d: int(corpus.group_hash(d.path)[:8], 16) % corpus.SPLIT_MODULUS)
    already = [d for d in plain["test"] if d.language == "small"]
    assert {d.sha256 for d in small_test} == {d.sha256 for d in already + was_train[: 4 - len(already)]}
    assert sum(len(v) for v in topped.values()) == 409  # nothing dropped or duplicated
