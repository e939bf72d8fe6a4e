"""The evaluate step: stages.evaluation.evaluate, the `tokstudy evaluate` verb and notebook 06 write one record."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tokstudy
from tokstudy import cli, lm, params, paths, results
from tokstudy.errors import EvaluateError, MissingInput
from tokstudy.stages import evaluation

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
SRC = Path(tokstudy.__file__).resolve().parents[1]
REPO = SRC.parent
TIMING = ("seconds",)
SPEED_METRICS = {"gen_bytes_per_s", "gen_tokens_per_s", "gen_text_bytes_per_s"}
DOCS = [("def add(a, b):\n    return a + b\n" * 6, "python", "code"),
        ("The quick brown fox jumps over the lazy dog. " * 8, "english", "english")]


def _write_test_split(root: Path) -> None:
    d = root / "data" / "smoke" / "corpus"
    d.mkdir(parents=True)
    lines = [json.dumps({"text": t, "language": lang, "domain": dom, "source": "test", "path": f"{lang}.txt",
                         "sha256": hashlib.sha256(t.encode()).hexdigest()}) for t, lang, dom in DOCS]
    (d / "test.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A scratch data/ and results/ (params.yaml stays the repo's), holding a tiny smoke test split."""
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    _write_test_split(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny"
    model, tok = lm.tiny_model([t for t, _, _ in DOCS] * 4, vocab_size=300)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


def test_cli_never_falls_back_exits_2_and_writes_nothing(root, capsys):
    before = _files(root)
    rc = cli.main(["evaluate", str(root / "no_such_dir"), "--profile", "smoke"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: tokstudy evaluate {root / 'no_such_dir'}: no model there") and "MODEL_DIR" in err
    assert "tokstudy finetune RUN" in err
    assert _files(root) == before  # no run record, no stand-in model


@pytest.mark.parametrize("profile", ["cpu", "smoke"])  # no profile evaluates a stand-in model
@pytest.mark.parametrize("run, stage", [("base", "pretrain@base"), ("fvt-b1", "finetune@fvt-b1")])
def test_a_missing_model_names_its_stage_and_writes_nothing(root, profile, run, stage):
    fix = rf"no model '{run}' for profile '{profile}' \(.*data/{profile}/models/{run}\): run `dvc repro {stage}`"
    with pytest.raises(MissingInput, match=fix):
        evaluation.evaluate(params.load(profile), run, sandbox="guard")
    assert not paths.runs_dir(profile).exists()


def test_a_bad_mbpp_file_fails_before_the_model_loads(root):
    with pytest.raises(Exception, match="--mbpp PATH") as exc:
        evaluation.evaluate(params.load("smoke"), "base", mbpp_path=root / "none.jsonl")
    assert isinstance(exc.value, EvaluateError)
    assert not paths.runs_dir("smoke").exists()


@needs_bwrap
def test_evaluating_a_model_dir_writes_every_metric(root, tiny_dir):
    out = evaluation.evaluate(params.load("smoke"), "tiny", model_dir=tiny_dir, humaneval_limit=1)
    rec = results.read_run(out)
    assert out == paths.runs_dir("smoke") / "evaluate-tiny.json"
    assert rec["provenance"]["params"]["model_dir"] == str(tiny_dir) and "fallback" not in rec["extra"]
    by = {(r["metric"], r["dataset"]): r for r in rec["rows"]}
    assert {"python", "english", "mean:code", "average"} <= {d for m, d in by if m == "bits_per_byte"}
    assert by[("humaneval_pass@1", "humaneval")]["problems"] == 1 and len(rec["extra"]["humaneval"]) == 1
    assert by[("gen_tokens_per_s", "humaneval-prompts")]["tokens"] == 2 * 16  # smoke: 2 prompts x 16 tokens


def _comparable(rec: dict) -> dict:
    rec = json.loads(json.dumps(rec))
    del rec["provenance"]["created"]
    for r in rec["rows"]:
        for k in TIMING:
            r.pop(k, None)
        if r["metric"] in SPEED_METRICS:
            r.pop("value")
            r.pop("bytes_per_token", None)
    return rec


@needs_bwrap
def test_cli_and_notebook_write_identical_run_records(tmp_path, tiny_dir):
    _write_test_split(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    env = {**os.environ, "TOKSTUDY_ROOT": str(tmp_path), "PYTHONPATH": str(SRC)}
    record = tmp_path / "results" / "smoke" / "runs" / "evaluate-tiny.json"
    cli_run = subprocess.run([sys.executable, "-m", "tokstudy.cli", "evaluate", str(tiny_dir), "--profile", "smoke",
                              "--humaneval-limit", "1"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert cli_run.returncode == 0, cli_run.stderr
    from_cli = json.loads(record.read_text())
    record.unlink()
    nb = subprocess.run([sys.executable, "-m", "papermill", "-k", "python3", "--log-level", "WARNING",
                         str(REPO / "notebooks" / "06_evaluate.ipynb"), str(tmp_path / "06.ipynb"),
                         "-p", "profile", "smoke", "-y", "runs: [tiny]", "-p", "model_dir", str(tiny_dir),
                         "-p", "humaneval_limit", "1"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert nb.returncode == 0, nb.stderr[-3000:]
    from_nb = json.loads(record.read_text())
    assert _comparable(from_cli) == _comparable(from_nb)



@pytest.mark.parametrize("flag, backend", [([], "bwrap"), (["--sandbox", "guard"], "guard")])
def test_cli_sandbox_flag_picks_the_backend_and_the_record_says_which(root, tiny_dir, flag, backend):
    if backend == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    rc = cli.main(["evaluate", str(tiny_dir), "--profile", "smoke", "--name", "sb", "--humaneval-limit", "1", *flag])
    assert rc == 0
    rec = results.read_run(paths.runs_dir("smoke") / "evaluate-sb.json")
    assert rec["provenance"]["params"]["sandbox"] == backend
    [pass_row] = [r for r in rec["rows"] if r["metric"] == "humaneval_pass@1"]
    assert pass_row["sandbox"] == backend
    assert ("sandbox_warning" in pass_row) == (backend == "guard")
