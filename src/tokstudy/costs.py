"""Inference-cost model: what a tokenizer's compression buys at a given model shape.

The paper claims a better-compressing tokenizer improves "generation speed,
effective context size, memory usage" and that the inference- and
memory-optimal vocabulary sizes grow with model size, batch and sequence length
(docs/paper.md, "Cost model").  Its exact formulas are unknown; this module implements the
standard accounting below, all as pure functions of a :class:`ModelShape`.

Parameters (biases and norms ignored, as in Kaplan et al. 2020, Table 1):

* embedding ``V·d``; output head ``V·d`` unless tied (then 0 extra);
* per layer, attention ``d·(h·d_h) + 2·d·(h_kv·d_h) + (h·d_h)·d`` (Q, K, V, O;
  grouped-query attention when ``h_kv < h``) and MLP ``3·d·d_ff`` (gated /
  SwiGLU, Llama) or ``2·d·d_ff`` (plain GPT MLP);
* body = ``n_layers`` × (attention + MLP): Kaplan's non-embedding ``N``
  (``≈ 12·n_layers·d²`` for a plain MLP with ``d_ff = 4d``).

Forward FLOPs per token (Kaplan et al. 2020, "Scaling Laws for Neural Language
Models", Table 1, https://arxiv.org/abs/2001.08361)::

    C_fwd ≈ 2·N_body + 2·V·d (de-embedding / output head) + 2·n_layers·n_ctx·d_attn

(the embedding lookup is negligible).  KV cache (e.g. Pope et al. 2022,
"Efficiently Scaling Transformer Inference")::

    KV bytes per token = 2 (K and V) · n_layers · h_kv · d_h · dtype_bytes

A tokenizer enters only through its compression: bytes per token ``bpt`` (or
NSL, tokens relative to the base tokenizer, ``bpt_base/bpt``).  For a window of
``C`` tokens the effective context is ``C·bpt`` bytes; generating ``B`` bytes
takes ``B/bpt`` decoding steps; compute per byte is ``C_fwd/bpt``.

The compute- and memory-optimal vocabulary size built on this model is in
:mod:`tokstudy.optimum`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokstudy.errors import CostsError

log = logging.getLogger(__name__)

REGIMES = ("compute", "memory", "steps")


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer's shape.

    ``n_kv_heads=None`` means no grouped-query attention (``= n_heads``).
    ``d_ff=None`` means ``4·d_model`` for a plain MLP, and Llama's rule
    (``8/3·d`` rounded up to a multiple of 256) for a gated one.
    """

    n_layers: int
    d_model: int
    n_heads: int
    vocab_size: int = 32_000
    n_kv_heads: int | None = None
    d_ff: int | None = None
    mlp: str = "gated"  # gated (SwiGLU: 3 matrices) | plain (2 matrices)
    context: int = 2048
    tied: bool = False
    name: str = ""

    def __post_init__(self):
        for f in ("n_layers", "d_model", "n_heads", "vocab_size", "context"):
            if int(getattr(self, f)) <= 0:
                raise CostsError(f"ModelShape.{f} must be positive, got {getattr(self, f)}")
        if self.d_model % self.n_heads:
            raise CostsError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.mlp not in ("gated", "plain"):
            raise CostsError(f"ModelShape.mlp must be 'gated' or 'plain', got {self.mlp!r}")
        kv = self.n_kv_heads if self.n_kv_heads is not None else self.n_heads
        if kv <= 0 or self.n_heads % kv:
            raise CostsError(f"n_kv_heads {kv} must divide n_heads {self.n_heads}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], name: str = "") -> ModelShape:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise CostsError(f"model shape {name!r}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**{"name": name, **spec})

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def ff(self) -> int:
        if self.d_ff is not None:
            return int(self.d_ff)
        if self.mlp == "plain":
            return 4 * self.d_model
        return 256 * math.ceil(int(8 * self.d_model / 3) / 256)

    def with_vocab(self, vocab_size: int) -> ModelShape:
        return dataclasses.replace(self, vocab_size=int(vocab_size))


def shapes(spec: Mapping[str, Mapping[str, Any]]) -> dict[str, ModelShape]:
    """``{name: ModelShape}`` from the ``costs.shapes`` section of params.yaml."""
    if not spec:
        raise CostsError("no model shapes given; add costs.shapes to params.yaml")
    return {name: ModelShape.from_dict(s, name) for name, s in spec.items()}


