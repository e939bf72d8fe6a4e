"""Greedy and sampled generation with a causal LM: completions cut at stop strings matched on decoded text.

Prompts start with BOS and are left-padded when batched.  :func:`sample` draws
``n`` completions of one prompt at a temperature and top-p, seeded (the same
seed gives the same texts).  Stop strings are
matched on the decoded text of the new tokens, never on token ids, so a stop
string that spans several tokens still stops a row (and the text is cut there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from tokstudy.lm import bos_id, eos_id, pad_id


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def encode_prompt(tokenizer, prompt: str, add_bos: bool = True) -> list[int]:
    """Token ids of ``prompt`` without added specials, after BOS when ``add_bos``."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return [bos_id(tokenizer), *ids] if add_bos else list(ids)


def stop_criteria(tokenizer, prompt_len: int, stop: Sequence[str]):
    """A StoppingCriteria that decodes each row's new tokens and stops it once a stop string appears."""
    import torch
    from transformers import StoppingCriteria

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)

    return StopOnText()


def generate_batch(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = (),
                   min_new_tokens: int | None = None, sampling: dict | None = None) -> list[tuple[str, int]]:
    """One left-padded batch of completions as ``(text cut at stop, n_new_tokens)``; greedy unless ``sampling``.

    ``sampling``: ``{"temperature": T, "top_p": p}`` samples instead (top-k off), from torch's global RNG.
    """
    import torch

    device = next(model.parameters()).device
    pad = pad_id(tokenizer)
    eos = eos_id(tokenizer)
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    width = max(map(len, encoded))
    inp = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
    att = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, eos_token_id=eos)
    if sampling:
        kwargs.update(do_sample=True, top_k=0, **sampling)
    if stop:
        kwargs["stopping_criteria"] = [stop_criteria(tokenizer, width, stop)]
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
    """Greedy completions of ``prompts`` as ``(text, n_new_tokens)``, each cut at its first stop string."""
    out: list[tuple[str, int]] = []
    for b in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
        out += generate_batch(model, tokenizer, prompts[b : b + batch_size], max_new_tokens, stop, min_new_tokens)
    return out


def sample(
    model,
    tokenizer,
    prompt: str,
    n: int,
    max_new_tokens: int,
    *,
    temperature: float,
    top_p: float,
    seed: int,
    stop: Sequence[str] = (),
    batch_size: int = 1,
) -> list[tuple[str, int]]:
    """``n`` sampled completions of ``prompt`` (batches of ``batch_size`` copies), seeded by ``seed``.

    The global RNG is forked, seeded and restored, so the same ``(seed, batch_size)`` gives the same
    completions and nothing outside is disturbed.
    """
    import torch

    if temperature <= 0 or not 0 < top_p <= 1:
        raise ValueError(f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}; "
                         "temperature 0 is greedy: use generate()")
    device = next(model.parameters()).device
    out: list[tuple[str, int]] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for b in range(0, n, batch_size):
            out += generate_batch(model, tokenizer, [prompt] * min(batch_size, n - b), max_new_tokens, stop,
                                  sampling={"temperature": temperature, "top_p": top_p})
    return out
