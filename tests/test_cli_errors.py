"""Issue 10 end to end: a bad input to the ``tokstudy`` CLI gives ``error: <one line>``, exit 2, nothing written.

This file is the index of the issue's cases; those tested elsewhere are listed here and not repeated.

* ``train --regex gpt-4`` / ``gpt5`` lists the known names, before reading data:
  test_bpe.py::test_cli_train_bad_regex_fails_before_reading_data, ::test_cli_train_subprocess_exit_code_and_one_line;
  meta.json records regex name + pattern, data source, its sha256, engine:
  test_bpe.py::test_cli_train_records_the_pattern_and_data; a failed train keeps the old tokenizer byte-identical:
  test_bpe.py::test_failed_train_leaves_the_old_tokenizer_unchanged
* ``compare DIR a/gpt4-m/tokenizer.json b/gpt4-m/tokenizer.json``: distinct labels, the table names each file:
  test_tokenizer.py::test_compare_keeps_same_named_tokenizers_apart, ::test_overlap_keeps_same_named_tokenizers_apart
* ``compare`` on a project folder (.git/, package.json, .venv/, node_modules/, .gitignore, counts reported):
  test_corpus.py::test_project_folder_reads_only_what_git_sees; ``--max-docs`` is a sample in hash order:
  test_corpus.py::test_max_docs_is_a_hash_sample_not_the_first_files, ::test_compare_flags_reach_the_folder_reader;
  the whole verb on such a folder with a 20 MB one-line file: here
* ``evaluate NO_SUCH_DIR``: exit 2, no run record:
  test_stages_evaluation.py::test_cli_never_falls_back_exits_2_and_writes_nothing
* ``transfer`` on a BERT encoder: test_transfer.py::test_an_encoder_model_is_rejected_and_nothing_is_written; a model
  folder without a tokenizer names ``--old-tokenizer``:
  test_transfer.py::test_a_model_dir_without_tokenizer_names_the_old_tokenizer_flag
* corpus records with "text": null / 12345 / a bad sha256: test_corpus.py::test_read_split_validates_every_record
  (the reader), ::test_cli_exits_nonzero_naming_the_bad_record (12345 in a user JSONL); from the CLI, both a
  built corpus split (``compare PROFILE:SPLIT``) and a user JSONL: here
* ``compare --profile nosuch`` (argparse refuses it) and ``nosuch:test``:
  test_cli.py::test_compare_rejects_unknown_corpus_profile_and_flag
* a bad value in params.yaml names its YAML path and the file:
  test_paths_params.py::test_bad_params_name_the_yaml_path_and_the_file;
  a YAML syntax error is one sentence with file and line: ::test_yaml_syntax_error_is_one_sentence_with_file_and_line;
  both from the CLI (``TOKSTUDY_ROOT`` picks the params.yaml, see paths._find_root): here
* a truncated checkpoint resumes from the previous intact one:
  test_training.py::test_a_truncated_newest_checkpoint_resumes_from_the_previous_one; stale ``.step_*.tmp`` folders are
  removed: ::test_stale_temporary_checkpoint_folders_are_removed; atomic_dir fsyncs every file and the parent:
  test_packing.py::test_pack_fsyncs_every_file_and_the_parent_directory (pack writes through paths.atomic_dir)
* ``--debug`` and ``TOKSTUDY_DEBUG=1`` show the traceback; without them no traceback: here
* a corrupt model.safetensors names the file: test_transfer.py::test_corrupt_safetensors_names_the_file (the loader);
  from ``tokstudy transfer``: here
* a non-UTF-8 tokenizer.json names the path: test_tokenizer.py::test_malformed_tokenizer_json_names_the_file,
  ::test_bad_tokenizer_file_is_a_one_line_error_and_nothing_written (compare/overlap); ``transfer``'s NEW_TOKENIZER and
  ``--old-tokenizer``: here
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokstudy
from tokstudy import bpe, cli, model, params, paths, tokenizer

SRC = Path(tokstudy.__file__).resolve().parents[1]
PARAMS = SRC.parent / "params.yaml"
TEXTS = [f"def f{i}(x):\n    return x * {i}\n" * 4 + "Some English prose here. " * 3 for i in range(150)]


def _run(*args, root=None, env=None):
    """``python -m tokstudy.cli ARGS`` in a subprocess (this checkout's src first), cwd ``root`` when given."""
    env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    if root is not None:
        env["TOKSTUDY_ROOT"] = str(root)
    return subprocess.run([sys.executable, "-m", "tokstudy.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=root)


def _one_error_line(err: str) -> str:
    """The stderr of a refused command: exactly one line, ``error: ...``, no traceback."""
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err


def _tree(d: Path) -> dict[str, str]:
    """Every file under ``d`` with the sha256 of its bytes: a failed command must leave it equal."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """The tokenizer.json of a small trained tokenizer (vocab 320)."""
    v = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), vocab_size=320)
    return bpe.save(bpe.train(TEXTS, v), tmp_path_factory.mktemp("tok") / "gpt4-m", {"variant": v})


@pytest.fixture(scope="module")
def base(tok, tmp_path_factory):
    """A tiny causal LM folder with its tokenizer, as `tokstudy transfer` takes it."""
    d = tmp_path_factory.mktemp("base") / "base"
    model.tiny_model(tokenizer.load(tok).vocab_size, layers=1).save_pretrained(d)
    (d / "tokenizer.json").write_bytes(tok.read_bytes())
    return d


# --------------------------------------------------------------------------- no traceback; --debug shows it


@pytest.mark.parametrize("debug", [None, "--debug", "TOKSTUDY_DEBUG=1"])
def test_debug_flag_and_variable_show_the_traceback(tmp_path, debug):
    args = ["train", "--profile", "smoke", "--data", tmp_path, "--regex", "gpt5", "--out", tmp_path / "t"]
    if debug == "--debug":
        r = _run("--debug", *args)
    else:
        r = _run(*args, env={"TOKSTUDY_DEBUG": "1"} if debug else {"TOKSTUDY_DEBUG": "0"})
    if debug is None:
        assert r.returncode == 2
        _one_error_line(r.stderr)
        assert "unknown pre-tokenizer name 'gpt5'" in r.stderr and "--regex-pattern PATTERN" in r.stderr
    else:
        assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr
        assert "TokenizerError: unknown pre-tokenizer name 'gpt5'" in r.stderr
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------- params.yaml, from the CLI


@pytest.mark.parametrize("old, new, message", [
    ("vocab_sizes: {xs: 2048, s: 4096, m: 8192,", "vocab_sizes: {xs: 2048, s: 4096, m: -512,",
     "params.yaml: vocab_sizes.m: must be a positive integer, got -512"),
    ("cpu: {n_layers: 4, d_model: 192,", "cpu: {n_layers: 4, d_model: -512,",
     "params.yaml: train.sizes.cpu.d_model: Input should be greater than 0 (got -512)"),
    ("\nseed: ", "\nseed: [", "params.yaml, line "),
])
def test_a_bad_params_file_is_one_line_naming_file_and_yaml_path(tmp_path, old, new, message):
    text = PARAMS.read_text(encoding="utf-8")
    assert text.count(old) == 1  # the repo's params.yaml still has the line this test breaks
    (tmp_path / "params.yaml").write_text(text.replace(old, new), encoding="utf-8")
    r = _run("train", "--variant", "gpt4-m", root=tmp_path)
    assert r.returncode == 2
    err = _one_error_line(r.stderr)
    assert err.startswith(f"error: {tmp_path / 'params.yaml'}") and message in err, err
    if "line" in message:
        assert "YAML syntax error" in err and "fix the file's syntax there" in err
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]  # no data/, results/, figures/


# --------------------------------------------------------------------------- compare on a real project folder


def test_compare_skips_a_20mb_one_line_file_and_reports_what_it_skipped(tok, tmp_path):
    proj = tmp_path / "proj"
    for rel, text in {".git/config.py": "x = 1\n", ".venv/lib.py": "y = 2\n", "node_modules/m/index.js": "var z;\n",
                      "package.json": "{}\n", ".gitignore": "secret.py\n", "secret.py": "TOKEN = 1\n",
                      **{f"src/m{i}.py": f"def g{i}(y):\n    return y + {i}\n" * 5 for i in range(4)}}.items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    (proj / "bundle.py").write_bytes(b"x=1;" * 5_000_000)  # 20 MB on one line
    out = tmp_path / "cmp"
    r = _run("compare", proj, tok, "--base", tok, "--out", out)
    assert r.returncode == 0, r.stderr
    summary = r.stdout.splitlines()[0]
    expected = f"{proj}: read python 4; skipped: gitignored 1; too_large 1; unknown_extension 2"
    assert summary.startswith(expected), summary
    assert "folders not entered (.git 1, .venv 1, node_modules 1)" in summary and ".json 1" in summary
    assert (out / "compare.csv").is_file()


def test_compare_with_zero_max_docs_names_the_flag_and_writes_nothing(tok, tmp_path, capsys):
    (tmp_path / "a.py").write_text("x = 1\n")
    assert cli.main(["compare", str(tmp_path), str(tok), "--base", str(tok), "--max-docs", "0",
                     "--out", str(tmp_path / "o")]) == 2
    assert "pass --max-docs N with N >= 1" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- bad records: built corpus and user JSONL

_GOOD = {"text": "x = 1\n", "language": "python", "domain": "code", "source": "s", "path": "a.py",
         "sha256": hashlib.sha256(b"x = 1\n").hexdigest()}
_BAD_RECORDS = [({"text": None}, "needs a string field 'text', got null"),
                ({"text": 12345}, "needs a string field 'text', got 12345"),
                ({"sha256": "0" * 64}, "'sha256' 0000000000000000... does not match its text")]


@pytest.mark.parametrize("change, message", _BAD_RECORDS)
def test_a_bad_record_of_a_built_split_is_one_line_with_file_and_line(tok, tmp_path, monkeypatch, capsys, change,
                                                                    message):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    split = paths.corpus_dir("cpu") / "test.jsonl"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps(_GOOD) + "\n" + json.dumps({**_GOOD, **change}) + "\n", encoding="utf-8")
    before = _tree(tmp_path)
    assert cli.main(["compare", "cpu:test", str(tok), "--base", str(tok), "--out", str(tmp_path / "o")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"{split}:2: {message}" in err and "dvc repro corpus" in err
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("change, message", _BAD_RECORDS)
def test_a_bad_record_of_a_user_jsonl_is_one_line_with_file_and_line(tok, tmp_path, capsys, change, message):
    f = tmp_path / "mine.jsonl"
    good = {"text": "x = 1\n", "language": "python"}
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n", encoding="utf-8")
    assert cli.main(["compare", str(f), str(tok), "--base", str(tok), "--out", str(tmp_path / "o")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"{f}:2: {message}" in err and '"language": "..."' in err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.jsonl"]


# --------------------------------------------------------------------------- transfer: bad weights, bad tokenizers


def test_transfer_with_corrupt_weights_names_the_file_and_writes_nothing(base, tok, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in base.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated download
    before = _tree(tmp_path)
    assert cli.main(["transfer", str(broken), str(tok), "--out", str(tmp_path / "out")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert err.startswith(f"error: could not load the weights {weights} (") and "re-download" in err
    assert _tree(tmp_path) == before


def test_transfer_of_a_missing_model_names_the_argument_and_the_dvc_stage(tok, tmp_path, capsys):
    assert cli.main(["transfer", str(tmp_path / "nope"), str(tok), "--out", str(tmp_path / "out")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"no model directory at {tmp_path / 'nope'}" in err
    assert "`dvc repro pretrain@base`" in err and "BASE_MODEL of `tokstudy transfer`" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("which", ["NEW_TOKENIZER", "--old-tokenizer", "the model's own"])
def test_transfer_with_a_non_utf8_tokenizer_names_the_path_before_loading_weights(base, tok, tmp_path, capsys,
                                                                                  monkeypatch, which):
    from tokstudy import transfer

    def no_weights(*a, **k):
        raise AssertionError("the weights were loaded before the tokenizers were checked")

    monkeypatch.setattr(transfer, "load_base", no_weights)
    bad = tmp_path / "bad" / "tokenizer.json"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xfe{\"version\": \"1.0\"}")
    model_dir, args = base, []
    if which == "NEW_TOKENIZER":
        new = bad
    else:
        new = tok
        if which == "--old-tokenizer":
            args = ["--old-tokenizer", str(bad)]
        else:  # a copy of the base model whose tokenizer.json is not UTF-8
            model_dir = tmp_path / "bad"
            for f in base.iterdir():
                if f.name != "tokenizer.json":
                    (model_dir / f.name).write_bytes(f.read_bytes())
    before, base_before = _tree(tmp_path), _tree(base)
    assert cli.main(["transfer", str(model_dir), str(new), *args, "--out", str(tmp_path / "out")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    prefix = {"NEW_TOKENIZER": "NEW_TOKENIZER: ", "--old-tokenizer": "--old-tokenizer: "}.get(which, "")
    assert err.startswith(f"error: {prefix}{bad} is not a valid HF tokenizer.json (stream did not contain valid UTF-8)")
    assert _tree(tmp_path) == before and _tree(base) == base_before


def test_transfer_with_an_unknown_old_tokenizer_names_the_flag(base, tok, tmp_path, capsys):
    args = ["transfer", str(base), str(tok), "--old-tokenizer", str(tmp_path / "nosuch.json"), "--out",
            str(tmp_path / "out")]
    assert cli.main(args) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert err.startswith(f"error: --old-tokenizer: cannot load tokenizer '{tmp_path / 'nosuch.json'}'")
    assert list(tmp_path.iterdir()) == []
