"""pass@k: solve code-generation problems with a model and judge each completion in the sandbox.

* **pass@1** (:func:`solve`): greedy decoding, stop strings applied
  to the *decoded* text, the completion run in an OS sandbox and the problem's
  tests judged outside it (:mod:`tokstudy.sandbox`, see its threat model).
  The same for MBPP problems from a user-supplied ``mbpp.jsonl``.
* **Sampled pass@k** (:func:`solve_sampled`), as the paper does it: ``n``
  completions per problem at a temperature and top-p, seeded per problem
  (``seed`` + the CRC32 of its task id), each judged, then the unbiased
  estimator :func:`pass_at_k` of Chen et al. (2021) averaged over problems
  (``docs/paper.md#pass-at-k``).

The problems themselves come from :mod:`tokstudy.problems`; a :class:`Judge` (limits, backend, workers),
built once by the caller from its settings, says where and how every completion is judged.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokstudy import sandbox
from tokstudy.choices import SandboxBackend
from tokstudy.errors import ProblemError
from tokstudy.generation import generate, sample
from tokstudy.problems import Problem


def task(problem: Problem) -> sandbox.Task:
    """What the sandbox runs for ``problem``: its prompt, tests, entry point and setup."""
    return sandbox.Task(problem.prompt, problem.tests, problem.entry_point, problem.setup)


@dataclass(frozen=True)
class Judge:
    """Where and how completions are judged, resolved once by the caller: the sandbox's per-problem limits,
    its backend and how many problems run at once (``evaluate.humaneval`` / ``--sandbox``)."""

    limits: sandbox.Limits = sandbox.Limits()
    backend: SandboxBackend = "bwrap"
    workers: int = 2

    def verdicts(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[sandbox.Verdict]:
        return sandbox.judge_all([task(p) for p in problems], completions, self.limits, backend=self.backend,
                                 workers=self.workers)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)`` for ``c`` correct of ``n`` samples."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ProblemError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):  # numerically stable product form
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """Mean of :func:`pass_at_k` over problems given as ``(n, c)``."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values:
        raise ProblemError("mean_pass_at_k over no problems")
    return sum(values) / len(values)


@dataclass
class PassResult:
    """pass@1 of greedy completions, with every problem's completion and outcome."""

    pass_at_1: float
    n_problems: int
    completions: list[str] = field(default_factory=list)
    results: list[sandbox.Verdict] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    backend: str = "bwrap"

    def per_problem(self) -> list[dict]:
        """Per problem: status, sandbox backend, completion and (when not passed) the reason + output tail."""
        return [{"task_id": t, "status": r.status, "sandbox": r.backend, "completion": c,
                 **({} if r.passed else {"detail": r.detail})}
                for t, r, c in zip(self.task_ids, self.results, self.completions, strict=True)]


def check(problems: Sequence[Problem], completions: Sequence[str], judge: Judge = Judge()) -> PassResult:
    """Judge each completion with its problem's tests (:meth:`Judge.verdicts`); pass@1 = the share that passes."""
    if len(problems) != len(completions):
        raise ProblemError(f"{len(problems)} problems but {len(completions)} completions")
    if not problems:
        raise ProblemError("no problems to check")
    results = judge.verdicts(problems, completions)
    return PassResult(sum(r.passed for r in results) / len(results), len(results), list(completions),
                      results, [p.task_id for p in problems], judge.backend)


def solve(model, tokenizer, problems: Sequence[Problem], *, max_new_tokens: int, batch_size: int,
          judge: Judge = Judge(), desc: str = "generate") -> PassResult:
    """Greedy pass@1 of ``model`` on ``problems`` (each problem's stop strings applied to decoded text)."""
    by_stop: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(problems):
        by_stop.setdefault(p.stop, []).append(i)
    completions = [""] * len(problems)
    for stop, idx in by_stop.items():
        gens = generate(model, tokenizer, [problems[i].prompt for i in idx], max_new_tokens,
                        stop=stop, batch_size=batch_size, desc=desc)
        for i, (text, _n) in zip(idx, gens, strict=True):
            completions[i] = text
    return check(problems, completions, judge)


