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

Issue 14 (one output rule, flags checked when parsed, --old-tokenizer, Ctrl-C, a property test):

1. The output rule (``paths.check_output`` / ``paths.output_dir``; export: ``tiktokenfile.check_out``): a target
   must be absent, an empty folder, or an output of ours (meta.json / transfer.json / ``paths.MARKER``); else one
   line naming the path and ``--force``, which writes beside the user's files and never over them.

   * ``transfer MODEL TOK --out DIR`` with thesis.tex + sub/data.csv (deleted them, exit 0): refused, and with
     --force written beside them: here, test_transfer_into_a_folder_of_user_files_is_refused_and_force_keeps_them
   * ``transfer --out FILE`` (renamed it to .FILE.old): test_transfer_out_naming_a_file_never_renames_it;
     ``paths.atomic_dir`` itself refuses a file and keeps no ``.NAME.old``:
     test_atomic_dir_refuses_a_file_and_keeps_no_old_copy
   * ``transfer --out MODEL`` (overwrote the base), a folder inside it, the tokenizer's folder, even with --force:
     test_transfer_never_writes_into_its_inputs_even_with_force
   * an empty folder, or its own earlier output (stale weight shards removed):
     test_transfer_replaces_its_own_earlier_output_and_an_empty_folder
   * ``compare``/``overlap --out`` an existing file, a path under a file, an unwritable path (tracebacks), a folder
     of user files: test_compare_and_overlap_out_errors_are_one_line; --force beside user files, a rerun into its
     own output, a user-changed output file never replaced:
     test_compare_force_writes_beside_user_files_and_reruns_into_its_own_output
   * ``train --out`` a folder of user files, a file, --force, its own output:
     test_train_out_follows_the_rule; a failed train keeps the old tokenizer:
     test_bpe.py::test_failed_train_leaves_the_old_tokenizer_unchanged
   * ``export`` overwrote an existing OUT.json silently; OUT.tiktoken of the user's; ``--tiktoken`` an existing
     folder, a path under a file, an unwritable path (tracebacks); a copied OUT.json naming another rank file:
     test_export.py::test_cli_export_never_replaces_a_file_it_did_not_write; its own earlier export is replaced:
     ::test_cli_export_replaces_its_own_earlier_export; a failed write leaves nothing:
     ::test_a_failed_export_write_leaves_nothing
2. Flags checked when parsed, one line ``error: ... (see tokstudy VERB --help)``, exit 2:
   test_every_bad_flag_is_one_line_when_parsed (``train --vocab-size 10000000000`` (rc 134 in Rust), ``-5``,
   ``0`` (was "not given"), ``sweep --sizes -5 0`` / ``--compare 0`` (pydantic tracebacks), ``--alpha nan`` (empty
   columns) / ``inf`` / ``0`` / ``-1``, ``--max-docs 0``, ``--max-file-bytes -1``, ``--max-line-chars 0``,
   ``transfer --pad-to-multiple-of -7`` (traceback) / ``-8`` / ``0`` (accepted), ``evaluate --humaneval-limit 0``,
   ``--device nosuch`` (traceback), ``finetune --stop-after -3`` / ``--max-steps -1``, and argparse's own errors:
   an unknown flag, a missing required flag, a bad choice, an unknown verb); ``--device cuda`` / ``cuda:N``
   without that GPU: test_a_missing_gpu_is_named_when_parsed; a vocab size below 256 + the variant's specials:
   test_a_vocab_size_below_the_specials_names_the_flag_before_reading_data,
   test_sweep_sizes_below_the_specials_fail_before_any_work; ``--alpha 1000`` (math domain error) is computed in
   log space: test_a_large_renyi_alpha_is_finite
3. ``transfer --old-tokenizer OTHER`` of the same size but another vocabulary (wrong embeddings, exit 0): refused
   unless --force; a copy of the model's own is taken:
   test_an_old_tokenizer_with_another_vocabulary_is_refused_unless_forced
