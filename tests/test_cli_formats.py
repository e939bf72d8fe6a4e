"""--format / --baseline of compare, overlap and sweep; quiet logs; CLI `sweep` and notebook 09 write one record."""

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tokstudy import bpe, cli, params, paths, results

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def toks(tmp_path_factory):
    """Two small trained tokenizers that differ only in their regex (labels: gpt4, identity)."""
    root = tmp_path_factory.mktemp("toks")
    texts = [f"def f{i}(x):\n    return x * {i}\n" * 4 + "Some English prose here. " * 3 for i in range(150)]
    base = params.load("smoke").tokenizer("gpt4-m")
    for regex in ("gpt4", "identity"):
        v = dataclasses.replace(base, name=regex, regex=regex, vocab_size=400)
        bpe.save(bpe.train(texts, v), root / regex, {"variant": v})
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("code")
    (root / "a.py").write_text("def g(y):\n    return y + 1\n" * 20)
    (root / "b.py").write_text("class K:\n    pass\n" * 20)
    (root / "notes.md").write_text("This is English prose about the project.\n" * 10)
    return root


def _compare(toks, folder, out, *extra):
    return cli.main(["compare", str(folder), str(toks / "gpt4"), str(toks / "identity"), "--base", str(toks / "gpt4"),
                     "--out", str(out), *extra])


def test_compare_json_with_baseline_matches_compare_csv(toks, folder, tmp_path, capsys):
    assert _compare(toks, folder, tmp_path / "o", "--format", "json", "--baseline", "gpt4") == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)  # stdout is the table alone; the folder report and legend went to stderr
    assert "read markdown 1, python 2" in cap.err and "wrote" in cap.err
    tidy = pd.read_csv(tmp_path / "o" / "compare.csv")
    nsl = tidy[tidy["metric"] == "nsl"].set_index(["dataset", "tokenizer"])["value"]
    by = {(r["dataset"], r["tokenizer"]): r for r in doc["rows"]}
    assert set(by) == set(nsl.index) and ("python", "identity") in by
    for (dataset, label), r in by.items():
        assert r["nsl"] == pytest.approx(nsl[(dataset, label)])
        expected = 100 * (nsl[(dataset, label)] / nsl[(dataset, "gpt4")] - 1)  # per dataset, against gpt4's row
        assert r["nsl_vs_gpt4_pct"] == pytest.approx(expected)
        assert all(k == k.lower() and " " not in k and "%" not in k for k in r)  # snake_case keys
    assert by[("python", "gpt4")]["nsl_vs_gpt4_pct"] == 0.0 and by[("python", "identity")]["nsl_vs_gpt4_pct"] != 0.0
    # per dataset its files and bytes (a.py: 20 x 27 bytes, b.py: 20 x 18), the same for both tokenizers
    assert (by[("python", "gpt4")]["docs"], by[("python", "gpt4")]["bytes"]) == (2, 20 * 27 + 20 * 18)
    assert by[("python", "identity")]["bytes"] == by[("python", "gpt4")]["bytes"]
    meta = doc["metadata"]
    assert meta["base"] == str(toks / "gpt4") and meta["corpus"] == str(folder.resolve())
    assert meta["tokenizers"] == {"gpt4": str(toks / "gpt4"), "identity": str(toks / "identity")}
    assert meta["counts"] == {"datasets": 2, "datasets_in_means": 0, "docs": 3, "bytes": 900 + 41 * 10}
    import tokstudy

    assert meta["tokstudy_version"] == tokstudy.__version__


def test_compare_csv_round_trips_and_md_latex_render(toks, folder, tmp_path, capsys):
    assert _compare(toks, folder, tmp_path / "o", "--format", "csv") == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns) == ["dataset", "tokenizer", "docs", "bytes", "tokens", "bytes_per_token", "nsl",
                                   "renyi_efficiency", "in_means"]
    tidy = pd.read_csv(tmp_path / "o" / "compare.csv")
    bpt = tidy[tidy["metric"] == "bytes_per_token"].set_index(["dataset", "tokenizer"])["value"]
    assert table.set_index(["dataset", "tokenizer"])["bytes_per_token"].to_dict() == bpt.to_dict()  # full precision
    assert _compare(toks, folder, tmp_path / "o", "--format", "md") == 0
    assert capsys.readouterr().out.startswith("| dataset ")
    assert _compare(toks, folder, tmp_path / "o", "--format", "latex") == 0
    out = capsys.readouterr().out
    assert out.startswith("\\begin{tabular}") and "renyi\\_efficiency" in out


