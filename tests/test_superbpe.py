"""SuperBPE-style two-stage training (tokstudy.superbpe): layout, stage-1 prefix, superwords, exactness, loading."""

import dataclasses
import json
from pathlib import Path

import pytest

from tokstudy import bpe, params, pretok, superbpe, tiktokenfile, tokenizer
from tokstudy.errors import TokenizerError, TokstudyError

V, T = 1200, 700  # final vocab size and transition (vocab size at which stage 2 starts)

ROUND_TRIP = [
    "def f(x):\n    if x:\n        return x  # four/eight-space indent\n",
    "\tif (a) {\n\t\treturn b;\n\t}\n",
    "line one\r\nline two\r\n\r\n",
    "emoji 😀🎉👩‍💻 and CJK 日本語の文章 中文 한국어",
    "NUL\x00bytes\x00\x00 and \x01\x7f controls \x1b[0m",
    "   leading and trailing spaces   ",
    "numbers 1234567 3.14159 0xDEADBEEF 2025-03-17",
    "<pad> <|end_of_text|> special-looking strings in text",
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
    out.append("By the way, the quick brown fox jumps over the lazy dog. " * 50)
    out.append("日本語の文章 emoji 😀 " * 20)
    return out


def variant(**kw):
    base = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), name="sb", vocab_size=V, mix="code70")
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def run(texts):
    return superbpe.train_stages(texts, variant(), T)


def test_vocab_size_exact_and_layout(run):
    tok = run.tokenizer
    assert tok.get_vocab_size(with_added_tokens=True) == V
    d = json.loads(tok.to_str())
    order = [t for t, _ in sorted(d["model"]["vocab"].items(), key=lambda kv: kv[1])]
    assert order[:6] == list(variant().special_tokens)
    assert [tokenizer.from_bytelevel(t) for t in order[6:262]] == [bytes([b]) for b in range(256)]
    assert max(d["model"]["vocab"].values()) == V - 1
    assert d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == r"\p{N}{1,3}|[^\p{N}]+"


def test_first_merges_are_the_plain_stage1_run(texts, run):
    plain = bpe.train(texts, variant(vocab_size=T))
    first = tokenizer.merge_pairs(json.loads(plain.to_str())["model"])
    merges = tokenizer.merge_pairs(json.loads(run.tokenizer.to_str())["model"])
    assert len(first) == run.stage1_merges == T - 262
    assert merges[: len(first)] == first
    assert len(merges) - len(first) == run.stage2_merges >= V - T


def test_superword_tokens_exist_only_after_stage1(run):
    vocab = json.loads(run.tokenizer.to_str())["model"]["vocab"]
    by_id = {i: tokenizer.from_bytelevel(t) for t, i in vocab.items() if i >= 6}
    spans_space = [b for i, b in by_id.items() if b" " in b.strip(b" ") and not b.strip().isdigit()]
    assert spans_space, "stage 2 learned no token spanning a space"
    assert all(i >= T for i, b in by_id.items() if b" " in b.strip(b" ")), "a stage-1 token spans a space"
    # the paper's example phrase becomes fewer tokens than under the plain regex
    assert len(run.tokenizer.encode("By the way, the quick brown fox").ids) < len(
        run.replay.encode("By the way, the quick brown fox").ids)


def test_digits_never_merge_with_neighbours(run):
    for tok in run.tokenizer.encode("x = 1234567 + y12 and 99 bottles").tokens:
        b = tokenizer.from_bytelevel(tok)
        assert b.isdigit() or not any(c in b"0123456789" for c in b), tok


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_any_text(run, text):
    tok = run.tokenizer
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text


@pytest.fixture(scope="module")
def handle(tmp_path_factory, run):
    out = bpe.save(run.tokenizer, tmp_path_factory.mktemp("sb") / "sb", {"variant": variant(), **run.info})
    return tokenizer.load(out.parent)


def test_round_trip_arbitrary_bytes(handle):
    data = bytes(range(256)) + "é😀 日本".encode() + b"\xff\xfe\x80 tail"
    ids = handle.encode_bytes(data)
    assert b"".join(handle.token_bytes(i) for i in ids) == data
    assert max(ids) < V and min(ids) >= 6


