"""Byte-level BPE training, layout, saving, round-trips, handles and truncation."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tokstudy import bpe, params, pretok, tokenizer
from tokstudy.errors import TokenizerError

ROUND_TRIP = [
    "def f(x):\n    if x:\n        return x  # four/eight-space indent\n",
    "\tif (a) {\n\t\treturn b;\n\t}\n",
    "line one\r\nline two\r\n\r\n",
    "emoji 😀🎉👩‍💻 and CJK 日本語の文章 中文 한국어",
    "NUL\x00bytes\x00\x00 and \x01\x7f controls",
    "   leading and trailing spaces   ",
    "<pad> <|end_of_text|> special-looking strings in text",
    "",
    "ÿ\u0100 Ġ Ċ ▁ <0x0A>",
]


@pytest.fixture(scope="module")
def texts():
    import email
    import json as json_mod

    out = []
    for mod in (json_mod, email):
        for f in sorted(Path(mod.__file__).parent.glob("*.py")):
            out.append(f.read_text(encoding="utf-8"))
    out.append("English prose: the quick brown fox jumps over the lazy dog. " * 50)
    out.append("日本語の文章 emoji 😀 " * 20)
    return out


def variant(**kw):
    base = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), name="test", vocab_size=512, mix="code70")
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def hf_tok(texts):
    return bpe.train(texts, variant())


def test_layout_and_exact_vocab_size(hf_tok):
    v = variant()
    assert hf_tok.get_vocab_size(with_added_tokens=True) == 512
    d = json.loads(hf_tok.to_str())
    vocab = d["model"]["vocab"]
    assert [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1])[:6]] == list(v.special_tokens)
    assert [(t["id"], t["content"], t["special"]) for t in d["added_tokens"]] == [
        (i, s, True) for i, s in enumerate(v.special_tokens)
    ]
    byte_syms = sorted(vocab.items(), key=lambda kv: kv[1])[6:262]
    assert [tokenizer.from_bytelevel(t) for t, _ in byte_syms] == [bytes([b]) for b in range(256)]
    assert sorted(vocab.values()) == list(range(512))
    # every merge result id follows the order of the merges
    ids = [vocab[a + b] for a, b in tokenizer.merge_pairs(d["model"])]
    assert ids == sorted(ids) and ids[0] == 262 and ids[-1] == 511
    assert d["decoder"]["type"] == "ByteLevel"
    assert d["pre_tokenizer"]["pretokenizers"][0]["behavior"] == "Isolated"


@pytest.mark.parametrize("engine", bpe.ENGINES)
def test_deterministic(texts, engine):
    a = bpe.train(texts, variant(vocab_size=400), seed=1, engine=engine)
    b = bpe.train(texts, variant(vocab_size=400), seed=1, engine=engine)
    assert a.to_str() == b.to_str()


def test_errors(texts):
    with pytest.raises(TokenizerError, match="minimum is 262"):
        bpe.train(texts, variant(vocab_size=261))
    assert bpe.train(texts, variant(vocab_size=262)).get_vocab_size() == 262
    with pytest.raises(TokenizerError, match="no training text"):
        bpe.train([], variant())
    with pytest.raises(TokenizerError, match="no training text"):
        bpe.train(["", ""], variant())
    with pytest.raises(TokenizerError, match="unknown BPE engine"):
        bpe.train(texts, variant(), engine="sentencepiece")
    with pytest.raises(TokenizerError, match="reached only"):
        bpe.train(["ab ab"], variant(vocab_size=300))


def test_max_token_length(texts):
    tok = bpe.train(texts, variant(regex="identity", vocab_size=700, max_token_length=4))
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    assert max(len(t) for t, i in vocab.items() if i >= 262) <= 4
    free = json.loads(bpe.train(texts, variant(regex="identity", vocab_size=700)).to_str())["model"]["vocab"]
    assert max(len(t) for t in free) > 4  # the cap is what limits the length


def test_save_and_round_trip_tokenizers_and_transformers(hf_tok, tmp_path):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    path = bpe.save(hf_tok, tmp_path / "tok", {"variant": variant(), "engine": "hf"})
    meta = json.loads((tmp_path / "tok" / "meta.json").read_text())
    assert meta["vocab_size"] == 512 and meta["variant"]["regex"] == "gpt4" and meta["engine"] == "hf"
    import hashlib

    assert meta["tokenizer_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p for p in (tmp_path).iterdir() if p.name.startswith(".")]  # no temp leftovers

    tok = Tokenizer.from_file(str(path))
    fast = PreTrainedTokenizerFast(tokenizer_file=str(path), clean_up_tokenization_spaces=False)
    assert len(fast) == 512
    handle = tokenizer.load(path)
    for text in ROUND_TRIP:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
        fids = fast.encode(text, add_special_tokens=False)
        assert fids == ids
        assert fast.decode(fids) == text
        hids = handle.encode(text)
        assert b"".join(handle.token_bytes(i) for i in hids) == text.encode("utf-8")
        assert handle.decode(hids) == text
    hf = handle.to_hf()
    assert hf.decode(hf.encode(ROUND_TRIP[0], add_special_tokens=False)) == ROUND_TRIP[0]
    assert hf.bos_token == "<|begin_of_text|>" and hf.pad_token_id == 2


def test_handle_bytelevel(hf_tok, tmp_path):
    h = tokenizer.load(bpe.save(hf_tok, tmp_path / "t", {}))
    assert h.vocab_size == 512 and h.special_ids == set(range(6)) and h.kind == "bytelevel"
    assert all(h.token_bytes(i) == b"" for i in range(6))
    assert [h.token_bytes(6 + b) for b in range(256)] == [bytes([b]) for b in range(256)]
    # Ġ-prefixed tokens stand for a leading space
    g = [i for i in range(262, 512) if h.tokenizer.id_to_token(i).startswith("Ġ")]
    assert g and all(h.token_bytes(i).startswith(b" ") for i in g)
    # the special-token strings inside text are plain text for encode()
    assert not set(h.encode("<pad>")) & h.special_ids
    for data in (b"\xff\xfe\x80 invalid utf-8 \xc3", "valid 😀".encode(), bytes(range(256)), b""):
        ids = h.encode_bytes(data)
        assert b"".join(h.token_bytes(i) for i in ids) == data
    # one pre-token: running the model without the regex gives the same ids as encode()
    assert h.encode_bytes(b" return") == h.encode(" return")
    assert h.decode(h.encode_bytes(b"abc\xff")) == "abc\ufffd"


def test_load_hf_directory(hf_tok, tmp_path):
    hf = tokenizer.load(bpe.save(hf_tok, tmp_path / "a", {})).to_hf()
    hf.save_pretrained(tmp_path / "hfdir")
    h = tokenizer.load(tmp_path / "hfdir")
    assert h.vocab_size == 512 and h.encode(ROUND_TRIP[1]) == hf_tok.encode(ROUND_TRIP[1]).ids
    with pytest.raises(TokenizerError, match="cannot load tokenizer"):
        tokenizer.load(tmp_path / "missing.json")


def test_bpeasy_engine_same_layout(texts, tmp_path):
    tok = bpe.train(texts, variant(), engine="bpeasy")
    path = bpe.save(tok, tmp_path / "b", {"engine": "bpeasy"})
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_file=str(path), clean_up_tokenization_spaces=False)
    assert len(fast) == 512
    d = json.loads(path.read_text())
    ref = json.loads(bpe.train(texts, variant()).to_str())
    ids = lambda dd: sorted(dd["model"]["vocab"].items(), key=lambda kv: kv[1])[:262]  # noqa: E731
    assert ids(d) == ids(ref)
    assert d["pre_tokenizer"] == ref["pre_tokenizer"] and d["added_tokens"] == ref["added_tokens"]
    for text in ROUND_TRIP:
        assert fast.decode(fast.encode(text, add_special_tokens=False)) == text
    # bpeasy's rank-based encoder and our HF merges give the same ids
    import bpeasy
    import tiktoken

    ranks = bpeasy.train_bpe(iter(texts), pretok.get("gpt4").pattern, 128, 512 - 6)
    enc = tiktoken.Encoding("t", pat_str=pretok.get("gpt4").pattern, mergeable_ranks=ranks, special_tokens={})
    h = tokenizer.load(path)
    sample = texts[0][:3000]
    expected = [enc.decode_single_token_bytes(i) for i in enc.encode(sample)]
    assert [h.token_bytes(i) for i in h.encode(sample)] == expected


def test_truncate_equals_training_at_smaller_size(texts):
    """Measured: truncating a V=1024 HF run gives the *identical* tokenizer.json as training at V."""
    big = bpe.train(texts, variant(vocab_size=1024))
    for v in (262, 300, 400, 512, 768, 1024):
        small = bpe.train(texts, variant(vocab_size=v))
        cut = bpe.truncate(big, v)
        assert cut.get_vocab_size() == v
        assert cut.to_str() == small.to_str(), v
    with pytest.raises(TokenizerError, match="must be in"):
        bpe.truncate(big, 2000)


def test_truncate_bpeasy(texts):
    big = bpe.train(texts, variant(vocab_size=768), engine="bpeasy")
    small = bpe.train(texts, variant(vocab_size=400), engine="bpeasy")
    assert bpe.truncate(big, 400).to_str() == small.to_str()


def test_sweep_from_one_run_matches_separate_training():
    import dataclasses

    from tokstudy import params

    v = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), vocab_size=400)
    texts = [f"def f(x):\n    return x + {i}\n" * 3 + "The quick brown fox. " * (i % 5) for i in range(200)]
    rows = bpe.sweep_from_one_run(texts, v, [300, 350, 400], compare=True)
    ident = {r["vocab_size"]: r["value"] for r in rows if r["metric"] == "identical"}
    assert ident == {300: 1.0, 350: 1.0, 400: 1.0}
    assert any(r["metric"] == "speedup" for r in rows)
    assert all(r["tokenizer"] == "gpt4-m" for r in rows)


# --------------------------------------------------------------------------- names vs patterns, meta, atomic saves
def test_regex_names_and_raw_patterns(texts):
    with pytest.raises(TokenizerError, match=r"unknown pre-tokenizer name 'gpt-4'; known: gpt2, gpt4"):
        bpe.train(texts, variant(regex="gpt-4"))
    with pytest.raises(TokenizerError, match="not both"):
        bpe.check_variant(variant(pattern=r"\d+|\D+"))
    raw = r" ?\p{L}+|\p{N}|[^\s\p{L}\p{N}]+|\s+"
    info: dict = {}
    tok = bpe.train(texts, variant(regex=None, pattern=raw, vocab_size=300), info=info)
    d = json.loads(tok.to_str())
    assert d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == raw
    assert (info["regex"], info["pattern"]) == (None, raw)
    named: dict = {}
    bpe.train(texts, variant(vocab_size=300), info=named)
    assert (named["regex"], named["pattern"]) == ("gpt4", pretok.get("gpt4").pattern)
    assert named["train_texts_sha256"] == bpe.texts_sha256([t for t in texts if t])
    assert bpe.texts_sha256(["ab", "c"]) != bpe.texts_sha256(["a", "bc"])  # text boundaries count


def test_params_variant_with_a_pattern(tmp_path):
    from tokstudy import paths

    text = (paths.ROOT / "params.yaml").read_text()
    raw = r"\p{L}+|\p{N}|[^\p{L}\p{N}]+"
    text = text.replace("tokenizers:\n", f"tokenizers:\n  raw-m: {{pattern: '{raw}', vocab: m, mix: code70}}\n", 1)
    (tmp_path / "params.yaml").write_text(text)
    v = params.load("smoke", path=tmp_path / "params.yaml").tokenizer("raw-m")
    s = bpe.check_variant(v)
    assert (s.regex, s.pattern) == (None, raw)


def _user_folder(root: Path) -> Path:
    root.mkdir()
    (root / "a.py").write_text("".join(f"def f{i}(x):\n    return x * {i}\n" for i in range(60)))
    (root / "notes.md").write_text("Some English prose about the project and its tokens.\n" * 30)
    return root


def _train_cli(*args):
    from tokstudy import cli

    return cli.main(["train", "--profile", "smoke", *map(str, args)])


def test_cli_train_records_the_pattern_and_data(tmp_path):
    data, out = _user_folder(tmp_path / "data"), tmp_path / "tok"
    raw = r" ?\p{L}+|\p{N}|[^\s\p{L}\p{N}]+|\s+"
    assert _train_cli("--data", data, "--regex-pattern", raw, "--vocab-size", 300, "--out", out) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["pattern"] == raw and meta["regex"] is None and meta["variant"]["pattern"] == raw
    assert meta["data"] == str(data.resolve()) and meta["data_sha256"] == meta["train_texts_sha256"]
    assert len(meta["data_sha256"]) == 64
    import tokstudy

    assert (meta["engine"], meta["vocab_size"], meta["seed"]) == ("hf", 300, params.load("smoke").seed)
    assert meta["tokstudy_version"] == tokstudy.__version__
    # a JSONL file: its own sha256, checkable with sha256sum
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"def g{i}(y):\n    return y - {i}\n" * 5}) + "\n" for i in range(80)))
    assert _train_cli("--data", jsonl, "--regex", "punct", "--vocab-size", 300, "--out", tmp_path / "j") == 0
    meta = json.loads((tmp_path / "j" / "meta.json").read_text())
    from tokstudy.results import sha256_file

    assert meta["data_sha256"] == sha256_file(jsonl) and meta["regex"] == "punct"
    assert meta["pattern"] == pretok.get("punct").pattern


@pytest.mark.parametrize("args, message", [
    (["--regex", "gpt-4"], "unknown pre-tokenizer name 'gpt-4'; known: gpt2, gpt4, gpt4-num2, identity"),
    (["--regex", "gpt5"], "--regex-pattern PATTERN"),
    (["--regex-pattern", "(ab"], "invalid pre-tokenizer regex"),
    (["--regex-pattern", "gpt4"], "is a pre-tokenizer name: use `--regex gpt4`"),
])
def test_cli_train_bad_regex_fails_before_reading_data(tmp_path, monkeypatch, capsys, args, message):
    from tokstudy import folders

    def no_reading(*a, **k):
        raise AssertionError("data was read before the regex was checked")

    monkeypatch.setattr(folders, "read_user_source", no_reading)
    out = tmp_path / "tok"
    assert _train_cli("--data", tmp_path, *args, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_train_regex_and_pattern_together_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        _train_cli("--data", tmp_path, "--regex", "gpt4", "--regex-pattern", r"\d+", "--out", tmp_path / "t")
    assert err.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_cli_train_subprocess_exit_code_and_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "tokstudy.cli", "train", "--profile", "smoke", "--data", str(tmp_path),
                        "--regex", "gpt-4", "--out", str(tmp_path / "t")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(bpe.__file__).parents[1])})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("error: unknown pre-tokenizer name 'gpt-4'")
    assert not (tmp_path / "t").exists()


def test_failed_train_leaves_the_old_tokenizer_unchanged(tmp_path, monkeypatch, capsys):
    data, out = _user_folder(tmp_path / "data"), tmp_path / "tok"
    assert _train_cli("--data", data, "--vocab-size", 300, "--out", out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # training fails (too few distinct pairs for the size): nothing replaced
    assert _train_cli("--data", data, "--vocab-size", 50000, "--out", out) == 2
    assert "reached only" in capsys.readouterr().err
    # writing fails half-way (tokenizer.json written, meta.json not): nothing replaced
    real_dumps = json.dumps

    def dumps(obj, **kw):
        if isinstance(obj, dict) and "tokenizer_sha256" in obj:
            raise OSError("disk full")
        return real_dumps(obj, **kw)

    monkeypatch.setattr(bpe.json, "dumps", dumps)
    with pytest.raises(OSError, match="disk full"):
        _train_cli("--data", data, "--vocab-size", 301, "--out", out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tok"]  # no temp folders left


def test_training_twice_saves_the_same_folder_bytes(texts, tmp_path):
    """meta.json holds no durations, so the same variant trained twice on the same texts gives byte-identical
    folders: DVC sees an unchanged output and does not rerun the stages that read the tokenizer."""
    folders = []
    for k in range(2):
        info: dict = {}
        tok = bpe.train(texts, variant(), seed=1, info=info)
        assert info["train_seconds"] > 0  # measured (the run record keeps it) ...
        folders.append(bpe.save(tok, tmp_path / str(k), {"variant": variant(), **info, "truncate_seconds": 1.0}).parent)
    meta = json.loads((folders[0] / "meta.json").read_text())
    assert not [k for k in meta if k.endswith("_seconds")]  # ... but meta.json does not
    first, second = ({p.name: p.read_bytes() for p in f.iterdir()} for f in folders)
    assert first == second


def test_save_refuses_a_folder_with_other_files(hf_tok, tmp_path):
    (tmp_path / "project.py").write_text("keep me")
    with pytest.raises(TokenizerError, match=r"holds other files \(project.py\)"):
        bpe.save(hf_tok, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["project.py"]


def test_rustbpe_trains_round_trips_and_equals_bpeasy(texts, tmp_path):
    """rustbpe (nanochat's trainer) gives the same layout and, on this text, the same merges as bpeasy;
    compression within 0.1% of HF's on held-out text (they may order ties differently)."""
    tok = bpe.train(texts, variant(), engine="rustbpe")
    assert tok.get_vocab_size(with_added_tokens=True) == 512
    h = tokenizer.load(bpe.save(tok, tmp_path / "r", {"engine": "rustbpe"}))
    sample = "def f(x):\r\n\treturn x  # \x00 😀 日本語"
    assert h.decode(h.encode(sample)) == sample
    assert tok.to_str() == bpe.train(texts, variant(), engine="bpeasy").to_str()
    held = texts[::7]
    hf = bpe.train(texts, variant(), engine="hf")
    n_r, n_h = (sum(len(e.ids) for e in t.encode_batch(held, add_special_tokens=False)) for t in (tok, hf))
    assert abs(n_r / n_h - 1) < 1e-3


def test_rustbpe_refuses_a_token_longer_than_max_token_length(texts):
    texts = texts + ["x = 1\n" + "=" * 200 + "\n"] * 300
    with pytest.raises(TokenizerError, match="rustbpe' learned a 201-byte token but max_token_length is 128"):
        bpe.train(texts, variant(vocab_size=512), engine="rustbpe")
    hf = bpe.train(texts, variant(vocab_size=512), engine="hf")  # hf caps it
    assert max(len(t) for t in hf.get_vocab()) <= 128


def test_chunk_texts_cuts_at_line_ends_and_joins_back():
    texts = ["ab\ncd\nefgh\n", "x", "a-very-long-line-without-newline\nz"]
    pieces = bpe.chunk_texts(texts, 6)
    assert pieces == ["ab\ncd\n", "efgh\n", "x", "a-very-long-line-without-newline\n", "z"]
    assert "".join(pieces) == "".join(texts)
    with pytest.raises(TokenizerError, match="chunk_bytes must be positive"):
        bpe.chunk_texts(texts, 0)


def test_identity_chunk_bytes_trains_on_pieces(texts):
    """Identity (no pre-tokenizer) on line-aligned pieces: exactly V tokens, the pieces recorded, and no
    token crosses a piece boundary (so no token is longer than the longest piece)."""
    info: dict = {}
    tok = bpe.train(texts, variant(regex="identity", vocab_size=400, max_token_length=32, chunk_bytes=64), info=info)
    assert tok.get_vocab_size(with_added_tokens=True) == 400
    assert info["chunk_bytes"] == 64 and info["train_pieces"] == len(bpe.chunk_texts(texts, 64)) > len(texts)