def body_params(shape: ModelShape) -> int:
    """Non-embedding parameters (Kaplan's N): attention + MLP weights of every layer."""
    d, hd = shape.d_model, shape.head_dim
    attn = d * (shape.n_heads * hd) * 2 + 2 * d * (shape.kv_heads * hd)
    mlp = (3 if shape.mlp == "gated" else 2) * d * shape.ff
    return shape.n_layers * (attn + mlp)


def param_counts(shape: ModelShape) -> dict[str, int]:
    """``{"embedding": V·d, "head": V·d or 0 if tied, "body": N, "total": ...}``."""
    emb = shape.vocab_size * shape.d_model
    head = 0 if shape.tied else emb
    body = body_params(shape)
    return {"embedding": emb, "head": head, "body": body, "total": emb + head + body}


def flops_per_token(shape: ModelShape, ctx: float | None = None, include_attention: bool = True) -> float:
    """Forward FLOPs per token: ``2·N_body + 2·V·d + 2·n_layers·ctx·d_attn`` (Kaplan et al. 2020).

    ``ctx`` is the number of tokens attended (default ``shape.context``; pass
    half the window for the average over a generation that fills it).
    """
    d_attn = shape.n_heads * shape.head_dim
    ctx = shape.context if ctx is None else ctx
    attention = 2 * shape.n_layers * ctx * d_attn if include_attention else 0
    return 2 * body_params(shape) + 2 * shape.vocab_size * shape.d_model + attention


def kv_cache_bytes(shape: ModelShape, tokens: float, dtype_bytes: int = 2, batch: int = 1) -> float:
    """KV-cache size: ``2·n_layers·h_kv·d_h·dtype_bytes`` per token, × tokens × batch."""
    return 2 * shape.n_layers * shape.kv_heads * shape.head_dim * dtype_bytes * tokens * batch


def weights_bytes(shape: ModelShape, dtype_bytes: int = 2) -> int:
    return param_counts(shape)["total"] * dtype_bytes


# --------------------------------------------------------------------------- per tokenizer


def effective_context_bytes(context_tokens: float, bytes_per_token: float) -> float:
    """Bytes of text a window of ``context_tokens`` holds."""
    return context_tokens * bytes_per_token


def flops_per_byte(shape: ModelShape, bytes_per_token: float, ctx: float | None = None) -> float:
    """Forward FLOPs per byte of generated/processed text."""
    return flops_per_token(shape, ctx) / bytes_per_token


def kv_cache_bytes_per_doc(shape: ModelShape, doc_bytes: float, bytes_per_token: float, dtype_bytes: int = 2) -> float:
    """KV-cache size of one document of ``doc_bytes`` bytes (``doc_bytes/bpt`` tokens)."""
    return kv_cache_bytes(shape, doc_bytes / bytes_per_token, dtype_bytes)


def step_cost(
    shape: ModelShape, regime: str = "compute", ctx: float | None = None, dtype_bytes: int = 2, batch: int = 1
) -> float:
    """Relative cost of one decoding step.

    ``compute``: forward FLOPs per token; ``memory``: bytes read per step
    (weights once, plus the KV cache of ``batch`` sequences of ``ctx`` tokens),
    divided by ``batch``; ``steps``: 1 (fixed per-step latency, e.g. small
    models dominated by kernel launches).
    """
    if regime == "compute":
        return flops_per_token(shape, ctx)
    if regime == "memory":
        ctx = shape.context if ctx is None else ctx
        return (weights_bytes(shape, dtype_bytes) + kv_cache_bytes(shape, ctx, dtype_bytes, batch)) / batch
    if regime == "steps":
        return 1.0
    raise CostsError(f"regime must be one of {REGIMES}, got {regime!r}")


def predicted_speed_ratio(
    shape_a: ModelShape,
    bpt_a: float,
    shape_b: ModelShape,
    bpt_b: float,
    regime: str = "compute",
    ctx: float | None = None,
    dtype_bytes: int = 2,
    batch: int = 1,
) -> float:
    """Predicted generation speed (bytes/s) of A over B: ``(bpt_a/step_a) / (bpt_b/step_b)``.

    At equal per-step cost this is ``bpt_a/bpt_b`` (= 1/NSL against the base).
    """
    sa = step_cost(shape_a, regime, ctx, dtype_bytes, batch)
    sb = step_cost(shape_b, regime, ctx, dtype_bytes, batch)
    return (bpt_a / sa) / (bpt_b / sb)


