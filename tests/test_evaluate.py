"""The evaluation modules: bpb (bits per byte), generation, problems (pass@k, MBPP), speed, lm.

The evaluate step (stages.evaluation, the CLI verb, notebook 06): tests/test_stages_evaluation.py."""

import dataclasses
import json
import math
import os
import shutil

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from conftest import tiny_bpe
from tokstudy import bpb, generation, lm, metrics, params, passk, problems, speed

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.geteuid() != 0,
    reason="bubblewrap (bwrap) is not installed and we are not root to install it: apt-get install bubblewrap",
)
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>"]
CODE = "def add(a, b):\n    return a + b\n\nclass Point:\n    x: int = 0\n    y: int = 0\n"
ENGLISH = "The quick brown fox jumps over the lazy dog. Café naïve façade — “quoted” text. "
TEXTS = [CODE * 3, ENGLISH * 3, "for i in range(10):\n    print(i * i)\n" * 4]


@pytest.fixture(scope="module")
def tok():
    bpe = tiny_bpe(TEXTS, 320, SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=SPECIALS[0], eos_token=SPECIALS[1],
                                   pad_token=SPECIALS[2])


def _llama(tok, seed=0, tie=True):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=tie)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def model(tok):
    return _llama(tok)


@pytest.fixture(scope="module")
def uniform(tok):
    """Zero output projection: logits are all 0, so every token costs exactly ln V nats."""
    m = _llama(tok, tie=False)
    with torch.no_grad():
        m.lm_head.weight.zero_()
    return m


# --------------------------------------------------------------------------- bits per byte


def test_uniform_model_gives_log2_v_tokens_over_bytes(tok, uniform):
    v = uniform.config.vocab_size
    n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    n_bytes = sum(len(t.encode()) for t in TEXTS)
    r = bpb.bits_per_byte(uniform, tok, TEXTS, seq_len=16, batch_size=3)
    assert (r.n_tokens, r.n_bytes, r.n_texts) == (n_tokens, n_bytes, 3)  # every text token predicted once
    assert r.value == pytest.approx(math.log2(v) * n_tokens / n_bytes, rel=1e-6)  # fp32 loss


def test_matches_the_models_own_loss_on_one_window(tok, model):
    text = TEXTS[0]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    inp = torch.tensor([[tok.bos_token_id, *ids]])
    with torch.no_grad():
        mean_nats = model(input_ids=inp, labels=inp).loss.item()  # mean over the len(ids) predictions
    r = bpb.bits_per_byte(model, tok, [text], seq_len=len(ids) + 1, batch_size=1)
    assert r.n_tokens == len(ids)
    assert r.value == pytest.approx(mean_nats * len(ids) / len(text.encode()) / math.log(2), rel=1e-5)


def test_invariant_to_batch_size_and_order(tok, model):
    a = bpb.bits_per_byte(model, tok, TEXTS, seq_len=24, batch_size=1)
    b = bpb.bits_per_byte(model, tok, TEXTS, seq_len=24, batch_size=5)
    c = bpb.bits_per_byte(model, tok, TEXTS[::-1], seq_len=24, batch_size=2)
    assert a.n_tokens == b.n_tokens == c.n_tokens
    assert b.value == pytest.approx(a.value, rel=1e-5) and c.value == pytest.approx(a.value, rel=1e-5)


def test_context_overlap_scores_each_token_once_and_changes_the_value(tok, model):
    plain = bpb.bits_per_byte(model, tok, TEXTS, seq_len=12, batch_size=4)
    overlap = bpb.bits_per_byte(model, tok, TEXTS, seq_len=12, batch_size=4, context=6)
    assert overlap.n_tokens == plain.n_tokens and overlap.n_bytes == plain.n_bytes
    assert overlap.value != pytest.approx(plain.value, rel=1e-6)
    with pytest.raises(bpb.BpbError, match="context"):
        bpb.bits_per_byte(model, tok, TEXTS, seq_len=4, context=3)


