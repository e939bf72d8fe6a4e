"""Issue 14, case 5: a property test over the whole ``tokstudy`` CLI (hypothesis).

For every verb, every numeric flag gets a value from {-1, 0, nan, inf, 1e12} (or none) and every path
argument one of: its good value, an existing file, a folder of the user's (thesis.tex, sub/data.csv), a path
under a file, an unwritable path (``/proc/1/nonexistent/...``: root cannot create it), and for an output the
verb's own input too. Whatever is drawn, ``cli.main`` (in-process) must return 0 or 2, a refusal is exactly
one ``error: ...`` line on stderr and no traceback, and no file outside the verb's own output changes (paths,
sizes, mtimes and sha256 of every file of a fresh tree, its inputs included, before and after).

Verbs that need the pipeline's smoke data (``sweep``, ``finetune``) always get a bad number, so only their
flag checks run (they come before any work); ``evaluate`` always gets a model folder that is not one.
``corpus`` has no numeric flag and no path argument: nothing to draw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tokstudy import bpe, cli, model, params, tokenizer

NUMBERS = ["-1", "0", "nan", "inf", "1e12"]
UNWRITABLE = "/proc/1/nonexistent"  # not even root can create anything there
BAD = ["file", "foreign", "under_file", "unwritable"]
TEXTS = [f"def f{i}(x):\n    return x * {i}\n" * 4 + "Some English prose here. " * 3 for i in range(150)]

#: verb -> fixed args, positional paths, path flags, numeric flags (one value / a list), --force or not;
#: a path is (the name of its good value or None, the kinds drawn: None leaves an optional flag out)
VERBS = {
    "train": dict(fixed=["--profile", "smoke", "--variant", "gpt2-32k"],
                  flags={"--data": ("code", ["good", *BAD, None]), "--out": ("out", ["good", *BAD, "input"])},
                  numbers=["--vocab-size"], force=True),
    "compare": dict(pos=[("code", ["good", *BAD]), ("tok", ["good", *BAD])],
                    flags={"--base": ("tok", ["good", *BAD]), "--out": ("out", ["good", *BAD, "input"])},
                    numbers=["--alpha", "--max-docs", "--max-file-bytes", "--max-line-chars"], force=True),
    "overlap": dict(pos=[("tok", ["good", *BAD]), ("tok2", ["good", *BAD])],
                    flags={"--out": ("out", ["good", *BAD, "input"])}, force=True),
    "sweep": dict(fixed=["--profile", "smoke", "--variant", "gpt4-l"], lists=["--sizes", "--compare"]),
    "transfer": dict(pos=[("model", ["good", *BAD]), ("tok", ["good", *BAD])],
                     flags={"--old-tokenizer": ("tok", ["good", *BAD, None]),
                            "--out": ("out", ["good", *BAD, "input"])},
                     numbers=["--pad-to-multiple-of"], force=True),
    "evaluate": dict(fixed=["--profile", "smoke"], pos=[(None, BAD)], flags={"--mbpp": (None, [*BAD, None])},
                     numbers=["--humaneval-limit"]),
    "export": dict(pos=[("tok", ["good", *BAD])], flags={"--tiktoken": ("out.tiktoken", ["good", *BAD])}),
    "finetune": dict(fixed=["base", "--profile", "smoke"], numbers=["--max-steps", "--stop-after"], need_number=True),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny tokenizer folder (vocab 300), another one, and a tiny causal LM folder with the first."""
    root = tmp_path_factory.mktemp("inputs")
    v = dataclasses.replace(params.load("smoke").tokenizer("gpt4-m"), vocab_size=300)
    bpe.save(bpe.train(TEXTS, v), root / "tok", {"variant": v})
    bpe.save(bpe.train([t.upper() for t in TEXTS], v), root / "tok2", {"variant": v})
    model.tiny_model(tokenizer.load(root / "tok").vocab_size, layers=1).save_pretrained(root / "model")
    shutil.copy(root / "tok" / "tokenizer.json", root / "model" / "tokenizer.json")
    return root


