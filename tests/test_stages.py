"""tokstudy.stages: the one place the pipeline's profile-aware glue lives."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

from tokstudy import cli, metrics, params, paths, results
from tokstudy.errors import CorpusError, TokenizerError
from tokstudy.stages import inputs
from tokstudy.stages import tokenizers as tok_stages

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "tokstudy"


def _comparable(record: dict) -> dict:
    """A run record minus what legitimately differs between two runs: creation time and timings."""
    record = json.loads(json.dumps(record))
    record["provenance"].pop("created")
    for row in record["rows"]:
        if row["metric"].endswith("_seconds"):
            row["value"] = None
    return record


def _run_notebook_code(name: str, **parameters) -> None:
    """Execute a notebook's code cells in order, with its `parameters` cell overridden (as papermill does)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    scope: dict = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, name, "exec"), scope)  # noqa: S102 - our own notebook
        if "parameters" in cell.metadata.get("tags", []):
            scope.update(parameters)


def test_cli_train_and_notebook_01_write_identical_run_records():
    record_path = paths.runs_dir("smoke") / "tokenizer_train-gpt4-m.json"
    tok_file = paths.tokenizer_dir("smoke", "gpt4-m") / "tokenizer.json"
    assert cli.main(["train", "--variant", "gpt4-m", "--profile", "smoke"]) == 0
    from_cli, cli_tokenizer = results.read_run(record_path), tok_file.read_bytes()
    record_path.unlink()
    _run_notebook_code("01_train_tokenizer.ipynb", profile="smoke", variant="gpt4-m")
    from_notebook = results.read_run(record_path)
    assert _comparable(from_cli) == _comparable(from_notebook)
    assert {r["metric"] for r in from_cli["rows"]} == {"train_seconds", "train_bytes", "train_pieces", "vocab_size"}
    assert tok_file.read_bytes() == cli_tokenizer  # deterministic training: the same file both times
    assert (paths.runs_dir("smoke") / "compression-gpt4-m.json").is_file()  # the notebook's second step


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Every profile folder inputs and the steps touch, under tmp_path."""
    monkeypatch.setattr(paths, "corpus_dir", lambda profile: tmp_path / profile / "corpus")
    monkeypatch.setattr(paths, "tokenizer_dir", lambda profile, name: tmp_path / profile / "tokenizers" / name)
    monkeypatch.setattr(paths, "runs_dir", lambda profile: tmp_path / profile / "runs")
    return tmp_path


def test_inputs_outside_smoke_name_the_dvc_stage_and_write_nothing(scratch):
    P = params.load("cpu")
    with pytest.raises(CorpusError, match=r"no corpus for profile 'cpu' at .*train\.jsonl: run `dvc repro corpus`"):
        inputs.corpus_split(P, "train")
    with pytest.raises(CorpusError, match=r"`dvc repro corpus`"):
        inputs.corpus_manifest(P)
    with pytest.raises(CorpusError, match=r"`dvc repro corpus`"):
        inputs.train_texts(P, "gpt4-m")
    with pytest.raises(TokenizerError, match=r"tokenizer 'gpt4-m' of profile 'cpu' is not trained .*"
                                             r"`dvc repro train_tokenizer@gpt4-m`"):
        inputs.tokenizer_variant(P, "gpt4-m")
    with pytest.raises(metrics.MetricsError, match=r"no compression results for 'gpt4-m' .*"
                                                   r"`dvc repro train_tokenizer@gpt4-m`"):
        tok_stages.compression_rows(P, ["gpt4-m"])
    with pytest.raises(metrics.MetricsError, match=r"'gpt4-32k' .*`dvc repro truncate_tokenizer@gpt4-32k`"):
        tok_stages.compression_rows(P, ["gpt4-32k"])
    with pytest.raises(TokenizerError, match=r"`dvc repro truncate_tokenizer@gpt4-32k`"):
        inputs.tokenizer_variant(P, "gpt4-32k")
    with pytest.raises(CorpusError, match=r"unknown corpus split 'dev'"):
        inputs.corpus_split(P, "dev")
    with pytest.raises(params.ParamsError, match="no-such-variant"):
        inputs.tokenizer_path(P, "no-such-variant")
    assert list(scratch.rglob("*")) == []


def test_smoke_builds_a_missing_corpus_with_its_run_record(scratch):
    P = params.load("smoke")
    docs = inputs.corpus_split(P, "test")
    manifest = inputs.corpus_manifest(P)
    assert docs and len(docs) == manifest["splits"]["test"]["documents"]
    record = results.read_run(scratch / "smoke" / "runs" / "corpus-corpus.json")
    rows = {(r["split"], r["metric"]): r["value"] for r in record["rows"]}
    assert rows[("test", "documents")] == len(docs) and rows[("all", "bytes")] == manifest["bytes"]
    assert record["extra"]["sha256"] == manifest["sha256"]


def test_named_tokenizer_is_a_variant_else_a_reference_or_path(tmp_path):
    P = params.load("smoke")
    handle = inputs.named_tokenizer(P, "gpt4-m")
    assert handle.vocab_size == P.tokenizer("gpt4-m").vocab_size
    assert inputs.tokenizer_path(P, "gpt4-m") == paths.tokenizer_dir("smoke", "gpt4-m") / "tokenizer.json"
    by_path = inputs.named_tokenizer(P, str(inputs.tokenizer_path(P, "gpt4-m")))
    assert by_path.encode("def f(): pass") == handle.encode("def f(): pass")
    with pytest.raises(TokenizerError):
        inputs.named_tokenizer(P, str(tmp_path / "nothing-here"))


# Modules that map a profile to its folders or settings: that is their job.
PROFILE_MODULES = {"paths", "params", "paramfile", "results"}


def _upward_imports(fn: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(fn):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tokstudy":
                found += [f"tokstudy.{a.name}" for a in node.names if a.name in ("params", "stages")]
            elif node.module.startswith(("tokstudy.params", "tokstudy.stages")):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(("tokstudy.params", "tokstudy.stages"))]
    return found


def test_low_modules_know_no_profiles():
    problems = []
    for f in sorted(SRC.glob("*.py")):
        if f.stem in ("cli", "__init__") or f.stem in PROFILE_MODULES:
            continue
        for fn in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
            if any(a.arg == "profile" for a in args):
                problems.append(f"{f.name}:{fn.lineno} {fn.name}() has a `profile` parameter")
            problems += [f"{f.name}:{fn.lineno} {fn.name}() imports {m}" for m in _upward_imports(fn)]
    assert problems == [], "profile-aware code belongs in tokstudy.stages:\n" + "\n".join(problems)


def test_the_profile_check_sees_a_violation():
    bad = ast.parse("def f(profile):\n    from tokstudy import params\n    from tokstudy.stages import inputs\n")
    fn = bad.body[0]
    assert [a.arg for a in fn.args.args] == ["profile"]
    assert _upward_imports(fn) == ["tokstudy.params", "tokstudy.stages"]


def test_cli_train_with_overrides_needs_out_and_leaves_the_pipeline_variant_alone(capsys):
    tok_dir = paths.tokenizer_dir("smoke", "gpt4-m")
    before = (tok_dir / "tokenizer.json").read_bytes() if (tok_dir / "tokenizer.json").is_file() else None
    assert cli.main(["train", "--variant", "gpt4-m", "--profile", "smoke", "--vocab-size", "300"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train: give --out DIR") and err.count("\n") == 1
    after = (tok_dir / "tokenizer.json").read_bytes() if (tok_dir / "tokenizer.json").is_file() else None
    assert after == before
    assert cli.main(["train", "--profile", "smoke"]) == 2
    assert "give --variant NAME" in capsys.readouterr().err