def test_special_tokens_are_neither_predicted_nor_counted(tok, uniform):
    text = "x = 1\n<|end_of_text|>y = 2\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.eos_token_id in ids
    r = bpb.bits_per_byte(uniform, tok, [text], seq_len=64)
    assert r.n_tokens == len(ids) - 1
    assert r.n_bytes == len(text.encode()) - len("<|end_of_text|>")
    assert r.value == pytest.approx(math.log2(uniform.config.vocab_size) * r.n_tokens / r.n_bytes)


def test_bpb_rows_per_dataset_domain_and_average(tok, uniform):
    datasets = {"python": ("code", [TEXTS[0]]), "shell": ("code", [TEXTS[2]]), "prose": ("english", [TEXTS[1]])}
    rows = bpb.bpb_rows(uniform, tok, datasets, seq_len=32, batch_size=2, extra={"model": "u"})
    by = {r["dataset"]: r for r in rows}
    assert set(by) == {"python", "shell", "prose", "mean:code", "mean:english", "average"}
    assert all(r["metric"] == "bits_per_byte" and r["model"] == "u" for r in rows)
    assert by["mean:code"]["value"] == pytest.approx((by["python"]["value"] + by["shell"]["value"]) / 2)
    assert by["average"]["value"] == pytest.approx((by["mean:code"]["value"] + by["prose"]["value"]) / 2)
    with pytest.raises(bpb.BpbError, match="corpus"):
        bpb.bpb_rows(uniform, tok, {})


def test_limit_texts_counts_docs_and_bytes():
    texts = ["aa", "", "bbb", "cccc"]
    assert metrics.limit_texts(texts, max_docs=2) == ["aa", "bbb"]
    assert metrics.limit_texts(texts, max_bytes=5) == ["aa", "bbb"]
    assert metrics.limit_texts(texts, max_bytes=1) == ["aa"]  # the first text is always kept


# --------------------------------------------------------------------------- generation


def test_truncate_at_stop_takes_the_earliest():
    text = "    return 1\n# tail\ndef g():\n"
    assert generation.truncate_at_stop(text, problems.HUMANEVAL_STOP) == "    return 1"
    assert generation.truncate_at_stop("    return 1\n", problems.HUMANEVAL_STOP) == "    return 1\n"


def test_stop_criteria_match_decoded_text_across_token_boundaries(tok):
    prompt = [tok.bos_token_id, *tok("def f():\n", add_special_tokens=False)["input_ids"]]
    gen = tok("    return 1\ndef g(): pass", add_special_tokens=False)["input_ids"]
    assert not any("\ndef " in tok.decode([t]) for t in gen)  # the stop string spans several tokens
    crit = generation.stop_criteria(tok, len(prompt), ["\ndef "])
    fired = [bool(crit(torch.tensor([prompt + gen[:n]]), None)[0]) for n in range(len(gen) + 1)]
    expected = ["\ndef " in tok.decode(gen[:n]) for n in range(len(gen) + 1)]
    assert fired == expected and expected[-1] and not expected[0]


def test_generate_is_greedy_and_batch_independent(tok, model):
    prompts = ["def add(a, b):\n", "The quick brown fox", "for i in"]
    one = generation.generate(model, tok, prompts, 12, batch_size=1)
    three = generation.generate(model, tok, prompts, 12, batch_size=3)
    assert one == generation.generate(model, tok, prompts, 12, batch_size=1)
    assert one == three
    assert all(isinstance(t, str) and 0 < n <= 12 for t, n in one)


def test_generation_speed_counts_exactly_max_new_tokens(tok, model):
    s = speed.generation_speed(model, tok, ["def add(a, b):\n", "class P:\n"], max_new_tokens=8, warmup=1)
    assert s.n_tokens == 16 and s.n_bytes > 0 and s.seconds > 0
    assert s.bytes_per_s / s.tokens_per_s == pytest.approx(s.n_bytes / s.n_tokens)