def test_saved_tokenizer_gives_the_counts_training_intended(texts, run):
    plain = [t for t in texts if "<|" not in t and "<pad>" not in t]  # special strings are matched only at encode
    assert run.collisions == 0 or run.info["stage2_collisions"] == run.collisions
    assert run.actual_tokens(plain) == run.intended_tokens(plain)
    held = ["def g(a, b):\n    return a + b  # the sum of a and b\n", "By the way, I am a fan of the Milky Way."]
    assert run.actual_tokens(held) == run.intended_tokens(held)


def test_deterministic(texts, run):
    again = superbpe.train(texts, variant(), T)
    assert again.to_str() == run.tokenizer.to_str()


def test_digits_lines_keeps_tokens_within_lines(texts):
    tok = superbpe.train(texts, variant(), T, boundaries="digits+lines")
    for piece in tok.encode("if x:\n    return y\n\nelse:\n    pass\n").tokens:
        b = tokenizer.from_bytelevel(piece)
        assert b.rstrip(b"\r\n").find(b"\n") < 0 or b.strip(b"\r\n") == b"", piece


def test_max_superword_parts_caps_stage2_tokens(texts):
    run2 = superbpe.train_stages(texts, variant(), T, max_superword_parts=2)
    assert max(len(w) for w in run2.stage2.get_vocab()) == 2 and run2.info["max_superword_parts"] == 2


def test_loads_in_transformers_and_tiktoken(tmp_path, run):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    out = bpe.save(run.tokenizer, tmp_path / "sb", {"variant": variant(), **run.info})
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(out)).to_str() == run.tokenizer.to_str()
    auto = AutoTokenizer.from_pretrained(str(out.parent))
    assert isinstance(auto, PreTrainedTokenizerFast) and len(auto) == V
    text = "By the way,\n    return 12345  # 😀 日本語"
    ids = run.tokenizer.encode(text, add_special_tokens=False).ids
    assert auto.encode(text, add_special_tokens=False) == ids and auto.decode(ids) == text
    handle = tokenizer.load(out.parent)
    if run.collisions:
        with pytest.raises(TokenizerError):
            tiktokenfile.export(handle, tmp_path / "sb.tiktoken")
        return
    rank_file, _ = tiktokenfile.export(handle, tmp_path / "sb.tiktoken")
    enc = tiktokenfile.encoding(rank_file)
    for t in ROUND_TRIP + [text]:
        assert enc.encode_ordinary(t) == handle.encode(t), t
        assert enc.decode(enc.encode_ordinary(t)) == t


@pytest.mark.parametrize("kw, transition, needle", [
    ({}, V, "transition"),
    ({}, V + 5, "transition"),
    ({}, 100, "transition"),
    ({"regex": "identity"}, T, "named stage-1 regex"),
    ({"regex": "gpt2"}, T, "named stage-1 regex"),
    ({"regex": "nope"}, T, "unknown pre-tokenizer name"),
])
def test_bad_inputs_are_one_line_errors(texts, kw, transition, needle):
    with pytest.raises(TokstudyError) as exc:
        superbpe.train(texts[:2], variant(**kw), transition)
    assert isinstance(exc.value, TokenizerError)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg


def test_bad_boundaries_and_parts(texts):
    with pytest.raises(TokenizerError, match="unknown stage-2 boundaries"):
        superbpe.train(texts[:2], variant(), T, boundaries="words")
    with pytest.raises(TokenizerError, match="max_superword_parts"):
        superbpe.train(texts[:2], variant(), T, max_superword_parts=1)


def test_stage2_pattern_covers_text_without_gaps():
    for regex in superbpe.DIGIT_RULES:
        for b in superbpe.BOUNDARIES:
            p = superbpe.stage2_pattern(regex, b)
            for t in ROUND_TRIP:
                assert "".join(m.group() for m in pretok._compiled(p).finditer(t)) == t
