import json
import subprocess
import sys

import pandas as pd
import pytest

from tokstudy import paths, results


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "runs_dir", lambda p: tmp_path / "results" / p / "runs")
    monkeypatch.setattr(paths, "results_csv", lambda p: tmp_path / "results" / p / "results.csv")
    return tmp_path


def test_write_run_records_provenance(isolated):
    inp = isolated / "input.txt"
    inp.write_text("abc")
    out = results.write_run("t", "compression", "x", [{"metric": "nsl", "value": 0.5}],
                            params={"a": 1}, seed=7, inputs=[inp])
    rec = json.loads(out.read_text())
    prov = rec["provenance"]
    assert prov["seed"] == 7 and prov["params"] == {"a": 1}
    # sha256("abc")
    assert prov["inputs"][str(inp)] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert "git_commit" in prov and prov["versions"]["python"]



def test_versions_read_metadata_without_importing_heavy_packages():
    # a fresh interpreter: this test process may have imported torch already
    code = (
        "import sys, json\n"
        "from tokstudy import results\n"
        "v = results._versions()\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
        "import numpy, tokenizers, torch, transformers, tokstudy, platform\n"
        "real = {m.__name__: m.__version__ for m in (numpy, tokenizers, torch, transformers, tokstudy)}\n"
        "real['python'] = platform.python_version()\n"
        "assert v == real, (v, real)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

def test_rows_need_metric_and_value(isolated):
    with pytest.raises(ValueError, match="metric"):
        results.write_run("t", "k", "x", [{"value": 1}])


def test_collect_is_tidy_and_adds_paper_rows(isolated):
    results.write_run("t", "compression", "a", [{"metric": "nsl", "value": 0.9, "dataset": "python"}])
    results.write_run("t", "compression", "b", [{"metric": "nsl", "value": 0.8, "dataset": "c"},
                                                {"metric": "bytes_per_token", "value": 3.5, "dataset": "c"}])
    df = results.collect("t")
    ours = df[df["profile"] == "t"]
    assert list(df.columns[:5]) == ["profile", "kind", "run", "metric", "value"]
    assert len(ours) == 3 and set(ours["run"]) == {"a", "b"}
    paper = df[df["profile"] == "paper"]
    # Table 1: GPT-2 code NSL 1.19; sweep: GPT-4 regex 32k code NSL 0.805
    t1 = paper[(paper["kind"] == "paper_table1") & (paper["run"] == "gpt2") & (paper["domain"] == "code")]
    assert t1["value"].tolist() == [1.19]
    sw = paper[(paper["kind"] == "paper_sweep") & (paper["vocab_size"] == 32000) & (paper["metric"] == "nsl")
               & (paper["domain"] == "code")]
    assert sw["value"].tolist() == [0.805]
    assert pd.read_csv(paths.results_csv("t")).shape == df.shape


def test_collect_without_runs_names_the_fix(isolated):
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        results.collect("empty")


def test_collect_adds_other_profiles_runs_labelled_and_paper_is_optional(isolated):
    results.write_run("gpu", "evaluate", "fvt-b1", [{"metric": "bits_per_byte", "value": 1.5}])
    results.write_run("t", "evaluate", "fvt-b1", [{"metric": "bits_per_byte", "value": 2.5}])
    df = results.collect("t", extra_dirs=[paths.runs_dir("gpu")], include_paper=False)
    assert sorted(zip(df["profile"], df["value"], strict=True)) == [("gpu", 1.5), ("t", 2.5)]
    assert "paper" not in set(df["profile"])