4. Ctrl-C: ``interrupted``, exit 130, no partial output (compare, transfer, train):
   test_ctrl_c_is_one_line_exit_130_and_leaves_no_partial_output
5. Every verb, every numeric flag in {-1, 0, nan, inf, 1e12}, every path argument a file / a folder of the user's
   / a path under a file / an unwritable path / an input: exit 0 or 2, one line, no traceback, nothing else
   changed: test_cli_property.py::test_any_flag_and_path_gives_0_or_2_one_line_and_touches_nothing_else
"""

import dataclasses
import hashlib
import json
import math
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
    with pytest.raises(SystemExit) as exc:  # refused by argparse, when parsed
        cli.main(["compare", str(tmp_path), str(tok), "--base", str(tok), "--max-docs", "0",
                  "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "argument --max-docs: must be a whole number >= 1, got 0" in _one_error_line(capsys.readouterr().err)
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


# --------------------------------------------------------------------------- the output rule (issue 14, case 1)


def _user_files(d: Path) -> Path:
    """A folder of the user's: thesis.tex and sub/data.csv."""
    (d / "sub").mkdir(parents=True)
    (d / "thesis.tex").write_text("\\documentclass{article}\n")
    (d / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return d


@pytest.fixture(scope="module")
def other_tok(tmp_path_factory):
    """A tokenizer of the same size as ``tok`` (320) trained on other texts: another vocabulary."""
    v = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), vocab_size=320)
    texts = [f"class K{i}:\n    value = '{i}' + str(K{i})\n" * 3 + "Quite different words appear. " * 2
             for i in range(150)]
    return bpe.save(bpe.train(texts, v), tmp_path_factory.mktemp("other") / "other", {"variant": v})


def test_transfer_into_a_folder_of_user_files_is_refused_and_force_keeps_them(base, tok, tmp_path, capsys):
    out = _user_files(tmp_path / "mine")
    before = _tree(tmp_path)
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out)]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"--out {out} holds files tokstudy did not write (sub, thesis.tex)" in err and "--force" in err
    assert _tree(tmp_path) == before and sorted(p.name for p in out.iterdir()) == ["sub", "thesis.tex"]
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out), "--force"]) == 0
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # the user's files, byte for byte
    assert {"mine/config.json", "mine/model.safetensors", "mine/transfer.json"} <= after.keys()
    assert not [p for p in tmp_path.rglob(".*")]  # no staging folder left
    capsys.readouterr()
    # written beside them once, the folder is still the user's: a rerun needs --force again
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out)]) == 2
    assert "--force" in _one_error_line(capsys.readouterr().err)


def test_transfer_out_naming_a_file_never_renames_it(base, tok, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    assert cli.main(["transfer", str(base), str(tok), "--out", str(f), "--force"]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"--out {f} is a file, not a folder" in err and "--force" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and f.read_text() == "mine\n"  # no .notes.txt.old


@pytest.mark.parametrize("where", ["the model", "inside the model", "the tokenizer's folder"])
def test_transfer_never_writes_into_its_inputs_even_with_force(base, tok, capsys, where):
    out = {"the model": base, "inside the model": base / "sub", "the tokenizer's folder": tok.parent}[where]
    before, tok_before = _tree(base), _tree(tok.parent)
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out), "--force"]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert str(out) in err
    if where == "the tokenizer's folder":  # NEW_TOKENIZER is its tokenizer.json: the output would replace it
        assert "holds your tokenizer.json, tokenizer_config.json, which the output would replace" in err
    else:
        assert "tokstudy never writes into its inputs (not even with --force)" in err
    assert _tree(base) == before and _tree(tok.parent) == tok_before and not (base / "sub").exists()


