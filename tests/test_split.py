"""The leak-free split: split groups, whole-group top-up and the verbatim-line overlap, hand-computed."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

from tokstudy import corpus, sources
from tokstudy.corpus import Document
from tokstudy.errors import CorpusError
from tokstudy.params import CorpusParams, SourceSpec


def _cp(**kw) -> CorpusParams:
    base = dict(budget_bytes=10_000_000, max_file_bytes=5_000, max_line_chars=500, min_file_bytes=10,
                val_fraction=0.1, test_fraction=0.2, min_test_docs=0, max_files_per_source=1_000, sources=None)
    return CorpusParams(**{**base, **kw})


def _doc(text: str, language: str = "python", domain: str = "code", path: str = "a.py", source: str = "s") -> Document:
    return Document(text=text, language=language, domain=domain, source=source, path=path,
                    sha256=sources.sha256_text(text))


def _spec(**kw) -> SourceSpec:
    return SourceSpec(**{"fetch": None, "sha256": None, "root": None, "path": None, "include": ("**/*",),
                         "exclude": (), "package": (), **kw})


def _write(root: Path, rel: str, data: str | bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)


def test_group_keys_hand_checked():
    gk = sources.group_key
    assert gk("dir", "asyncio/tasks.py") == "dir:asyncio/"
    assert gk("python-stdlib", "net/http/server.go") == "dir:net/http/"
    assert gk("zip", "java.base/java/util/concurrent/X.java") == "dir:java.base/java/util/concurrent/"
    assert gk("dir", "os.py") == "file:os.py"  # a file at the root is its own group
    assert gk("dir", "completions/make", frozenset({"completions"})) == "file:completions/make"  # flat directory
    assert gk("dir", "helpers/x", frozenset({"completions"})) == "dir:helpers/"
    # a man page: the same group in every section (and, by key, every language)
    assert gk("manpages", "man3/printf.3.gz") == gk("manpages", "man1/printf.1") == "page:printf"
    assert gk("manpages", "man5/systemd.unit.5.xz") == "page:systemd.unit"
    assert gk("manpages", "man7/README") == "page:README"
    assert gk("jsonl", "x.jsonl:3") == "file:x.jsonl:3"
    # flat: more than half of the candidates in one directory (exactly half is not flat)
    assert sources.flat_dirs(["a/1", "a/2", "a/3", "b/1"]) == frozenset({"a"})
    assert sources.flat_dirs(["a/1", "b/1"]) == frozenset()
    assert sources.flat_dirs(["x", "y", "a/1"]) == frozenset({""})


def test_verbatim_overlap_hand_computed():
    long_a = "result = compute_the_answer(alpha, beta)"  # 40 chars
    long_b = "another_line_that_is_long_enough_to_count()"  # 43 chars
    line29 = "x" * 29
    line30 = "y" * 30
    train = [_doc(f"{long_a}\nshort\n{line29}\n{line30}\n", path="t.py")]
    test = [
        # indented copy of long_a counts (stripped), with its indent and newline: 4 + 40 + 1 = 45 bytes;
        # "short" and the 29-char line appear in train but are under 30 chars; long_b is new;
        # the 30-char line is the last line, without a newline: 30 bytes
        _doc(f"    {long_a}\nshort\n{line29}\n{long_b}\n{line30}", path="u.py"),
        _doc("nothing in common here\n", language="go", path="v.go"),
    ]
    n0 = 45 + 6 + 30 + 44 + 30
    assert test[0].nbytes == n0 == 155
    o = corpus.verbatim_overlap(train, test)
    assert o["min_line_chars"] == 30
    py = o["datasets"]["python"]
    assert (py["documents"], py["bytes"], py["overlap_bytes"]) == (1, 155, 75)
    assert py["share"] == 75 / 155
    assert o["datasets"]["go"]["overlap_bytes"] == 0 and o["datasets"]["go"]["share"] == 0.0
    assert o["domains"]["code"] == o["all"] == {"documents": 2, "bytes": 155 + 23, "overlap_bytes": 75,
                                                "share": 75 / 178}
    # a whole-document copy is all overlap (every line long): share 1
    twin = _doc(f"{long_a}\n{long_a}\n", path="w.py")
    assert corpus.verbatim_overlap([twin], [twin])["all"]["share"] == 1.0


def test_top_up_moves_whole_groups_and_never_past_half():
    # 14 "small" documents: one group of 8 and three groups of 2; no test share by hash (test_fraction 0)
    groups = {"big": 8, "g1": 2, "g2": 2, "g3": 2}
    docs = [_doc(f"{g} {i}\n", language="small", path=f"{g}/{i}") for g, n in groups.items() for i in range(n)]
    cp = _cp(val_fraction=0.0, test_fraction=0.0, min_test_docs=4)

    def group(d):
        return d.path.split("/")[0]

    out = corpus.assign_splits(docs, cp, group)
    # want min(4, 14 // 2) = 4: the two lowest-hash groups of 2 move whole; the group of 8 would pass half
    order = sorted(["g1", "g2", "g3"], key=lambda g: int(corpus.group_hash(g)[:8], 16) % corpus.SPLIT_MODULUS)
    assert {group(d) for d in out["test"]} == set(order[:2])
    assert len(out["test"]) == 4 and len(out["train"]) == 10
    assert corpus.straddling(out, group) == []
    # the split of a group never splits it: here one group of 8 per hash
    single = corpus.assign_splits(docs, dataclasses.replace(cp, min_test_docs=0), group)
    assert single["test"] == [] and len(single["train"]) == 14


def test_built_corpus_keeps_packages_and_pages_whole(tmp_path):
    """40 packages of 3 files sharing a package line; every file has the same licence line; man pages in 2 sections."""
    licence = "# Licensed under the Example Public License 2.0"  # 47 chars, in every file
    src = tmp_path / "src"
    for p in range(40):
        for f in range(3):
            _write(src, f"pkg{p:02d}/mod{f}.py", f"{licence}\nPACKAGE_{p:02d}_SHARED_CONSTANT = 'same in the package'\n"
                                                  f"def f_{p}_{f}():\n    return {p * 10 + f}\n")
    man = tmp_path / "man"
    for page in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta"):
        for sec in (1, 3):
            _write(man, f"man{sec}/{page}.{sec}.gz", gzip.compress(
                f".TH {page.upper()} {sec}\n.SH NAME\n{page} \\- the {page} page of section {sec}\n".encode()))
    specs = [_spec(name="py", kind="dir", language="python", domain="code", root=str(src)),
             _spec(name="man", kind="manpages", language="english-man", domain="english", root=str(man))]
    m = corpus.build(specs, _cp(), tmp_path / "out", label="unit")
    back = {s: corpus.read_split(tmp_path / "out" / f"{s}.jsonl") for s in corpus.SPLITS}
    group = corpus.group_of(m)
    assert corpus.straddling(back, group) == []
    where = {}
    for s, docs in back.items():
        for d in docs:
            where.setdefault(group(d), set()).add(s)
    assert len(where) == 40 + 6 and all(len(v) == 1 for v in where.values())  # 40 packages + 6 pages, each whole
    assert group(next(d for d in back["train"] + back["test"] + back["validation"] if d.path == "man3/beta.3.gz")) \
        == "page:beta"
    test_py = [d for d in back["test"] if d.language == "python"]
    assert test_py and len(test_py) % 3 == 0  # whole packages
    # the package line never leaks (its package is all in test); the licence line does, in every test file
    o = m["overlap"]["test"]["datasets"]["python"]
    assert o["overlap_bytes"] == len(test_py) * (len(licence) + 1)
    assert o["share"] == o["overlap_bytes"] / sum(d.nbytes for d in test_py)
    assert m["splits"]["test"]["languages"]["python"]["groups"] == len(test_py) // 3
    assert m["sources"]["py"]["groups"] == {"flat_dirs": [], "kept": 40}



def test_group_of_an_old_manifest_names_the_rebuild():
    with pytest.raises(CorpusError, match="no split groups.*dvc repro corpus"):
        corpus.group_of({"sources": {"py": {"kind": "dir"}}})
