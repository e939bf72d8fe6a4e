"""Bits per byte of held-out text: the tokenizer-invariant loss of a causal LM.

Models with different tokenizers are compared only with numbers that do not
depend on how the text was cut into tokens (``docs/paper.md``, CONTRIBUTING).
:func:`bits_per_byte` is the summed next-token loss (nats) of every text token,
divided by the UTF-8 bytes of the text those tokens cover, divided by ``ln 2``.
Each text is encoded **without** special tokens and cut into windows of
``seq_len`` positions; every window starts with the BOS token
(``<|begin_of_text|>``), so the *first text token of every window is predicted
too* (from BOS, plus ``context`` overlap tokens of the previous window when
``context > 0``; overlap tokens are fed but not scored again).  BOS, padding and
any special token that occurs literally in a text are never scored, and the
bytes of a special token's text span are not counted.  A dataset's value is a
ratio of sums over its documents; a domain's value (``dataset="mean:<domain>"``)
is the unweighted mean over its datasets, as in :mod:`tokstudy.metrics`.

:func:`solution_bits_per_byte` scores code problems the same way: the bits per
byte of each problem's canonical solution *given its prompt* (prompt and
solution encoded separately, as generation continues a prompt), averaged over
problems with a seeded percentile-bootstrap confidence interval
(``docs/paper.md#canonical-solution-bpb``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from tokstudy.bootstrap import bootstrap_ci
from tokstudy.errors import BpbError
from tokstudy.lm import bos_id, pad_id

log = logging.getLogger(__name__)

LN2 = math.log(2.0)


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
    for (start, end), keep in zip(enc["offset_mapping"], scored, strict=True):
        if not keep:
            n_bytes -= len(text[start:end].encode("utf-8"))
    return ids, scored, n_bytes


def _windows(ids: list[int], scored: list[bool], bos: int, seq_len: int, context: int):
    """Yield ``(input_ids, target_mask)``: ``[BOS] + tokens``; the mask marks positions whose next token is scored."""
    step = seq_len - 1 - context
    if step < 1:
        raise BpbError(f"evaluate.bpb.seq_len ({seq_len}) must exceed evaluate.bpb.context ({context}) + 1 "
                       "in params.yaml")
    for start in range(0, len(ids), step):
        lo = max(0, start - context)
        chunk = ids[lo : start + step]
        inp = [bos, *chunk]
        # logits at position p predict inp[p + 1] = chunk[p]; score only new, non-special tokens
        mask = [(lo + p >= start) and scored[lo + p] for p in range(len(chunk))]
        yield inp, mask


def _batch_nats(model, batch, pad: int, device) -> tuple[float, int]:
    """Summed loss (nats) and count of the scored targets of one batch of windows (right-padded)."""
    import torch
    import torch.nn.functional as F

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
    return float(loss[tgt_mask].double().sum()), int(tgt_mask.sum())


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
        raise BpbError("bits_per_byte needs at least one non-empty text")
    windows.sort(key=lambda w: len(w[0]), reverse=True)  # less padding; the sum does not depend on order
    device = next(model.parameters()).device
    nats = 0.0
    n_tokens = 0
    with torch.inference_mode():
        for b in tqdm(range(0, len(windows), batch_size), desc=desc or "bits/byte", leave=False):
            batch_nats, batch_tokens = _batch_nats(model, windows[b : b + batch_size], pad, device)
            nats += batch_nats
            n_tokens += batch_tokens
    return BitsPerByte(nats / n_bytes / LN2, nats, n_bytes, n_tokens, n_texts)


@dataclass(frozen=True)
class SolutionBpb:
    """Mean over problems of each canonical solution's bits per byte, with a bootstrap CI over problems."""

    mean: float
    ci_low: float
    ci_high: float
    per_problem: tuple[float, ...]
    n_bytes: int  # solution bytes summed over problems
    n_tokens: int


def _solution_windows(prefix: list[int], sol: list[int], scored: list[bool], bos: int, seq_len: int):
    """Windows of ``[BOS] + prompt tail + solution chunk``; only the chunk's (scored) tokens are targets.

    Each chunk holds at most ``(seq_len - 1) // 2`` solution tokens, so every scored token sees at
    least as many tokens of context before it (the prompt's tail first).
    """
    step = max(1, (seq_len - 1) // 2)
    ids, start0 = prefix + sol, len(prefix)
    for s in range(start0, len(ids), step):
        end = min(s + step, len(ids))
        lo = max(0, end - (seq_len - 1))
        yield [bos, *ids[lo:end]], [lo + p >= s and scored[lo + p - start0] for p in range(end - lo)]


def solution_bits_per_byte(
    model, tokenizer, problems: Sequence, seq_len: int = 512, batch_size: int = 8, *,
    n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> SolutionBpb:
    """Bits per byte of each problem's ``reference`` given its ``prompt``, averaged over problems.

    Per problem: Σ NLL (nats) of the solution's tokens / UTF-8 bytes of the solution / ln 2;
    the prompt (after BOS) is context only. The mean over problems gets a seeded bootstrap CI.
    """
    import torch

    if not problems:
        raise BpbError("solution_bits_per_byte needs at least one problem")
    bos, pad = bos_id(tokenizer), pad_id(tokenizer)
    device = next(model.parameters()).device
    values, total_bytes, total_tokens = [], 0, 0
    with torch.inference_mode():
        for p in tqdm(problems, desc="solution bits/byte", leave=False):
            prefix = tokenizer(p.prompt, add_special_tokens=False)["input_ids"]
            sol, scored, nb = _encode_scored(tokenizer, p.reference)
            if nb == 0:
                raise BpbError(f"problem {p.task_id}: empty canonical solution; it cannot be scored")
            windows = list(_solution_windows(list(prefix), sol, scored, bos, seq_len))
            nats = 0.0
            for b in range(0, len(windows), batch_size):
                batch_nats, batch_tokens = _batch_nats(model, windows[b : b + batch_size], pad, device)
                nats += batch_nats
                total_tokens += batch_tokens
            values.append(nats / nb / LN2)
            total_bytes += nb
    lo, hi = bootstrap_ci(values, n_boot, confidence, seed)
    return SolutionBpb(sum(values) / len(values), lo, hi, tuple(values), total_bytes, total_tokens)


def solution_rows(res: SolutionBpb, dataset: str, confidence: float, extra: Mapping[str, Any] | None = None,
                  ) -> list[dict]:
    """The result row of :func:`solution_bits_per_byte`: mean over problems and its CI bounds."""
    return [{**dict(extra or {}), "metric": "solution_bits_per_byte", "value": res.mean, "dataset": dataset,
             "domain": "code", "ci_low": res.ci_low, "ci_high": res.ci_high, "confidence": confidence,
             "problems": len(res.per_problem), "bytes": res.n_bytes}]


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
        raise BpbError("no datasets for bits per byte; the corpus test split is empty (rebuild it: dvc repro corpus)")
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
        rows.append({**common, "metric": "bits_per_byte", "value": value, "dataset": f"mean:{domain}",
                     "domain": domain})
    rows.append({**common, "metric": "bits_per_byte", "value": sum(means.values()) / len(means),
                 "dataset": "average", "domain": "all"})
    return rows
