import dataclasses
import subprocess
import sys

import pandas as pd
import pytest

from tokstudy import bpe, cli, params, tokenizer


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """Two small trained tokenizers that differ only in their regex."""
    root = tmp_path_factory.mktemp("toks")
    texts = [f"def f{i}(x):\n    return x * {i}\n" * 4 + "Some English prose here. " * 3 for i in range(150)]
    base = params.load("smoke").tokenizer("gpt4-m")
    out = {}
    for regex in ("gpt4", "identity"):
        v = dataclasses.replace(base, name=regex, regex=regex, vocab_size=400)
        bpe.save(bpe.train(texts, v), root / regex, {"variant": v})
        out[regex] = root / regex
    return out


@pytest.fixture
def user_folder(tmp_path):
    (tmp_path / "a.py").write_text("def g(y):\n    return y + 1\n" * 20)
    (tmp_path / "b.py").write_text("class K:\n    pass\n" * 20)
    (tmp_path / "notes.md").write_text("This is English prose about the project.\n" * 10)
    return tmp_path


def test_every_verb_has_help():
    for verb in ("corpus", "train", "compare", "overlap", "sweep", "transfer", "evaluate"):
        r = subprocess.run([sys.executable, "-m", "tokstudy.cli", verb, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: tokstudy " + verb in r.stdout, r.stderr


def test_compare_on_a_user_folder(tokenizers, user_folder, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = cli.main(["compare", str(user_folder), str(tokenizers["gpt4"] / "tokenizer.json"),
                   str(tokenizers["identity"] / "tokenizer.json"), "--base", str(tokenizers["gpt4"] / "tokenizer.json"),
                   "--out", str(out)])
    assert rc == 0
    df = pd.read_csv(out / "compare.csv")
    assert set(df["dataset"]) >= {"python", "markdown"}
    nsl = df[(df["metric"] == "nsl") & (df["dataset"] == "python")].set_index("tokenizer")["value"]
    # the base against itself is exactly 1; a different tokenizer is not
    assert nsl["gpt4"] == pytest.approx(1.0)
    assert nsl["identity"] != pytest.approx(1.0)
    assert (out / "compare.png").is_file() and (out / "compare.pdf").is_file()
    printed = capsys.readouterr().out
    assert "bytes per token" in printed and "identity" in printed


def test_overlap_writes_heatmap(tokenizers, tmp_path):
    out = tmp_path / "ov"
    rc = cli.main(["overlap", str(tokenizers["gpt4"] / "tokenizer.json"),
                   str(tokenizers["identity"] / "tokenizer.json"), "--out", str(out)])
    assert rc == 0
    df = pd.read_csv(out / "overlap.csv")
    jac = df[df["metric"] == "vocab_jaccard"]
    assert len(jac) == 1 and set(jac["tokenizer"]) | set(jac["other"]) == {"gpt4", "identity"}
    assert 0 < jac["value"].iloc[0] < 1
    assert (out / "vocab_overlap.png").is_file()


def test_compare_rejects_unknown_corpus_profile_and_flag(tokenizers, capsys):
    tok = str(tokenizers["gpt4"] / "tokenizer.json")
    assert cli.main(["compare", "no/such/place", tok]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: compare CORPUS 'no/such/place' is neither a folder") and err.count("\n") == 1
    assert cli.main(["compare", "nosuch:test", tok]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: compare CORPUS 'nosuch:test': ") and "unknown profile 'nosuch'" in err
    with pytest.raises(SystemExit) as exc:  # compare has no --profile: argparse refuses it (exit 2)
        cli.main(["compare", "--profile", "nosuch", "smoke:test", tok])
    assert exc.value.code == 2 and "unrecognized arguments: --profile" in capsys.readouterr().err


def test_finetune_verb_is_the_training_entry_point():
    r = subprocess.run([sys.executable, "-m", "tokstudy.cli", "finetune", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "tokstudy.stages" in r.stdout and "--profile" in r.stdout


def test_train_on_a_user_folder_then_transfer_a_model(user_folder, tokenizers, tmp_path):
    from transformers import AutoModelForCausalLM

    from tokstudy.model import tiny_model

    out = tmp_path / "mine"
    assert cli.main(["train", "--profile", "smoke", "--variant", "gpt4-m", "--data", str(user_folder),
                     "--vocab-size", "300", "--out", str(out)]) == 0
    handle = tokenizer.load(out / "tokenizer.json")
    assert handle.vocab_size == 300
    # a base model with the user's tokenizer, switched to another tokenizer with FVT
    base_dir = tmp_path / "base"
    model = tiny_model(handle.vocab_size)
    model.save_pretrained(base_dir)
    handle.to_hf().save_pretrained(base_dir)
    new_dir = tmp_path / "swapped"
    assert cli.main(["transfer", str(base_dir), str(tokenizers["gpt4"]), "--method", "fvt", "--out", str(new_dir)]) == 0
    swapped = AutoModelForCausalLM.from_pretrained(new_dir)
    assert swapped.get_input_embeddings().weight.shape[0] == tokenizer.load(tokenizers["gpt4"]).vocab_size


def test_sweep_from_one_run_reports_identity_and_time_saved(capsys):
    assert cli.main(["sweep", "--profile", "smoke", "--variant", "gpt4-l", "--sizes", "300", "400", "--compare"]) == 0
    from tokstudy import paths, results

    rows = results.read_run(paths.runs_dir("smoke") / "sweep-gpt4-l.json")["rows"]
    assert {r["vocab_size"]: r["value"] for r in rows if r["metric"] == "identical"} == {300: 1.0, 400: 1.0}
    assert any(r["metric"] == "time_saved_seconds" for r in rows)


def test_every_verb_calls_stages_and_nothing_else():
    """A verb parses flags, calls a tokstudy.stages step or tokstudy.commands (the verbs on the user's files) and
    prints: no library logic of its own."""
    import ast
    import inspect

    allowed = {"tokstudy.commands", "tokstudy.stages.corpus", "tokstudy.stages.tokenizers", "tokstudy.stages.vocab",
               "tokstudy.stages.inputs", "tokstudy.stages.__main__", "tokstudy.params", "tokstudy.results",
               "tokstudy.tables", "tokstudy.advise", "pandas", "json"}
    tree = ast.parse(inspect.getsource(cli))
    verbs = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("cmd_")]
    assert {f.name for f in verbs} >= {"cmd_compare", "cmd_overlap", "cmd_export", "cmd_transfer", "cmd_sweep",
                                       "cmd_train", "cmd_evaluate", "cmd_corpus"}
    for f in verbs:
        imported = set()
        for node in ast.walk(f):
            if isinstance(node, ast.ImportFrom):
                mod = node.module
                imported |= {f"{mod}.{a.name}" if mod in ("tokstudy", "tokstudy.stages") else mod for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        assert imported <= allowed, (f.name, imported - allowed)
