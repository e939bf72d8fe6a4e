"""tokstudy.stages: the one place the pipeline's profile-aware glue lives."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

from tokstudy import cli, params, paths, results
from tokstudy.errors import MissingInput, TokenizerError
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


def test_cli_train_and_notebook_01_write_identical_run_records(smoke):
    record_path = paths.runs_dir("smoke") / "tokenizer_train-gpt4-m.json"
    tok_file = paths.tokenizer_dir("smoke", "gpt4-m") / "tokenizer.json"
    assert cli.main(["train", "--variant", "gpt4-m", "--profile", "smoke"]) == 0
    from_cli, cli_tokenizer = results.read_run(record_path), tok_file.read_bytes()
    record_path.unlink()
    _run_notebook_code("01_train_tokenizer.ipynb", profile="smoke", variants=["gpt4-m"])
    from_notebook = results.read_run(record_path)
    assert _comparable(from_cli) == _comparable(from_notebook)
    assert {r["metric"] for r in from_cli["rows"]} == {"train_seconds", "train_bytes", "train_pieces", "vocab_size"}
    assert tok_file.read_bytes() == cli_tokenizer  # deterministic training: the same file both times
    assert (paths.runs_dir("smoke") / "compression-gpt4-m.json").is_file()  # the notebook's second step


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Every profile folder inputs and the steps touch, under tmp_path."""
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    return tmp_path


@pytest.mark.parametrize("profile", ["cpu", "smoke"])  # no step builds an input, in any profile
def test_missing_inputs_name_the_stage_that_makes_them_and_write_nothing(scratch, profile):
    P = params.load(profile)
    cases = [
        (lambda: inputs.corpus_file(P, "train.jsonl"), rf"no corpus 'corpus' for profile '{profile}' "
                                                       rf"\(.*train\.jsonl\): run `dvc repro corpus` "
                                                       rf"\(notebook notebooks/00_corpus\.ipynb\)"),
        (lambda: tok_stages.train_tokenizer(P, "gpt4-m"), r"no corpus .*`dvc repro corpus`"),
        (lambda: inputs.tokenizer_file(P, "gpt4-m"),
         r"no tokenizer 'gpt4-m' .*`dvc repro tokenizers_model` \(notebook notebooks/01_train_tokenizer\.ipynb\)"),
        (lambda: inputs.tokenizer_file(P, "gpt2-32k"), r"`dvc repro tokenizers_regex`"),
        (lambda: inputs.tokenizer_file(P, "gpt4-32k"), r"`dvc repro truncate_tokenizers`"),
        (lambda: inputs.run_record(P, "compression", "gpt4-m"), r"`dvc repro tokenizers_model`"),
        (lambda: inputs.run_record(P, "compression", "llama2"), r"`dvc repro reference_metrics`"),
        (lambda: inputs.model_dir(P, "base"), r"no model 'base' .*`dvc repro pretrain@base`"),
        (lambda: inputs.model_dir(P, "gpt4-m-fvt-init"), r"`dvc repro transfer`"),
        (lambda: inputs.model_dir(P, "fvt-b1"), r"`dvc repro finetune@fvt-b1`"),
        (lambda: inputs.run_record(P, "evaluate", "base"), r"`dvc repro evaluate_pretrain@base`"),
        (lambda: inputs.run_record(P, "evaluate", "fvt-b1"), r"`dvc repro evaluate_finetune@fvt-b1`"),
    ]
    for call, message in cases:
        with pytest.raises(MissingInput, match=message):
            call()
    with pytest.raises(params.ParamsError, match="no-such-variant"):
        inputs.tokenizer_file(P, "no-such-variant")
    assert list(scratch.rglob("*")) == []


def test_outside_a_checkout_the_hint_names_the_command_that_makes_the_input(tmp_path, monkeypatch):
    """No dvc.yaml (an installed package): the hint is the tokstudy verb or step, not a DVC stage."""
    P = params.load("cpu")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    assert inputs.hint(P, "corpus", "corpus") == "`tokstudy corpus --profile cpu`"
    assert inputs.hint(P, "tokenizer", "gpt4-m") == "`tokstudy train --variant gpt4-m --profile cpu`"
    assert inputs.hint(P, "model", "fvt-b1") == "`python -m tokstudy.stages train fvt-b1 --profile cpu`"
    assert inputs.hint(P, "model", "gpt4-m-fvt-init") == "`python -m tokstudy.stages transfer gpt4-m --profile cpu`"
    assert inputs.hint(P, "model", "fvt-b1-s2") == "`python -m tokstudy.stages train fvt-b1-s2 --profile cpu`"
    assert inputs.hint(P, "tokenizer_train", "gpt4-256k") == "`tokstudy train --variant gpt4-256k --profile cpu`"
    with pytest.raises(params.ParamsError, match="no-such-run"):
        inputs.hint(P, "model", "no-such-run")
    with pytest.raises(params.ParamsError, match="unknown model run 'fvt-b1-s3'.*replicates"):  # seeds: 3 -> s1, s2
        inputs.hint(P, "evaluate", "fvt-b1-s3")