def test_a_bad_baseline_fails_before_any_work(toks, folder, tmp_path, capsys):
    assert _compare(toks, folder, tmp_path / "o", "--baseline", "llama2") == 2
    err = capsys.readouterr().err
    assert err == "error: --baseline 'llama2' is not a row of the table; give one of: gpt4, identity\n"
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exc:
        _compare(toks, folder, tmp_path / "o", "--format", "xlsx")
    assert exc.value.code == 2 and "invalid choice: 'xlsx'" in capsys.readouterr().err


def test_overlap_table_is_full_and_symmetric(toks, tmp_path, capsys):
    assert cli.main(["overlap", str(toks / "gpt4"), str(toks / "identity"), "--out", str(tmp_path / "ov"),
                     "--format", "csv", "--baseline", "gpt4"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("tokenizer")
    assert not table.isna().any().any()  # no half-empty triangle
    tidy = pd.read_csv(tmp_path / "ov" / "overlap.csv")
    jac = tidy.loc[tidy["metric"] == "vocab_jaccard", "value"].item()
    assert table.loc["gpt4", "jaccard identity"] == table.loc["identity", "jaccard gpt4"] == pytest.approx(jac)
    assert table.loc["gpt4", "jaccard gpt4"] == table.loc["identity", "jaccard identity"] == 1.0
    distinct = tidy[tidy["metric"] == "vocab_distinct"].set_index("tokenizer")["value"]
    assert table["vocab_distinct"].to_dict() == distinct.to_dict()
    assert table.loc["gpt4", "token_length_mean vs gpt4 %"] == 0.0


def _comparable(record: dict) -> dict:
    """A run record minus what differs between two runs: creation time and timings (seconds and speedup)."""
    record = json.loads(json.dumps(record))
    record["provenance"].pop("created")
    for row in record["rows"]:
        if "seconds" in row["metric"] or row["metric"] == "speedup":
            row["value"] = None
    return record


@pytest.mark.slow
def test_cli_sweep_table_and_notebook_09_write_the_same_record(capsys):
    from test_stages import _run_notebook_code

    P = params.load("smoke")
    variant = P.analysis.sweep_variant
    record = paths.runs_dir("smoke") / f"sweep-{variant}.json"
    args = ["sweep", "--profile", "smoke", "--variant", variant, "--format", "json"]
    compare = [str(P.vocab_sizes[k]) for k in P.analysis.sweep_compare]  # what notebook 09 checks
    assert cli.main(args + (["--compare", *compare] if compare else [])) == 0
    rows = json.loads(capsys.readouterr().out)
    # one row per size of the variant and its `truncations:`, no raw dicts
    sizes = {t.vocab_size for t in P.tokenizers.values() if t.truncate_of == variant}
    sizes.add(P.tokenizer(variant).vocab_size)
    assert [r["vocab_size"] for r in rows] == sorted(sizes) and len(sizes) > 2
    assert all(isinstance(r["truncate_seconds"], float) for r in rows)
    from_cli = results.read_run(record)
    record.unlink()
    _run_notebook_code("09_vocab_analysis.ipynb", profile="smoke")
    assert _comparable(results.read_run(record)) == _comparable(from_cli)


def test_logs_are_quiet_by_default_and_info_with_v(toks, folder, tmp_path):
    def run(*flags):
        return subprocess.run([sys.executable, "-m", "tokstudy.cli", *flags, "compare", str(folder), str(toks / "gpt4"),
                               "--base", str(toks / "gpt4"), "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    quiet, verbose = run(), run("-v")
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr
    assert "tokstudy.plots INFO saved figure" in verbose.stderr
    assert "matplotlib" not in verbose.stderr  # its font-cache INFO lines stay out even with -v