# --------------------------------------------------------------------------- pass@k


def test_pass_at_k_estimator():
    assert passk.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert passk.pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 0.7
    assert passk.pass_at_k(200, 0, 100) == 0.0
    assert passk.pass_at_k(10, 6, 5) == 1.0  # fewer than k wrong samples: some draw of k always passes
    assert passk.pass_at_k(200, 37, 100) == pytest.approx(1 - math.comb(163, 100) / math.comb(200, 100))
    assert passk.mean_pass_at_k([(2, 1), (2, 2)], 1) == pytest.approx(0.75)
    with pytest.raises(problems.ProblemError):
        passk.pass_at_k(3, 4, 1)


# --------------------------------------------------------------------------- sandbox


@needs_bwrap
def test_wrong_completion_fails():
    p = problems.humaneval_problems(1)[0]
    res = passk.check([p, p], ["    return None\n", p.reference])
    assert [r.status for r in res.results] == ["failed", "passed"] and res.pass_at_1 == 0.5
    assert res.backend == "bwrap" and [r.backend for r in res.results] == ["bwrap", "bwrap"]


# attacks on the sandbox, resource limits and the canonical 164: tests/test_sandbox.py


# --------------------------------------------------------------------------- MBPP

MBPP_ROWS = [
    {"task_id": 1, "text": "Write a function to return the square of a number.",
     "code": "def square(x):\n    return x * x", "test_list": ["assert square(3) == 9", "assert square(-2) == 4"]},
    {"task_id": 2, "text": "Write a function to reverse a string.",
     "code": "def rev(s):\n    return s[::-1]", "test_list": ["assert rev('abc') == 'cba'", "assert rev('') == ''"]},
    {"task_id": 3, "text": "Write a function to add a constant to each item of a list.",
     "code": "def add_k(xs):\n    return [x + K for x in xs]", "test_list": ["assert add_k([1, 2]) == [11, 12]"],
     "test_setup_code": "K = 10"},
]