def _world(inputs: Path) -> Path:
    """A fresh tree: the inputs, a code folder, a user file, a folder of the user's files, a user rank file."""
    w = Path(tempfile.mkdtemp(prefix="cliprop-"))
    for name in ("tok", "tok2", "model"):
        shutil.copytree(inputs / name, w / name)
    (w / "code").mkdir()
    (w / "code" / "a.py").write_text("def g(y):\n    return y + 1\n" * 20)
    (w / "code" / "notes.md").write_text("This is English prose about the project.\n" * 10)
    (w / "code" / "texts.py").write_text("".join(TEXTS))  # enough for train's 320 tokens
    (w / "notes.txt").write_text("the user's notes\n")
    (w / "rank.tiktoken").write_text("the user's rank file\n")
    (w / "foreign" / "sub").mkdir(parents=True)
    (w / "foreign" / "thesis.tex").write_text("\\documentclass{article}\n")
    (w / "foreign" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return w


def _snapshot(w: Path) -> tuple[dict, set]:
    """Every file (size, mtime, sha256) and every folder under ``w``."""
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(w):
        dirs |= {os.path.join(dirpath, d) for d in dirnames}
        for f in filenames:
            p = Path(dirpath, f)
            st_ = p.stat()
            files[str(p)] = (st_.st_size, st_.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return files, dirs


#: the output that is the verb's own input (train's is its --data folder: no input of a tokenizer there)
_INPUT = {"transfer": "model", "compare": "tok", "overlap": "tok", "train": "code"}


def _path(verb: str, kind: str, good: str | None, w: Path) -> str:
    """The path of ``kind`` for an argument of ``verb`` whose good value is ``w / good``."""
    suffix = ".tiktoken" if verb == "export" else ""
    return str({
        "good": w / "new" / good if good in ("out", "out.tiktoken") else w / str(good),
        "file": w / "rank.tiktoken" if suffix else w / "notes.txt",
        "foreign": w / "foreign",
        "under_file": w / "notes.txt" / f"x{suffix}",
        "unwritable": Path(UNWRITABLE) / f"x{suffix}",
        "input": w / _INPUT.get(verb, ""),
    }[kind])


@st.composite
def invocations(draw, verb: str):
    """The argv of ``verb`` with each path as ``(kind, good)``, resolved in a fresh tree by :func:`_path`.

    Half the draws change one argument alone (the others good, no number): each refusal on its own, and
    the runs that succeed; the other half draw every argument.
    """
    spec = VERBS[verb]
    args = [*[(None, p) for p in spec.get("pos", [])], *spec.get("flags", {}).items()]
    names = [*range(len(args)), *spec.get("numbers", []), *spec.get("lists", [])]
    alone = draw(st.sampled_from(names)) if names and draw(st.booleans()) else None

    def drawn(name) -> bool:
        return alone is None or alone == name

    parts: list = [verb, *spec.get("fixed", [])]
    for i, (flag, (good, kinds)) in enumerate(args):
        kind = draw(st.sampled_from(kinds)) if drawn(i) else ("good" if "good" in kinds else kinds[-1])
        if kind is not None:
            parts += [*([flag] if flag else []), (kind, good)]
    numbers = [(flag, [draw(st.sampled_from(NUMBERS))]) for flag in spec.get("numbers", [])
               if drawn(flag) and (alone == flag or draw(st.booleans()))]
    numbers += [(flag, draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=2)))
                for flag in spec.get("lists", []) if drawn(flag) and (alone == flag or draw(st.booleans()))]
    if (spec.get("need_number") or spec.get("lists")) and not numbers:  # else real pipeline work would start
        flag = (spec.get("numbers") or spec["lists"])[0]
        numbers = [(flag, [draw(st.sampled_from(NUMBERS))])]
    for flag, values in numbers:
        parts += [flag, *values]
    if spec.get("force") and draw(st.booleans()):
        parts.append("--force")
    return parts


def _outputs(argv: list[str]) -> list[str]:
    """The paths a run of ``argv`` may create or change: its --out, or export's OUT and OUT.json."""
    for flag in ("--out", "--tiktoken"):
        if flag in argv:
            out = argv[argv.index(flag) + 1]
            return [out, str(Path(out).with_suffix(".json"))] if flag == "--tiktoken" else [out]
    return []


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@pytest.mark.parametrize("verb", list(VERBS))
@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_flag_and_path_gives_0_or_2_one_line_and_touches_nothing_else(inputs, capsys, monkeypatch, verb, data):
    monkeypatch.delenv("TOKSTUDY_DEBUG", raising=False)
    parts = data.draw(invocations(verb))
    w = _world(inputs)
    try:
        argv = [_path(verb, p[0], p[1], w) if isinstance(p, tuple) else p for p in parts]
        before_files, before_dirs = _snapshot(w)
        capsys.readouterr()
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse refuses a flag
            rc = exc.code
        err = capsys.readouterr().err
        event(f"exit status {rc}")
        assert rc in (0, 2), (argv, rc, err)
        assert "Traceback" not in err, (argv, err)
        if rc == 2:
            assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), (argv, err)
        after_files, after_dirs = _snapshot(w)
        if rc == 2:
            assert (after_files, after_dirs) == (before_files, before_dirs), argv
        else:
            outputs = _outputs(argv)
            changed = {p for p in before_files if after_files.get(p) != before_files[p]}
            assert not changed, (argv, changed)  # every file that was there, the user's and the inputs, as it was
            new = (set(after_files) - set(before_files)) | (after_dirs - before_dirs)
            assert all(_under(p, outputs) or any(_under(o, [p]) for o in outputs) for p in new), (argv, new)
            assert before_dirs <= after_dirs, argv
    finally:
        shutil.rmtree(w, ignore_errors=True)