@dataclass
class SampledResult:
    """pass@k for each k from ``n`` sampled completions per problem, with every sample's outcome."""

    pass_at: dict[int, float]  # k -> mean pass@k over problems
    n: int
    correct: list[int]  # per problem: samples that pass
    task_ids: list[str]
    samples: list[list[str]]
    results: list[list[sandbox.Verdict]]
    backend: str = "bwrap"

    def per_problem(self) -> list[dict]:
        """Per problem: passing samples of n, the first sample and the first failure's reason."""
        out = []
        for t, c, texts, verdicts in zip(self.task_ids, self.correct, self.samples, self.results, strict=True):
            fail = next((v for v in verdicts if not v.passed), None)
            out.append({"task_id": t, "n": self.n, "correct": c, "first_sample": texts[0],
                        **({} if fail is None else {"first_failure": fail.detail})})
        return out


def problem_seed(seed: int, task_id: str) -> int:
    """The sampling seed of one problem: ``seed`` + CRC32 of its task id (independent of order and batching)."""
    return seed + zlib.crc32(task_id.encode("utf-8"))


def solve_sampled(model, tokenizer, problems: Sequence[Problem], *, n: int, ks: Sequence[int], temperature: float,
                  top_p: float, seed: int, max_new_tokens: int, batch_size: int, judge: Judge = Judge(),
                  desc: str = "sample") -> SampledResult:
    """Sampled pass@k: ``n`` completions per problem (:func:`~tokstudy.generation.sample`), judged, estimated."""
    if not problems:
        raise ProblemError("no problems to sample")
    if not ks or max(ks) > n or min(ks) < 1:
        raise ProblemError(f"pass@k needs 1 <= k <= n for every k; got k={list(ks)}, n={n} (evaluate.humaneval)")
    from tqdm.auto import tqdm

    samples = [[text for text, _ in sample(model, tokenizer, p.prompt, n, max_new_tokens, temperature=temperature,
                                           top_p=top_p, seed=problem_seed(seed, p.task_id), stop=p.stop,
                                           batch_size=batch_size)]
               for p in tqdm(problems, desc=desc, leave=False)]
    flat = judge.verdicts([p for p in problems for _ in range(n)], [t for s in samples for t in s])
    verdicts = [flat[i * n : (i + 1) * n] for i in range(len(problems))]
    correct = [sum(v.passed for v in vs) for vs in verdicts]
    pass_at = {k: mean_pass_at_k([(n, c) for c in correct], k) for k in ks}
    return SampledResult(pass_at, n, correct, [p.task_id for p in problems], samples, verdicts, judge.backend)


def sampled_rows(res: SampledResult, dataset: str = "humaneval", extra: Mapping[str, Any] | None = None,
                 ) -> list[dict]:
    """One ``<dataset>_pass@k`` row per k, naming n, the temperature's run and the sandbox backend."""
    warn = {"sandbox_warning": sandbox.GUARD_WARNING} if res.backend == "guard" else {}
    return [{**dict(extra or {}), "metric": f"{dataset}_pass@{k}", "value": v, "dataset": dataset, "domain": "code",
             "problems": len(res.task_ids), "samples": res.n, "sandbox": res.backend, **warn}
            for k, v in sorted(res.pass_at.items())]


def pass_rows(res: PassResult, metric: str = "humaneval_pass@1", dataset: str = "humaneval",
              extra: Mapping[str, Any] | None = None) -> list[dict]:
    """The pass@1 result row; it names the sandbox backend, and carries the warning when that was ``guard``."""
    warn = {"sandbox_warning": sandbox.GUARD_WARNING} if res.backend == "guard" else {}
    return [{**dict(extra or {}), "metric": metric, "value": res.pass_at_1, "dataset": dataset,
             "domain": "code", "problems": res.n_problems, "sandbox": res.backend, **warn}]