@pytest.fixture
def mbpp_file(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    return path


@needs_bwrap
def test_mbpp_canonical_code_passes_and_prompt_has_the_first_test(mbpp_file):
    probs = problems.mbpp_problems(mbpp_file)
    assert [p.task_id for p in probs] == ["1", "2", "3"]
    assert probs[0].prompt == '"""\nWrite a function to return the square of a number.\nassert square(3) == 9\n"""\n'
    res = passk.check(probs, [p.reference for p in probs])
    assert res.pass_at_1 == 1.0
    assert passk.check(probs[2:], ["def add_k(xs):\n    return xs"]).pass_at_1 == 0.0
    assert passk.check(probs[:1], ["import math\ndef square(x):\n    return math.prod([x, x])"]).pass_at_1 == 1.0


def test_mbpp_errors_name_the_fix(tmp_path, mbpp_file):
    with pytest.raises(problems.ProblemError, match=r"absent.jsonl.*--mbpp PATH"):
        problems.mbpp_problems(tmp_path / "absent.jsonl")
    with pytest.raises(problems.ProblemError, match="--mbpp PATH"):
        problems.mbpp_problems(None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(mbpp_file.read_text() + "{not json\n")
    with pytest.raises(problems.ProblemError, match=r"bad.jsonl:4"):
        problems.mbpp_problems(bad)
    bad.write_text(json.dumps({"task_id": 9, "text": "t", "code": "c"}) + "\n")
    with pytest.raises(problems.ProblemError, match=r":1: missing field\(s\) \['test_list'\]"):
        problems.mbpp_problems(bad)


# --------------------------------------------------------------------------- speed


def _bpe(vocab_size):
    bpe = tiny_bpe(TEXTS, vocab_size, SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=SPECIALS[0], eos_token=SPECIALS[1],
                                   pad_token=SPECIALS[2])


def test_random_model_speeds_times_one_shape_per_vocab():
    size = dataclasses.replace(params.load("smoke").train("pretrain").size, name="t", n_layers=1, d_model=16,
                               n_heads=2, d_ff=32)
    toks = {"v1": _bpe(270), "v2": _bpe(300)}
    assert len(toks["v1"]) < len(toks["v2"])
    out = speed.random_model_speeds(toks, size, ["def f(x):\n"], 4, rounds=2, device="cpu")
    assert [r["tokenizer"] for r in out] == ["v1", "v2"]
    assert [r["vocab_size"] for r in out] == [len(toks["v1"]), len(toks["v2"])]
    assert [r["model_vocab_size"] for r in out] == [320, 320]  # padded to a multiple of 64, as build_model does
    assert all(r["tokens_per_s"] > 0 and r["tokens"] == 4 and r["source"] == "random-weights" for r in out)


def test_finetuned_speeds_keeps_the_fastest_model_per_tokenizer():
    rows = [
        {"kind": "evaluate", "metric": "gen_tokens_per_s", "value": 10.0, "tokenizer": "a", "vocab_size": 512,
         "model": "m1"},
        {"kind": "evaluate", "metric": "gen_tokens_per_s", "value": 12.0, "tokenizer": "a", "vocab_size": 512,
         "model": "m2"},
        {"kind": "evaluate", "metric": "gen_bytes_per_s", "value": 99.0, "tokenizer": "a", "vocab_size": 512,
         "model": "m2"},
        {"kind": "evaluate", "metric": "gen_tokens_per_s", "value": 8.0, "tokenizer": "b", "vocab_size": 768,
         "model": "m3"},
        {"kind": "costs", "metric": "gen_tokens_per_s", "value": 1.0, "tokenizer": "c", "vocab_size": 64, "model": "x"},
    ]
    out = speed.finetuned_speeds(rows)
    assert out == [
        {"tokenizer": "a", "vocab_size": 512, "tokens_per_s": 12.0, "source": "fine-tuned", "model": "m2"},
        {"tokenizer": "b", "vocab_size": 768, "tokens_per_s": 8.0, "source": "fine-tuned", "model": "m3"},
    ]
    assert [r["tokenizer"] for r in speed.finetuned_speeds(rows, ["b"])] == ["b"]
    assert speed.finetuned_speeds([]) == []


def test_speed_rows_turn_tokens_per_s_into_code_bytes_per_s():
    measured = speed.Speed(bytes_per_s=75.0, tokens_per_s=50.0, n_bytes=150, n_tokens=100, seconds=2.0)
    heldout = [{"domain": "code", "tokens": 300, "bytes": 900}, {"domain": "code", "tokens": 100, "bytes": 300},
               {"domain": "english", "tokens": 50, "bytes": 500}, {"domain": "code", "dataset": "mean:code"}]
    rows = {r["metric"]: r for r in speed.speed_rows(measured, {"model": "m"}, heldout)}
    assert rows["gen_tokens_per_s"]["value"] == pytest.approx(50.0)
    # 3 bytes/token on held-out code (English ignored): 50 tokens/s -> 150 code bytes/s
    assert rows["gen_text_bytes_per_s"]["value"] == pytest.approx(150.0)
    assert rows["gen_text_bytes_per_s"]["bytes_per_token"] == pytest.approx(3.0)
    assert "gen_text_bytes_per_s" not in {r["metric"] for r in speed.speed_rows(measured)}


# --------------------------------------------------------------------------- lm


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_names_the_flag():
    with pytest.raises(lm.EvaluateError, match="--device cpu"):
        lm.pick_device("cuda")
    assert lm.pick_device(None) == (torch.device("cpu"), torch.float32)


def test_errors_are_user_errors_of_one_family():
    from tokstudy.errors import TokstudyError

    for cls in (bpb.BpbError, problems.ProblemError, speed.SpeedError):
        assert issubclass(cls, lm.EvaluateError) and issubclass(cls, TokstudyError)
