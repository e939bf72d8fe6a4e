"""Tokenizer loading errors, unique labels, and the compare/overlap verbs with same-named tokenizers."""

import dataclasses

import pandas as pd
import pytest

from tokstudy import bpe, cli, params, tokenizer
from tokstudy.tokenizer import TokenizerError

TEXTS = [("def f%d(x):\n    return x * %d\n" % (i, i)) * 4 + "Some English prose here. " * 3 for i in range(150)]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Two different tokenizers in folders that share a name: a/gpt4-m and b/gpt4-m."""
    root = tmp_path_factory.mktemp("twins")
    base = params.load("smoke").tokenizer("gpt4-m")
    out = {}
    for folder, regex in (("a", "gpt4"), ("b", "identity")):
        v = dataclasses.replace(base, regex=regex, vocab_size=320)
        out[folder] = bpe.save(bpe.train(TEXTS, v), root / folder / "gpt4-m", {"variant": v})
    return out


def test_special_tokens_defined_once():
    assert tokenizer.SPECIAL_TOKENS[:3] == (tokenizer.BOS_TOKEN, tokenizer.EOS_TOKEN, tokenizer.PAD_TOKEN)
    assert params.load("smoke").tokenizer("gpt4-m").special_tokens == tokenizer.SPECIAL_TOKENS


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe{\"version\": \"1.0\"}", "stream did not contain valid UTF-8"),
    (b'{"version": "1.0", "model": {"type": "BPE"', "EOF while parsing"),
    (b"[1, 2, 3]", "invalid type"),
])
def test_malformed_tokenizer_json_names_the_file(tmp_path, content, reason):
    bad = tmp_path / "mine" / "tokenizer.json"
    bad.parent.mkdir()
    bad.write_bytes(content)
    for spec in (bad, bad.parent):  # the file itself, or its folder
        with pytest.raises(TokenizerError) as err:
            tokenizer.load(spec)
        msg = str(err.value)
        assert msg.startswith(f"{bad} is not a valid HF tokenizer.json") and reason in msg and "\n" not in msg


def test_unique_labels(tmp_path):
    for d in ("a/gpt4-m", "b/gpt4-m", "x/a/m", "y/a/m", "gpt2"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "tokenizer.json").write_text("{}")
    t = lambda d: str(tmp_path / d / "tokenizer.json")  # noqa: E731
    assert tokenizer.unique_labels([t("a/gpt4-m"), t("x/a/m")]) == ["gpt4-m", "m"]
    assert tokenizer.unique_labels([t("a/gpt4-m"), t("b/gpt4-m")]) == ["a/gpt4-m", "b/gpt4-m"]
    assert tokenizer.unique_labels([t("x/a/m"), t("y/a/m"), t("a/gpt4-m")]) == ["x/a/m", "y/a/m", "gpt4-m"]
    # a reference name keeps its name; the same-named folder gets its parent
    assert tokenizer.unique_labels(["gpt2", t("gpt2")]) == ["gpt2", f"{tmp_path.name}/gpt2"]
    # a folder and its tokenizer.json are the same tokenizer
    with pytest.raises(TokenizerError, match="are the same tokenizer; give each tokenizer once"):
        tokenizer.unique_labels([t("a/gpt4-m"), str(tmp_path / "a" / "gpt4-m")])


def test_compare_keeps_same_named_tokenizers_apart(twins, tmp_path, capsys):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "a.py").write_text("def g(y):\n    return y + 1\n" * 20)
    out = tmp_path / "cmp"
    a, b = twins["a"], twins["b"]
    assert cli.main(["compare", str(folder), str(a), str(b), "--base", str(a), "--out", str(out)]) == 0
    df = pd.read_csv(out / "compare.csv")
    bpt = df[(df["metric"] == "bytes_per_token") & (df["dataset"] == "python")].set_index("tokenizer")
    assert sorted(bpt.index) == ["a/gpt4-m", "b/gpt4-m"]
    assert bpt.loc["a/gpt4-m", "path"] == str(a) and bpt.loc["b/gpt4-m", "path"] == str(b)
    # two different tokenizers, two different numbers (not the first one's twice)
    assert bpt.loc["a/gpt4-m", "value"] != bpt.loc["b/gpt4-m", "value"]
    nsl = df[(df["metric"] == "nsl") & (df["dataset"] == "python")].set_index("tokenizer")["value"]
    assert nsl["a/gpt4-m"] == pytest.approx(1.0) and nsl["b/gpt4-m"] != pytest.approx(1.0)
    printed = capsys.readouterr().out
    assert f"a/gpt4-m = {a}" in printed and f"b/gpt4-m = {b}" in printed


def test_overlap_keeps_same_named_tokenizers_apart(twins, tmp_path):
    out = tmp_path / "ov"
    assert cli.main(["overlap", str(twins["a"]), str(twins["b"]), "--out", str(out)]) == 0
    df = pd.read_csv(out / "overlap.csv")
    jac = df[df["metric"] == "vocab_jaccard"]
    assert len(jac) == 1 and (jac["tokenizer"].iloc[0], jac["other"].iloc[0]) == ("a/gpt4-m", "b/gpt4-m")
    assert (jac["path"].iloc[0], jac["other_path"].iloc[0]) == (str(twins["a"]), str(twins["b"]))
    assert 0 < jac["value"].iloc[0] < 1


@pytest.mark.parametrize("verb", ["compare", "overlap"])
def test_bad_tokenizer_file_is_a_one_line_error_and_nothing_written(twins, tmp_path, capsys, verb):
    bad = tmp_path / "bad" / "tokenizer.json"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xfe not json")
    out = tmp_path / "out"
    extra = [str(tmp_path / "no-such-folder")] if verb == "compare" else []  # tokenizers are checked first
    assert cli.main([verb, *extra, str(twins["a"]), str(bad), "--out", str(out)]) == 2
    msg = capsys.readouterr().err
    assert msg.startswith(f"error: TOKENIZERS: {bad} is not a valid HF tokenizer.json") and msg.count("\n") == 1
    assert not out.exists()


def test_same_tokenizer_twice_is_an_error(twins, tmp_path, capsys):
    assert cli.main(["overlap", str(twins["a"]), str(twins["a"].parent), "--out", str(tmp_path / "o")]) == 2
    assert "same tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