def test_every_hint_names_a_stage_of_dvc_yaml():
    from test_pipeline import resolved

    P, stages = params.load("cpu"), set(resolved("cpu"))
    hints = [inputs.maker(P, "corpus", "corpus")[0], inputs.maker(P, "compression", "llama2")[0]]
    hints += [inputs.maker(P, "tokenizer", name)[0] for name in P.tokenizers]
    hints += [inputs.maker(P, "tokenizer_train", name)[0] for name in P.tokenizers]
    hints += [inputs.maker(P, kind, rep)[0] for run in P.models.values() for rep, _seed in run.replicates(P.seed)
              for kind in ("model", "evaluate")]
    hints += [inputs.maker(P, "model", f"{t}-{m}-init")[0] for t in P.transfer.targets for m in P.transfer.methods]
    assert set(hints) <= stages, sorted(set(hints) - stages)


def test_no_step_branches_on_the_profile_name():
    """Steps behave the same in every profile: no comparison against a profile name in tokstudy.stages."""
    names = {"smoke", "cpu", "gpu", "gpu-dry"}
    problems = []
    for f in sorted((SRC / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                consts = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if names & set(consts):
                    problems.append(f"{f.name}:{node.lineno}")
    assert problems == [], problems


def test_handle_is_a_variant_else_a_reference_or_path(smoke, tmp_path):
    handle = tok_stages.handle(smoke, "gpt4-m")
    assert handle.vocab_size == smoke.tokenizer("gpt4-m").vocab_size
    assert inputs.tokenizer_file(smoke, "gpt4-m") == paths.tokenizer_dir("smoke", "gpt4-m") / "tokenizer.json"
    by_path = tok_stages.handle(smoke, str(inputs.tokenizer_file(smoke, "gpt4-m")))
    assert by_path.encode("def f(): pass") == handle.encode("def f(): pass")
    with pytest.raises(TokenizerError):
        tok_stages.handle(smoke, str(tmp_path / "nothing-here"))


# Modules that map a profile to its folders or settings: that is their job.
PROFILE_MODULES = {"paths", "params", "paramfile", "results"}
# The layer beside tokstudy.stages: the CLI, its verbs on the user's files, the gpu plan.
TOP_LAYER = {"cli", "commands", "gpuplan", "advise"}


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
        if f.stem in TOP_LAYER or f.stem == "__init__" or f.stem in PROFILE_MODULES:
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


def test_cli_train_with_overrides_needs_out_and_leaves_the_pipeline_variant_alone(smoke, capsys):
    tok_dir = paths.tokenizer_dir("smoke", "gpt4-m")
    before = (tok_dir / "tokenizer.json").read_bytes() if (tok_dir / "tokenizer.json").is_file() else None
    assert cli.main(["train", "--variant", "gpt4-m", "--profile", "smoke", "--vocab-size", "300"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train: give --out DIR") and err.count("\n") == 1
    after = (tok_dir / "tokenizer.json").read_bytes() if (tok_dir / "tokenizer.json").is_file() else None
    assert after == before
    assert cli.main(["train", "--profile", "smoke"]) == 2
    assert "give --variant NAME" in capsys.readouterr().err


def test_figures_without_the_ablation_table_names_its_stage(scratch):
    from tokstudy.stages import figures

    with pytest.raises(MissingInput, match=r"model_ablations\.csv\): run `dvc repro model_ablations`"):
        figures.figures(params.load("cpu"))
    assert list(scratch.rglob("*")) == []


def test_the_train_step_takes_the_replicate_names_its_hints_give(monkeypatch):
    """`python -m tokstudy.stages train fvt-b1-s2` (what inputs.hint names outside a checkout) trains replicate 2
    of fvt-b1; a replicate index the run does not have is one line naming the run's replicates."""
    import importlib

    from tokstudy.stages import train

    main = importlib.import_module("tokstudy.stages.__main__").main
    calls = []
    monkeypatch.setattr(train, "train", lambda P, run, **kw: calls.append((run, kw["replicate"])) or Path("rec.json"))
    assert main(["train", "fvt-b1-s2", "--profile", "cpu"]) == 0 and calls == [("fvt-b1", 2)]
    assert main(["train", "base", "--profile", "cpu"]) == 0 and calls[-1] == ("base", 0)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "tokstudy.stages", "train", "fvt-b1-s3", "--profile", "cpu"],
                       capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and r.stdout == "" and len(err) == 1
    assert "unknown model run 'fvt-b1-s3'" in err[0] and "replicates" in err[0]
