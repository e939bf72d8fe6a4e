"""Canonical-solution bits per byte (tokstudy.bpb.solution_bits_per_byte) and its bootstrap CI."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from conftest import tiny_bpe
from tokstudy import bootstrap, bpb, problems
from tokstudy.errors import StatsError

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>"]
TEXTS = ["def add(a, b):\n    return a + b\n" * 4, "for i in range(10):\n    print(i * i)\n" * 4]
PROBS = [
    problems.Problem("t/0", 'def add(a, b):\n    """Sum."""\n', "", "    return a + b\n"),
    problems.Problem("t/1", "def sq(i):\n", "", "    print(i * i)\n    return i * i\n"),
    problems.Problem("t/2", "x = 1\n", "", "for i in range(10):\n    print(i)\n"),
]


@pytest.fixture(scope="module")
def tok():
    bpe = tiny_bpe(TEXTS, 300, SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=SPECIALS[0], eos_token=SPECIALS[1],
                                   pad_token=SPECIALS[2])


def _llama(tok, zero_head=False):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                      bos_token_id=0, eos_token_id=1, pad_token_id=2, tie_word_embeddings=False)
    m = LlamaForCausalLM(cfg).eval()
    if zero_head:  # all logits 0: every token costs ln V nats
        with torch.no_grad():
            m.lm_head.weight.zero_()
    return m


def test_uniform_model_gives_log2_v_times_solution_tokens_over_bytes(tok):
    m = _llama(tok, zero_head=True)
    r = bpb.solution_bits_per_byte(m, tok, PROBS, seq_len=8, batch_size=2, n_boot=200, seed=3)
    want = [math.log2(len(tok)) * len(tok(p.reference, add_special_tokens=False)["input_ids"])
            / len(p.reference.encode()) for p in PROBS]
    assert r.per_problem == pytest.approx(want, rel=1e-6)
    assert r.mean == pytest.approx(sum(want) / len(want), rel=1e-6)
    assert r.n_bytes == sum(len(p.reference.encode()) for p in PROBS)


def test_prompt_is_context_only_and_matches_the_models_own_loss(tok):
    m, p = _llama(tok), PROBS[0]
    pre = tok(p.prompt, add_special_tokens=False)["input_ids"]
    sol = tok(p.reference, add_special_tokens=False)["input_ids"]
    inp = torch.tensor([[0, *pre, *sol]])
    labels = inp.clone()
    labels[0, : 1 + len(pre)] = -100  # score only the solution's tokens
    with torch.no_grad():
        mean_nats = m(input_ids=inp, labels=labels).loss.item()
    r = bpb.solution_bits_per_byte(m, tok, [p], seq_len=len(pre) + len(sol) + 1, n_boot=10)
    assert r.per_problem[0] == pytest.approx(mean_nats * len(sol) / len(p.reference.encode()) / math.log(2), rel=1e-5)


def test_ci_contains_the_mean_and_is_seeded(tok):
    m = _llama(tok)
    a = bpb.solution_bits_per_byte(m, tok, PROBS, seq_len=16, n_boot=500, seed=7)
    b = bpb.solution_bits_per_byte(m, tok, PROBS, seq_len=16, n_boot=500, seed=7)
    assert a.ci_low <= a.mean <= a.ci_high and a.ci_low < a.ci_high
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert min(a.per_problem) <= a.ci_low and a.ci_high <= max(a.per_problem)


def test_bootstrap_ci_hand_checked_and_bad_settings():
    assert bootstrap.bootstrap_ci([2.0, 2.0, 2.0], 50, 0.95, 0) == (2.0, 2.0)
    lo, hi = bootstrap.bootstrap_ci([0.0, 1.0], 4000, 0.9, 1)
    assert (lo, hi) == (0.0, 1.0)  # resampled means of two values: 0, 0.5, 1 (each end has mass 1/4)
    with pytest.raises(StatsError, match="evaluate.solution_bpb"):
        bootstrap.bootstrap_ci([1.0], 10, 1.5, 0)
    with pytest.raises(StatsError, match="no values"):
        bootstrap.bootstrap_ci([], 10, 0.9, 0)


def test_solution_rows_carry_the_interval(tok):
    r = bpb.SolutionBpb(1.5, 1.2, 1.8, (1.0, 2.0), 40, 12)
    (row,) = bpb.solution_rows(r, "humaneval", 0.95, {"model": "m", "tokens": 99})
    assert (row["metric"], row["value"], row["ci_low"], row["ci_high"], row["problems"]) == (
        "solution_bits_per_byte", 1.5, 1.2, 1.8, 2)
    assert row["tokens"] == 99  # the run's label is not overwritten
