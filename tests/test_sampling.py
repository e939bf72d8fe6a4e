"""Sampled pass@k on a tiny model: seeded completions, greedy equivalence, n >= k at params load."""

import copy

import pytest

from conftest import tiny_bpe  # noqa: F401  (conftest puts src first)
from tokstudy import generation, lm, paramfile, params, passk, problems, sandbox
from tokstudy.errors import ProblemError

PROBS = problems.humaneval_problems(3)


@pytest.fixture(scope="module")
def tiny():
    model, tok = lm.tiny_model([p.prompt + p.reference for p in problems.humaneval_problems(20)], vocab_size=300,
                               seed=1)
    return model.eval(), tok


def test_fixed_seed_fixed_completions_and_seeds_differ(tiny):
    model, tok = tiny
    kw = dict(temperature=1.0, top_p=0.95, stop=problems.HUMANEVAL_STOP, batch_size=3)
    a = generation.sample(model, tok, PROBS[0].prompt, 5, 12, seed=7, **kw)
    b = generation.sample(model, tok, PROBS[0].prompt, 5, 12, seed=7, **kw)
    c = generation.sample(model, tok, PROBS[0].prompt, 5, 12, seed=8, **kw)
    assert a == b and len(a) == 5
    assert a != c  # a random 300-token model at T=1 does not repeat 5 x 12 tokens under another seed
    assert len({t for t, _ in a}) > 1  # the n samples of one prompt differ from each other


def test_sampling_leaves_the_global_rng_alone(tiny):
    import torch

    model, tok = tiny
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    generation.sample(model, tok, "def f():\n", 2, 4, temperature=1.0, top_p=1.0, seed=3)
    assert torch.equal(torch.rand(3), want)


def test_problem_seed_depends_on_task_id_not_order():
    assert passk.problem_seed(5, "HumanEval/0") == passk.problem_seed(5, "HumanEval/0")
    assert passk.problem_seed(5, "HumanEval/0") != passk.problem_seed(5, "HumanEval/1")
    assert passk.problem_seed(6, "HumanEval/0") == passk.problem_seed(5, "HumanEval/0") + 1


def test_n1_temperature0_equals_greedy(tiny):
    """The stage's greedy path (n 1, T 0) gives exactly generate()'s completions, judged the same way."""
    model, tok = tiny
    greedy = generation.generate(model, tok, [p.prompt for p in PROBS], 16, stop=problems.HUMANEVAL_STOP,
                                 batch_size=1)
    res = passk.solve(model, tok, PROBS, max_new_tokens=16, batch_size=2, judge=passk.Judge(backend="guard"))
    assert res.completions == [t for t, _ in greedy]
    with pytest.raises(ValueError, match="temperature 0 is greedy"):
        generation.sample(model, tok, "x", 1, 4, temperature=0.0, top_p=1.0, seed=0)


def test_solve_sampled_counts_and_estimates(tiny, monkeypatch):
    """Judging is replaced by a rule (a sample passes iff it has an even length): pass@k follows by hand."""
    model, tok = tiny

    def fake_judge_all(tasks, completions, limits, backend, workers):
        return [sandbox.Verdict("passed" if len(c) % 2 == 0 else "failed", "", 0.0, backend) for c in completions]

    monkeypatch.setattr(sandbox, "judge_all", fake_judge_all)
    res = passk.solve_sampled(model, tok, PROBS, n=4, ks=[1, 2], temperature=1.0, top_p=0.9, seed=11,
                              max_new_tokens=8, batch_size=4, judge=passk.Judge(backend="guard"))
    want_c = [sum(len(t) % 2 == 0 for t in s) for s in res.samples]
    assert res.correct == want_c and all(len(s) == 4 for s in res.samples)
    assert res.pass_at[1] == pytest.approx(sum(c / 4 for c in want_c) / 3)
    assert res.pass_at[2] == pytest.approx(sum(passk.pass_at_k(4, c, 2) for c in want_c) / 3)
    again = passk.solve_sampled(model, tok, PROBS, n=4, ks=[1, 2], temperature=1.0, top_p=0.9, seed=11,
                                max_new_tokens=8, batch_size=4, judge=passk.Judge(backend="guard"))
    assert again.samples == res.samples
    rows = passk.sampled_rows(res, extra={"model": "t"})
    assert [r["metric"] for r in rows] == ["humaneval_pass@1", "humaneval_pass@2"] and rows[0]["samples"] == 4
    with pytest.raises(ProblemError, match="k <= n"):
        passk.solve_sampled(model, tok, PROBS, n=2, ks=[1, 10], temperature=1.0, top_p=0.9, seed=0, max_new_tokens=8,
                            batch_size=1)


def _with(raw, **humaneval):
    raw = copy.deepcopy(raw)
    raw["evaluate"]["humaneval"].update(humaneval)
    return raw


@pytest.mark.parametrize("change, match", [
    (dict(n=5, k=[1, 10], temperature=0.6), "must be <= n"),
    (dict(n=4, k=[1], temperature=0.0), "temperature 0 is greedy"),
    (dict(top_p=1.5), "top_p"),
])
def test_params_validate_n_k_and_temperature(tmp_path, change, match):
    import yaml

    raw = paramfile.read_yaml(params.paths.PARAMS_FILE)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(_with(raw, **change)))
    with pytest.raises(params.ParamsError, match=match):
        params.load("cpu", f)