def variant_costs(
    shape: ModelShape,
    bytes_per_token: float,
    *,
    context: int | None = None,
    doc_bytes: float = 10_000,
    dtype_bytes: int = 2,
) -> dict[str, float]:
    """Every per-tokenizer cost of ``shape`` (whose ``vocab_size`` is the tokenizer's)."""
    context = shape.context if context is None else context
    pc = param_counts(shape)
    return {
        "params_embedding": pc["embedding"],
        "params_head": pc["head"],
        "params_body": pc["body"],
        "params_total": pc["total"],
        "embedding_share": (pc["embedding"] + pc["head"]) / pc["total"],
        "weights_bytes": pc["total"] * dtype_bytes,
        "flops_per_token": flops_per_token(shape, context),
        "flops_per_byte": flops_per_byte(shape, bytes_per_token, context),
        "effective_context_bytes": effective_context_bytes(context, bytes_per_token),
        "kv_cache_bytes_per_token": kv_cache_bytes(shape, 1, dtype_bytes),
        "kv_cache_bytes_per_doc": kv_cache_bytes_per_doc(shape, doc_bytes, bytes_per_token, dtype_bytes),
    }


# --------------------------------------------------------------------------- tables for the costs notebook


def sweep_points(rows, names: Sequence[str], domain: str = "code"):
    """One record per sweep tokenizer from compression rows: V, NSL, bytes/token, base bytes/token.

    ``rows`` is the tidy results DataFrame (or a list of row dicts) holding the
    ``compression`` runs.  NSL and bytes/token are the ``mean:<domain>`` rows;
    ``base_bytes_per_token`` is the mean over the domain's datasets of
    ``bpt·nsl`` (the base tokenizer's bytes/token on the same documents).
    """
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    if "kind" in df.columns:
        df = df[df["kind"] == "compression"]
    out = []
    for name in names:
        d = df[df["tokenizer"] == name]
        if d.empty:
            raise CostsError(
                f"no compression rows for tokenizer {name!r}; run notebooks/02_tokenizer_metrics.ipynb for it"
            )
        mean = d[d["dataset"] == f"mean:{domain}"].set_index("metric")["value"]
        per = d[(d["domain"] == domain) & ~d["dataset"].astype(str).str.contains(":")]
        per = per.pivot_table(index="dataset", columns="metric", values="value")
        for m in ("nsl", "bytes_per_token"):
            if m not in mean:
                raise CostsError(f"compression rows of {name!r} lack mean:{domain} {m}")
        out.append(
            {
                "tokenizer": name,
                "vocab_size": int(d["vocab_size"].iloc[0]),
                "nsl": float(mean["nsl"]),
                "bytes_per_token": float(mean["bytes_per_token"]),
                "base_bytes_per_token": float((per["bytes_per_token"] * per["nsl"]).mean()),
                "domain": domain,
            }
        )
    return out


def cost_rows(
    points: Sequence[Mapping[str, Any]],
    model_shapes: Mapping[str, ModelShape],
    *,
    base_vocab_size: int = 32_000,
    doc_bytes: float = 10_000,
    dtype_bytes: int = 2,
    regime: str = "compute",
) -> list[dict]:
    """Tidy cost rows for every (model shape, sweep tokenizer) pair.

    Adds ``predicted_speed_ratio``: generation bytes/s of the tokenizer over the
    base tokenizer (``base_vocab_size``, ``base_bytes_per_token``) on the same
    body, and ``effective_context_ratio`` = bpt / base bpt (= 1/NSL per
    dataset: more text per window when > 1).
    """
    rows = []
    for model, shape in model_shapes.items():
        base_shape = shape.with_vocab(base_vocab_size)
        for p in points:
            s = shape.with_vocab(p["vocab_size"])
            common = {"model": model, "tokenizer": p["tokenizer"], "vocab_size": p["vocab_size"], "domain": p["domain"]}
            values = variant_costs(s, p["bytes_per_token"], doc_bytes=doc_bytes, dtype_bytes=dtype_bytes)
            values["effective_context_ratio"] = p["bytes_per_token"] / p["base_bytes_per_token"]
            values["predicted_speed_ratio"] = predicted_speed_ratio(
                s, p["bytes_per_token"], base_shape, p["base_bytes_per_token"], regime=regime, dtype_bytes=dtype_bytes
            )
            rows += [{**common, "metric": m, "value": v} for m, v in values.items()]
    return rows


