"""Generation speed: bytes and tokens generated per second, and the speeds of the cost model's shapes.

* :func:`generation_speed`: greedy, batch 1, fixed prompts, a warm-up excluded.
  Better compression means more bytes per decoding step, hence faster text.
* :func:`random_model_speeds`: tokens/s of random-weight models of one shape, one
  per tokenizer (they differ only in embedding and head rows) — the input of the
  cost model's speed check (``costs.speed_check_rows``);
  :func:`finetuned_speeds` the same dicts from evaluate rows of trained models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from tokstudy.errors import SpeedError
from tokstudy.generation import generate_batch
from tokstudy.lm import pick_device, sync
from tokstudy.problems import humaneval_problems

log = logging.getLogger(__name__)


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


def generation_speed(model, tokenizer, prompts: Sequence[str] | None = None, max_new_tokens: int = 128, *,
                     warmup: int = 1) -> Speed:
    """Bytes and tokens of text generated per second (greedy, batch 1, exactly ``max_new_tokens`` each).

    EOS is suppressed (``min_new_tokens``) so every prompt costs the same number of
    decoding steps; bytes are the UTF-8 bytes of the decoded new tokens, so a
    tokenizer that packs more text per token yields more bytes/s.  The first
    ``warmup`` prompts are generated once untimed.
    """
    prompts = list(prompts) if prompts is not None else speed_prompts()
    if not prompts:
        raise SpeedError("generation_speed needs at least one prompt (evaluate.speed.prompts in params.yaml)")
    device = next(model.parameters()).device
    for p in prompts[:warmup]:
        generate_batch(model, tokenizer, [p], max_new_tokens, min_new_tokens=max_new_tokens)
    n_bytes = n_tokens = 0
    seconds = 0.0
    for p in tqdm(prompts, desc="speed", leave=False):
        sync(device)
        t0 = time.perf_counter()
        [(text, n)] = generate_batch(model, tokenizer, [p], max_new_tokens, min_new_tokens=max_new_tokens)
        sync(device)
        seconds += time.perf_counter() - t0
        n_bytes += len(text.encode("utf-8"))
        n_tokens += n
    return Speed(n_bytes / seconds, n_tokens / seconds, n_bytes, n_tokens, seconds)


def speed_rows(speed: Speed, extra: Mapping[str, Any] | None = None,
               heldout: Sequence[Mapping[str, Any]] | None = None) -> list[dict]:
    """Generation speed rows: bytes/s and tokens/s of what the model generated, and — given the
    per-dataset ``bpb.bpb_rows`` of the same model (``heldout``) — ``gen_text_bytes_per_s``:
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


def random_model_speeds(tokenizers: Mapping[str, Any], size, prompts: Sequence[str], max_new_tokens: int, *,
                        rounds: int = 3, warmup: int = 1, device: str | None = None, seed: int = 0) -> list[dict]:
    """Greedy generation tokens/s of random-weight models of one shape, one per tokenizer.

    ``tokenizers``: ``{name: tokenizer}`` with a HF tokenizer, a ``TokenizerHandle`` or a
    ``tokenizer.json`` path.  Each model is ``model.build_model(size, len(tokenizer))``, so
    models differ only in their embedding and head rows.  Every model generates the same
    ``prompts`` for exactly ``max_new_tokens`` with :func:`generation_speed`; the first round
    also runs ``warmup`` untimed prompts per model.  Rounds go round-robin over the models so
    background load hits them alike, and each keeps its best (fastest) round.

    Returns one dict per tokenizer: ``tokenizer``, ``vocab_size`` (the tokenizer's),
    ``model_vocab_size`` (embedding rows after padding), ``tokens_per_s``,
    ``source="random-weights"``, ``size``, ``device``, ``rounds``, ``round_tokens_per_s`` (every round's
    tokens/s, in order: the spread the best-of hides) — the input of
    ``costs.speed_check_rows``.  Bytes/s of random text are meaningless; the check
    multiplies tokens/s by corpus bytes/token.
    """
    from tokstudy import model as model_mod

    if not tokenizers:
        raise SpeedError("random_model_speeds needs at least one tokenizer (costs.sweep in params.yaml)")
    if rounds < 1:
        raise SpeedError(f"random_model_speeds: rounds must be >= 1, got {rounds} (costs.speed_check_rounds)")
    dev, dtype = pick_device(device)
    models = []
    for name, given in tokenizers.items():
        tok = model_mod.hf_tokenizer(given)
        model = model_mod.build_model(size, len(tok), seed=seed).to(device=dev, dtype=dtype).eval()
        models.append((name, tok, model))
    best: dict[str, Speed] = {}
    per_round: dict[str, list[float]] = {name: [] for name, _, _ in models}
    for r in range(rounds):
        for name, tok, model in models:
            s = generation_speed(model, tok, prompts, max_new_tokens, warmup=warmup if r == 0 else 0)
            per_round[name].append(s.tokens_per_s)
            if name not in best or s.tokens_per_s > best[name].tokens_per_s:
                best[name] = s
    out = []
    for name, tok, model in models:
        out.append({"tokenizer": name, "vocab_size": len(tok),
                    "model_vocab_size": model.get_input_embeddings().num_embeddings,
                    "tokens_per_s": best[name].tokens_per_s, "tokens": best[name].n_tokens,
                    "seconds": best[name].seconds, "source": "random-weights",
                    "size": getattr(size, "name", str(size)), "device": dev.type, "rounds": rounds,
                    "round_tokens_per_s": per_round[name]})
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
