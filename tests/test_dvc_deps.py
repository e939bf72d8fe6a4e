"""dvc.yaml declares exactly the code its stages run, so an edit reruns only what it touches.

A stage whose ``deps`` miss a ``tokstudy`` module it imports is not re-run when that module changes
(``dvc repro`` keeps stale results and exits 0); one whose ``deps`` hold modules it never runs is
re-run for nothing. tools/dvc_deps.py walks each stage's imports (function-level, relative,
importlib, files run by path) and writes the code deps; these tests resolve every stage with DVC
itself and assert equality with that walk, check the walk on hand-made inputs, and let DVC say which
stages an edit of plots.py, sandbox.py and cli.py marks stale.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import dvc_deps  # noqa: E402
from dvc_deps import closure, covered_by, entry_points, imported_modules, module_file  # noqa: E402

CODE = dvc_deps.CODE


@functools.cache
def stages():
    """Every resolved stage of dvc.yaml as ``(address, cmd, deps, outs)``, paths relative to ROOT."""
    with Repo(str(ROOT)) as repo:
        out = []
        for stage in repo.index.stages:
            cmd = getattr(stage, "cmd", None)
            if not cmd:
                continue  # a .dvc file (imported data), not a pipeline stage
            cmd = " && ".join(cmd) if isinstance(cmd, list) else cmd
            deps = [_rel(d.def_path) for d in stage.deps]
            outs = [_rel(o.def_path) for o in stage.outs]
            out.append((stage.addressing, cmd, deps, outs))
    assert out, f"no stage found in {ROOT / 'dvc.yaml'}"
    return tuple(out)


def _rel(path) -> str:
    p = Path(str(path))
    return (p.resolve().relative_to(ROOT) if p.is_absolute() else p).as_posix().rstrip("/")


def test_every_stage_depends_on_exactly_the_code_it_runs():
    problems = []
    for address, cmd, deps, _ in stages():
        want = set(dvc_deps.code_deps(cmd))
        have = {d for d in deps if dvc_deps.is_code(d)}
        if have != want:
            problems.append(f"  {address}: missing {sorted(want - have)}, extra {sorted(have - want)}")
    assert not problems, "dvc.yaml code deps differ from the import walk (run `make dvc-deps`):\n" + "\n".join(problems)


def test_the_generator_agrees_with_dvc_yaml():
    assert dvc_deps.main(["--check"]) == 0


def test_narrow_closures():
    """What each stage runs: the drawing code only where figures are drawn, the sandbox only in evaluations."""
    by_stage = {address.split("@")[0]: {d for d in deps if d.startswith(CODE + "/")}
                for address, _, deps, _ in stages()}
    for stage, deps in by_stage.items():
        assert (f"{CODE}/plots.py" in deps) == (stage == "figures"), stage
        assert (f"{CODE}/sandbox.py" in deps) == stage.startswith("evaluate"), stage
        assert f"{CODE}/cli.py" not in deps and f"{CODE}/commands.py" not in deps, stage
        assert f"{CODE}/params.py" in deps and f"{CODE}/stages/__init__.py" in deps, stage
    no_torch = ("corpus", "tokenizers_regex", "tokenizers_model", "reference_metrics", "figures", "model_ablations")
    for stage in no_torch:
        assert not {f"{CODE}/{m}.py" for m in ("training", "model", "transfer", "lm")} & by_stage[stage], stage


def _copy_for_dvc(dest: Path) -> Path:
    """The checkout without its data, results, runs and environments: enough for `dvc status`."""
    skip = {".git", ".venv", "data", "results", "runs", "figures", "__pycache__", ".pytest_cache", "tokstudy.egg-info"}
    shutil.copytree(ROOT, dest, ignore=lambda d, names: [n for n in names if n in skip], symlinks=True)
    shutil.copytree(ROOT / "data" / "paper", dest / "data" / "paper")
    (dest / ".dvc" / "config.local").write_text("[core]\n    no_scm = true\n", encoding="utf-8")  # no .git here
    return dest


@pytest.mark.slow
def test_dvc_status_after_an_edit_names_only_the_stages_that_run_the_edited_file(tmp_path):
    """Edit plots.py, sandbox.py and cli.py in a copy; `dvc status` lists each file only in the stages that run it."""
    copy = _copy_for_dvc(tmp_path / "repo")
    edited = {"plots.py": {"figures"}, "sandbox.py": {"evaluate_pretrain", "evaluate_finetune"}, "cli.py": set()}
    for name in edited:
        f = copy / "src" / "tokstudy" / name
        f.write_text(f.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=copy, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = json.loads(proc.stdout)
    for name, expected in edited.items():
        path = f"src/tokstudy/{name}"
        reporting = set()
        for address, changes in status.items():
            for change in changes:
                deps = change.get("changed deps", {}) if isinstance(change, dict) else {}
                if path in deps:
                    reporting.add(address.split("@")[0])
        assert reporting == expected, f"{name}: dvc status marks {sorted(reporting)}, expected {sorted(expected)}"


def test_dvc_lock_holds_no_stage_that_dvc_yaml_no_longer_defines():
    import prune_lock

    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    assert prune_lock.stale(lock, {a for a, *_ in stages()}) == []
    assert prune_lock.stale({"stages": {"a": {}, "gone": {}}}, {"a"}) == ["gone"]


def test_every_figure_is_a_declared_output():
    from tokstudy import paths, plots

    profile = yaml.safe_load((ROOT / "params.yaml").read_text())["profile"]
    folder = paths.figures_dir(profile).relative_to(paths.ROOT).as_posix()
    names = [*plots.FIGURES, "model_ablations"]
    expected = {f"{folder}/{name}.{ext}" for name in names for ext in ("png", "pdf")}
    on_disk = {_rel(p) for ext in ("png", "pdf") for p in (ROOT / folder).glob(f"*.{ext}")}
    outs = [o for *_, stage_outs in stages() for o in stage_outs]
    undeclared = sorted(f for f in expected | on_disk if not covered_by(f, outs))
    assert not undeclared, "figures the pipeline writes are no stage's `outs`; declare them in dvc.yaml:\n  " + \
        "\n  ".join(undeclared)


# --- the walk itself, on hand-made inputs -------------------------------------------------------


def test_entry_points_reads_papermill_module_and_console_verbs():
    files, modules = entry_points(
        "mkdir -p runs/x && papermill --engine tokstudy -k python3 notebooks/00_corpus.ipynb runs/x/out.ipynb "
        "-p profile cpu && python -m tokstudy.finetune base --profile cpu; "
        "OMP_NUM_THREADS=1 tokstudy metrics --profile cpu"
    )
    assert files == [ROOT / "notebooks/00_corpus.ipynb"]  # the papermill output notebook is not an input
    assert modules == ["tokstudy.kernel", "tokstudy.finetune", dvc_deps.console_scripts()["tokstudy"]]


def test_imported_modules_sees_function_level_relative_importlib_and_by_path():
    tree = ast.parse(
        "import os\n"
        "from tokstudy import paths, params\n"
        "from tokstudy.metrics import nsl\n"
        "CHILD = 'sandbox_child.py'\n"
        "def f():\n"
        "    import tokstudy.bpe\n"
        "    from . import corpus\n"
        "    importlib.import_module('tokstudy.costs')\n"
    )
    found = imported_modules(tree, "tokstudy.results", is_package=False)
    assert found == {"tokstudy", "tokstudy.paths", "tokstudy.params", "tokstudy.metrics", "tokstudy.bpe",
                     "tokstudy.corpus", "tokstudy.costs", "tokstudy.sandbox_child"}


def test_closure_is_transitive_and_includes_package_init():
    reached, unresolved = closure([], ["tokstudy.paths"])
    assert "src/tokstudy/__init__.py" in reached and "src/tokstudy/paths.py" in reached
    direct = imported_modules(ast.parse((ROOT / "src/tokstudy/metrics.py").read_text()), "tokstudy.metrics")
    reached_m, _ = closure([], ["tokstudy.metrics"])
    for mod in direct:  # everything metrics imports, and what those import, is reached
        assert module_file(mod).relative_to(ROOT).as_posix() in reached_m
        assert closure([], [mod])[0] <= reached_m
    assert closure([], ["tokstudy.no_such_module"])[1] == {"tokstudy.no_such_module"}
    assert not unresolved


def test_update_rewrites_only_code_deps_in_place():
    cmd = "papermill -k python3 notebooks/07_costs.ipynb out.ipynb -p profile cpu"
    doc = {"stages": {"s": {"cmd": cmd, "deps": ["notebooks/07_costs.ipynb", "src/tokstudy", "data/x"]}}}
    assert dvc_deps.update(doc) == ["s"]
    deps = doc["stages"]["s"]["deps"]
    assert deps[0] == "notebooks/07_costs.ipynb" and deps[-1] == "data/x"
    assert deps[1:-1] == dvc_deps.code_deps(cmd) and "src/tokstudy/stages/costs.py" in deps
    assert dvc_deps.update(doc) == []  # already exact: nothing to change


def test_covered_by_file_or_parent_folder_only():
    assert covered_by("src/tokstudy/bpe.py", ["src/tokstudy"])
    assert covered_by("src/tokstudy/bpe.py", ["src/tokstudy/bpe.py"])
    assert not covered_by("src/tokstudy/bpe.py", ["src/tok"])  # a name prefix is not a folder
    assert not covered_by("src/tokstudy/bpe.py", ["src/tokstudy/pretok.py"])