# --------------------------------------------------------------------------- checking the model against measurement

SPEED_SOURCES = ("random-weights", "fine-tuned")


def shape_from_size(size: Any, vocab_size: int, context: int = 2048) -> ModelShape:
    """The :class:`ModelShape` of a ``train.sizes`` entry (:class:`tokstudy.params.ModelSize`) at ``vocab_size``.

    The vocab is rounded up to ``size.pad_vocab_to`` as ``model.build_model``
    does, so the shape has the embedding and head rows the model really has.
    Llama MLPs are gated (SwiGLU).
    """
    pad = max(1, int(getattr(size, "pad_vocab_to", 1)))
    return ModelShape(
        n_layers=size.n_layers,
        d_model=size.d_model,
        n_heads=size.n_heads,
        n_kv_heads=size.n_kv_heads,
        d_ff=size.d_ff,
        vocab_size=math.ceil(int(vocab_size) / pad) * pad,
        mlp="gated",
        context=int(context),
        tied=bool(getattr(size, "tie_embeddings", False)),
        name=getattr(size, "name", ""),
    )


def _speed_measurements(measured: Sequence[Mapping[str, Any]], bytes_per_token: Mapping[str, float]) -> dict[str, dict]:
    """``{tokenizer: {vocab_size, tokens_per_s, source, bpt, shape_vocab}}``.

    Validated (see :func:`speed_check_rows`).
    """
    meas = {}
    for m in measured:
        name = m.get("tokenizer")
        if name in meas:
            raise CostsError(f"tokenizer {name!r} measured twice; pass one tokens/s per tokenizer")
        tps = float(m.get("tokens_per_s", float("nan")))
        if not tps > 0:
            raise CostsError(f"tokens_per_s of {name!r} must be > 0, got {m.get('tokens_per_s')!r}")
        source = m.get("source", "random-weights")
        if source not in SPEED_SOURCES:
            raise CostsError(f"source of {name!r} must be one of {SPEED_SOURCES}, got {source!r}")
        if name not in bytes_per_token or not float(bytes_per_token[name]) > 0:
            raise CostsError(f"no bytes/token for {name!r}; pass its compression rows (costs.sweep_points)")
        meas[name] = {"vocab_size": int(m["vocab_size"]), "tokens_per_s": tps, "source": source,
                      "bpt": float(bytes_per_token[name]),
                      "shape_vocab": int(m.get("model_vocab_size") or m["vocab_size"]),
                      "round_tokens_per_s": [float(x) for x in m.get("round_tokens_per_s", ())]}
    if len(meas) < 2:
        raise CostsError(f"a speed check needs >= 2 measured tokenizers, got {sorted(meas)}")
    return meas