def test_transfer_replaces_its_own_earlier_output_and_an_empty_folder(base, tok, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()  # empty: allowed
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out)]) == 0
    (out / "model-00001-of-00002.safetensors").write_bytes(b"stale shard of an earlier run")
    first = _tree(out)
    assert cli.main(["transfer", str(base), str(tok), "--out", str(out), "--method", "mean"]) == 0
    assert json.loads((out / "transfer.json").read_text())["method"] == "mean"
    assert not (out / "model-00001-of-00002.safetensors").exists()  # ours, and not written this time
    assert _tree(out).keys() == first.keys() - {"model-00001-of-00002.safetensors"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("verb", ["compare", "overlap"])
@pytest.mark.parametrize("kind", ["an existing file", "a path under a file", "an unwritable path", "user files"])
def test_compare_and_overlap_out_errors_are_one_line(tok, other_tok, tmp_path, capsys, verb, kind):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("def f(x):\n    return x\n" * 5)
    (tmp_path / "notes.txt").write_text("mine\n")
    _user_files(tmp_path / "mine")
    out = {"an existing file": tmp_path / "notes.txt", "a path under a file": tmp_path / "notes.txt" / "o",
           "an unwritable path": Path("/proc/1/nonexistent/o"), "user files": tmp_path / "mine"}[kind]
    before = _tree(tmp_path)
    args = [str(tmp_path / "code"), str(tok), "--base", str(tok)] if verb == "compare" else [str(tok), str(other_tok)]
    assert cli.main([verb, *args, "--out", str(out)]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"--out {out}" in err
    assert {"an existing file": "is a file, not a folder", "a path under a file": "notes.txt is a file",
            "an unwritable path": "cannot create it in /proc/1",
            "user files": "holds files tokstudy did not write (sub, thesis.tex)"}[kind] in err
    assert _tree(tmp_path) == before


def test_compare_force_writes_beside_user_files_and_reruns_into_its_own_output(tok, tmp_path, capsys):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("def f(x):\n    return x\n" * 5)
    out = _user_files(tmp_path / "mine")
    user = _tree(out)
    base = ["compare", str(tmp_path / "code"), str(tok), "--base", str(tok), "--out"]
    assert cli.main([*base, str(out), "--force"]) == 0
    assert {k: v for k, v in _tree(out).items() if k in user} == user
    assert {"compare.csv", "compare.png", "compare.pdf"} <= set(_tree(out))
    (tmp_path / "own").mkdir()  # an empty folder, then its own earlier output: no --force needed
    assert cli.main([*base, str(tmp_path / "own")]) == 0 and cli.main([*base, str(tmp_path / "own")]) == 0
    assert sorted(json.loads((tmp_path / "own" / paths.MARKER).read_text())["files"]) == [
        "compare.csv", "compare.pdf", "compare.png"]
    (out / "compare.csv").write_text("the user's own table\n")  # changed by the user: not ours any more
    capsys.readouterr()
    assert cli.main([*base, str(out), "--force"]) == 2
    assert "which the output would replace" in _one_error_line(capsys.readouterr().err)
    assert (out / "compare.csv").read_text() == "the user's own table\n"


def test_train_out_follows_the_rule(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.py").write_text("".join(TEXTS[:40]))
    out = _user_files(tmp_path / "mine")
    args = ["train", "--profile", "smoke", "--data", str(data), "--vocab-size", "300", "--out"]
    before, user = _tree(tmp_path), _tree(out)
    assert cli.main([*args, str(out)]) == 2
    assert "holds files tokstudy did not write" in _one_error_line(capsys.readouterr().err)
    assert cli.main([*args, str(data / "a.py")]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys.readouterr().err)
    assert _tree(tmp_path) == before
    assert cli.main([*args, str(out), "--force"]) == 0
    assert _tree(out) == {**user, **{f: _tree(out)[f] for f in bpe.TOKENIZER_FILES}}  # theirs kept, ours beside
    assert cli.main([*args, str(tmp_path / "tok")]) == 0 and cli.main([*args, str(tmp_path / "tok")]) == 0  # ours
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == sorted(bpe.TOKENIZER_FILES)


def test_atomic_dir_refuses_a_file_and_keeps_no_old_copy(tmp_path):
    f = tmp_path / "f"
    f.write_text("mine")
    with pytest.raises(NotADirectoryError):
        with paths.atomic_dir(f) as d:
            (d / "x").write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and f.read_text() == "mine"
    (tmp_path / ".d.old").mkdir()  # a user's folder that the old atomic_dir would have deleted
    for _ in range(2):
        with paths.atomic_dir(tmp_path / "d") as d:
            (d / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.old", "d", "f"]


# --------------------------------------------------------------------------- flags checked when parsed (case 2)


@pytest.mark.parametrize("argv, message", [
    ("train --vocab-size 10000000000", "argument --vocab-size: must be a whole number from 256 to 2097152, got 1"),
    ("train --vocab-size -5", "argument --vocab-size: must be a whole number from 256 to 2097152, got -5"),
    ("train --vocab-size 0", "argument --vocab-size: must be a whole number from 256 to 2097152, got 0"),
    ("train --vocab-size 1e3", "argument --vocab-size: must be a whole number from 256 to 2097152, got '1e3'"),
    ("sweep --sizes -5 0", "argument --sizes: must be a whole number from 256 to 2097152, got -5"),
    ("sweep --compare 0", "argument --compare: must be a whole number from 256 to 2097152, got 0"),
    ("compare x t --alpha nan", "argument --alpha: must be a finite number > 0, got nan"),
    ("compare x t --alpha inf", "argument --alpha: must be a finite number > 0, got inf"),
    ("compare x t --alpha 0", "argument --alpha: must be a finite number > 0, got 0"),
    ("compare x t --alpha -1", "argument --alpha: must be a finite number > 0, got -1"),
    ("compare x t --max-docs 0", "argument --max-docs: must be a whole number >= 1, got 0"),
    ("compare x t --max-file-bytes -1", "argument --max-file-bytes: must be a whole number >= 1, got -1"),
    ("compare x t --max-line-chars 0", "argument --max-line-chars: must be a whole number >= 1, got 0"),
    ("transfer m t --out o --pad-to-multiple-of -7", "argument --pad-to-multiple-of: must be a whole number from 1"),
    ("transfer m t --out o --pad-to-multiple-of -8", "got -8"),
    ("transfer m t --out o --pad-to-multiple-of 0", "got 0"),
    ("evaluate m --humaneval-limit 0", "argument --humaneval-limit: must be a whole number >= 1, got 0"),
    ("evaluate m --device nosuch", "argument --device: unknown device 'nosuch'; use cpu, cuda or cuda:N"),
    ("finetune base --stop-after -3", "argument --stop-after: must be a whole number >= 1, got -3"),
    ("finetune base --max-steps -1", "argument --max-steps: must be a whole number >= 1, got -1"),
    ("compare x t --bogus", "unrecognized arguments: --bogus"),
    ("transfer m t", "the following arguments are required: --out"),
    ("train --engine nosuch", "argument --engine: invalid choice: 'nosuch'"),
    ("nosuchverb", "argument verb: invalid choice: 'nosuchverb'"),
])
def test_every_bad_flag_is_one_line_when_parsed(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv.split())
    err = _one_error_line(capsys.readouterr().err)
    assert exc.value.code == 2 and message in err, err
    verb = argv.split()[0]
    assert err.endswith(f" (see tokstudy{'' if verb == 'nosuchverb' else ' ' + verb} --help)\n")


def test_a_missing_gpu_is_named_when_parsed(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for dev in ("cuda", "cuda:0", "cuda:7"):
        with pytest.raises(SystemExit):
            cli.main(["evaluate", "m", "--device", dev])
        assert "torch sees no CUDA GPU on this machine; use --device cpu" in _one_error_line(capsys.readouterr().err)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "m", "--device", "cuda:2"])
    assert "this machine has 2 CUDA GPU(s), cuda:0 to cuda:1" in _one_error_line(capsys.readouterr().err)
    assert cli.device("cuda:1") == "cuda:1" and cli.device("cpu") == "cpu"


def test_a_vocab_size_below_the_specials_names_the_flag_before_reading_data(tmp_path, capsys, monkeypatch):
    from tokstudy import folders

    monkeypatch.setattr(folders, "read_user_source", lambda *a, **k: pytest.fail("data read before the check"))
    assert cli.main(["train", "--profile", "smoke", "--data", str(tmp_path), "--vocab-size", "257", "--out",
                     str(tmp_path / "t")]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert "--vocab-size 257 is too small: variant" in err and "at least 262" in err
    assert list(tmp_path.iterdir()) == []


def test_sweep_sizes_below_the_specials_fail_before_any_work(capsys):
    assert cli.main(["sweep", "--profile", "smoke", "--variant", "gpt4-l", "--sizes", "300", "257"]) == 2
    assert "size 257 is too small for variant 'gpt4-l': at least 262" in _one_error_line(capsys.readouterr().err)


def test_a_large_renyi_alpha_is_finite(tok, tmp_path, capsys):
    from collections import Counter

    from tokstudy import metrics

    counter = Counter({1: 5, 2: 3, 3: 1, 4: 1})
    assert metrics.renyi_entropy(counter, 1000) == pytest.approx(-math.log2(0.5) * 1000 / 999)
    assert metrics.renyi_entropy(counter, 2.5) == pytest.approx(math.log2(sum(p**2.5 for p in (.5, .3, .1, .1))) / -1.5)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("def f(x):\n    return x\n" * 5)
    assert cli.main(["compare", str(tmp_path / "code"), str(tok), "--base", str(tok), "--alpha", "1000",
                     "--out", str(tmp_path / "o"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and all(math.isfinite(r["renyi_efficiency"]) and r["renyi_efficiency"] > 0 for r in rows)


# --------------------------------------------------------------------------- --old-tokenizer must be the model's (3)


def test_an_old_tokenizer_with_another_vocabulary_is_refused_unless_forced(base, tok, other_tok, tmp_path, capsys):
    assert tokenizer.load(other_tok).vocab_size == tokenizer.load(tok).vocab_size  # same size, other tokens
    out = tmp_path / "out"
    argv = ["transfer", str(base), str(tok), "--old-tokenizer", str(other_tok), "--out", str(out)]
    assert cli.main(argv) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"--old-tokenizer {other_tok} is not the tokenizer of {base}" in err and "--force" in err
    assert not out.exists()
    assert cli.main([*argv, "--force"]) == 0 and (out / "transfer.json").is_file()  # the user says it is
    copy = tmp_path / "copy.json"  # the model's own tokenizer under another name: the same vocabulary
    copy.write_bytes(tok.read_bytes())
    assert cli.main(["transfer", str(base), str(tok), "--old-tokenizer", str(copy), "--out",
                     str(tmp_path / "out2")]) == 0


# --------------------------------------------------------------------------- Ctrl-C (case 4)


@pytest.mark.parametrize("verb", ["compare", "transfer", "train"])
def test_ctrl_c_is_one_line_exit_130_and_leaves_no_partial_output(base, tok, tmp_path, capsys, monkeypatch, verb):
    from tokstudy import plots, transfer

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("".join(TEXTS[:40]))
    out = tmp_path / "new" / "out"
    if verb == "compare":  # compare.csv is written by then
        monkeypatch.setattr(plots, "compare", interrupt)
        argv = ["compare", str(tmp_path / "code"), str(tok), "--base", str(tok)]
    elif verb == "transfer":  # the model is half saved by then
        real = transfer.save_transferred

        def save_then_interrupt(model, tk, stage, stats):
            real(model, tk, stage, stats)
            raise KeyboardInterrupt

        monkeypatch.setattr(transfer, "save_transferred", save_then_interrupt)
        argv = ["transfer", str(base), str(tok)]
    else:
        monkeypatch.setattr(bpe, "train", interrupt)
        argv = ["train", "--profile", "smoke", "--data", str(tmp_path / "code"), "--vocab-size", "300"]
    before = _tree(tmp_path)
    assert cli.main([*argv, "--out", str(out)]) == 130
    err = capsys.readouterr().err  # progress bars, then the one line
    assert err.endswith("\ninterrupted\n") or err == "interrupted\n"
    assert "Traceback" not in err and "error" not in err
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["code"]