def speed_check_rows(
    measured: Sequence[Mapping[str, Any]],
    bytes_per_token: Mapping[str, float],
    shape_for_vocab: ModelShape | Callable[[int], ModelShape],
    anchor: str | None = None,
    regime: str = "steps",
    *,
    ctx: float | None = None,
    dtype_bytes: int = 2,
    batch: int = 1,
) -> list[dict]:
    """Measured vs predicted generation speed (bytes/s) of each tokenizer over ``anchor``.

    ``measured``: one dict per tokenizer with ``tokenizer``, ``vocab_size``,
    ``tokens_per_s`` and ``source`` (``random-weights`` | ``fine-tuned``), e.g. from
    ``evaluate.random_model_speeds`` or ``evaluate.finetuned_speeds``.
    ``bytes_per_token``: ``{tokenizer: bytes/token on held-out text}`` (the
    compression rows, e.g. ``sweep_points``).  A model's bytes/s is taken as
    ``tokens_per_s × bytes_per_token``: the text a random-weight model emits is
    noise whose bytes/token says nothing about the tokenizer, so the corpus
    bytes/token stands in for what a trained model would write (for fine-tuned
    models it is the same estimate, free of the prompts' short sample).
    ``shape_for_vocab``: the model shape at a vocab size (a ``ModelShape``,
    re-vocabbed with ``with_vocab``, or a callable ``V -> ModelShape``), called
    with a dict's ``model_vocab_size`` (embedding rows after padding) when it
    has one, else its ``vocab_size``.
    ``anchor``: the reference tokenizer (default: the smallest vocabulary).

    Rows (tidy, ``value`` column): per tokenizer ``gen_tokens_per_s_random``
    (``gen_tokens_per_s_finetuned`` for fine-tuned input) and
    ``speed_measured_ratio`` (bytes/s over the anchor's; the anchor's row is 1), and with per-round
    measurements (``round_tokens_per_s``) ``speed_measured_ratio_round`` per round against the anchor's same round;
    per tokenizer and regime of :data:`REGIMES`, ``speed_predicted_ratio``
    (:func:`predicted_speed_ratio` with the same shapes) and, except for the
    anchor, ``speed_prediction_error`` = measured / predicted − 1; per regime
    ``speed_prediction_mae`` (mean |error| over the non-anchor tokenizers).
    ``primary`` marks the rows of ``regime``, the one expected to match the
    measurement (``steps`` for small-batch decoding of small models, whose step
    time is per-step overhead rather than FLOPs or bytes read).
    """
    if regime not in REGIMES:
        raise CostsError(f"regime must be one of {REGIMES}, got {regime!r}")
    meas = _speed_measurements(measured, bytes_per_token)
    if anchor is None:
        anchor = min(meas, key=lambda n: (meas[n]["vocab_size"], n))
    if anchor not in meas:
        raise CostsError(f"anchor {anchor!r} is not among the measured tokenizers {sorted(meas)}")
    shape_of = shape_for_vocab.with_vocab if isinstance(shape_for_vocab, ModelShape) else shape_for_vocab
    a = meas[anchor]
    a_shape = shape_of(a["shape_vocab"])
    a_bytes_per_s = a["tokens_per_s"] * a["bpt"]
    rows: list[dict] = []
    errors: dict[str, list[float]] = {r: [] for r in REGIMES}
    for name, m in sorted(meas.items(), key=lambda kv: (kv[1]["vocab_size"], kv[0])):
        common = {"tokenizer": name, "vocab_size": m["vocab_size"], "anchor": anchor, "source": m["source"],
                  "bytes_per_token": m["bpt"]}
        tps_metric = "gen_tokens_per_s_random" if m["source"] == "random-weights" else "gen_tokens_per_s_finetuned"
        measured_ratio = m["tokens_per_s"] * m["bpt"] / a_bytes_per_s
        rows.append({**common, "metric": tps_metric, "value": m["tokens_per_s"]})
        rows.append({**common, "metric": "speed_measured_ratio", "value": measured_ratio})
        if m["round_tokens_per_s"] and len(m["round_tokens_per_s"]) == len(a["round_tokens_per_s"]):
            for i, (t, ta) in enumerate(zip(m["round_tokens_per_s"], a["round_tokens_per_s"], strict=True)):
                rows.append({**common, "metric": "speed_measured_ratio_round", "round": i,  # vs the anchor's round i
                             "value": t * m["bpt"] / (ta * a["bpt"])})
        shape = shape_of(m["shape_vocab"])
        for r in REGIMES:
            predicted = predicted_speed_ratio(shape, m["bpt"], a_shape, a["bpt"], regime=r, ctx=ctx,
                                              dtype_bytes=dtype_bytes, batch=batch)
            tag = {"regime": r, "primary": r == regime}
            rows.append({**common, **tag, "metric": "speed_predicted_ratio", "value": predicted})
            if name != anchor:
                err = measured_ratio / predicted - 1.0
                errors[r].append(err)
                rows.append({**common, **tag, "metric": "speed_prediction_error", "value": err})
    source = a["source"]
    for r in REGIMES:
        rows.append({"metric": "speed_prediction_mae", "value": float(np.mean(np.abs(errors[r]))), "regime": r,
                     "primary": r == regime, "anchor": anchor, "source": source})
    return rows
