"""``tokstudy advise``: should a code model switch its tokenizer? One page from the library's own numbers.

The page (``advise.md``, with ``advise.json`` holding every number on it, and ``compare/``: the output of
:func:`tokstudy.commands.compare` on the same files) assembles what the library already computes, and computes
nothing of its own beyond the resampling interval and the plain-words risk counts:

* compression: :func:`tokstudy.metrics.compression_rows` on the user's folder (exactly the rows
  ``tokstudy compare FOLDER CANDIDATES --base CURRENT`` writes) and on our English/multilingual test
  sets (the corpus test split of the cpu, else smoke profile), with a paired percentile-bootstrap
  interval over files of each NSL (a ratio of sums, resampled file by file);
* costs at the user's model shape: :func:`tokstudy.costs.variant_costs` and
  :func:`tokstudy.costs.predicted_speed_ratio`, with the speed check's measured error read from the
  ``costs`` run record;
* without candidates: GPT-4-regex tokenizers trained on half of the folder's files
  (:func:`tokstudy.commands.train_custom`, the ``train --data`` path), scored on the other half, and the
  vocabulary size from :mod:`tokstudy.optimum`;
* the transfer plan: :func:`tokstudy.tokenmap.map_tokens` (FVT) and the fine-tune budget from our
  measured model-side runs and docs/paper.md#figure-6-fine-tuning-budget.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokstudy import bootstrap, commands, costs, metrics, optimum, paths, results
from tokstudy.errors import TokenMapError, ToolError
from tokstudy.params import Params

#: the files advise writes into --out (and paths.MARKER); `candidates/` when it trains some
ADVISE_FILES = ("advise.md", "advise.json", "compare", "reference.csv", "candidates")
#: the profiles whose corpus test split serves as our English/multilingual sets, first found wins
REFERENCE_PROFILES = ("cpu", "smoke")
REFERENCE_DOMAINS = ("english", "multilingual")
#: ``--model-shape params=...`` keys: required, then optional
SHAPE_REQUIRED = ("params", "layers", "d_model")
SHAPE_OPTIONAL = ("heads", "kv_heads", "d_ff", "context", "vocab", "tied", "mlp")
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_SPANS_WORDS = re.compile(rb"\S\s+\S")  # a token that runs over whitespace into the next word (Identity-style)


# --------------------------------------------------------------------------- the model shape


@dataclass(frozen=True)
class ShapeSpec:
    """The user's ``--model-shape``: a config.json's fields or ``params=..,layers=..,d_model=..`` (not resolved)."""

    text: str
    fields: dict
    from_config: bool
    notes: tuple[str, ...] = ()


def _number(key: str, value: str, text: str) -> float:
    v = value.strip().lower()
    scale = _SUFFIX.get(v[-1:], 1.0)
    try:
        x = float(v[:-1] if v[-1:] in _SUFFIX else v) * scale
    except ValueError:
        raise ToolError(f"--model-shape {text!r}: {key}={value!r} is not a number (e.g. params=7b, "
                        "layers=32)") from None
    if not (math.isfinite(x) and x > 0):
        raise ToolError(f"--model-shape {text!r}: {key} must be > 0, got {value!r}")
    return x


def _from_config(path: Path, text: str) -> ShapeSpec:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ToolError(f"--model-shape {text}: not a readable JSON config ({exc}); give a Hugging Face "
                        "config.json or params=N,layers=L,d_model=D") from None
    if not isinstance(cfg, dict):
        raise ToolError(f"--model-shape {text}: a config.json holds a JSON object; give a Hugging Face config.json")
    cfg = {**cfg.get("text_config", {}), **cfg} if isinstance(cfg.get("text_config"), dict) else cfg

    def pick(*keys):
        return next((cfg[k] for k in keys if cfg.get(k) is not None), None)

    f = {"layers": pick("num_hidden_layers", "n_layer", "num_layers"),
         "d_model": pick("hidden_size", "n_embd", "d_model"),
         "heads": pick("num_attention_heads", "n_head"), "kv_heads": pick("num_key_value_heads"),
         "d_ff": pick("intermediate_size", "n_inner", "ffn_dim"), "vocab": pick("vocab_size"),
         "context": pick("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")}
    missing = [k for k in ("layers", "d_model", "heads") if f[k] is None]
    if missing:
        raise ToolError(f"--model-shape {text}: the config names no {', '.join(missing)} (num_hidden_layers, "
                        "hidden_size, num_attention_heads); give a decoder config.json or params=N,layers=L,d_model=D")
    notes = []
    tied = cfg.get("tie_word_embeddings")
    if tied is None:
        tied = True
        notes.append("tie_word_embeddings absent: Hugging Face's default (tied) assumed")
    gated = str(cfg.get("hidden_act", cfg.get("activation_function", ""))).lower() in ("silu", "swish", "swiglu")
    f.update(tied=bool(tied), mlp="gated" if gated else "plain")
    notes.append(f"MLP taken as {f['mlp']} (hidden_act {cfg.get('hidden_act', cfg.get('activation_function'))!r})")
    if f["context"] is None:
        raise ToolError(f"--model-shape {text}: the config names no context length (max_position_embeddings); "
                        "add it to the file or give params=N,layers=L,d_model=D,context=C")
    return ShapeSpec(text, {k: v for k, v in f.items() if v is not None}, True, tuple(notes))


def parse_shape(text: str) -> ShapeSpec:
    """``--model-shape``: a config.json path, or ``params=..,layers=..,d_model=..[,heads=..,...]``; one-line errors."""
    path = Path(text).expanduser()
    if path.is_file():
        return _from_config(path, text)
    if "=" not in text:
        raise ToolError(f"--model-shape {text!r}: no such config file; give a Hugging Face config.json or "
                        "params=N,layers=L,d_model=D (e.g. params=7b,layers=32,d_model=4096)")
    fields: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in (*SHAPE_REQUIRED, *SHAPE_OPTIONAL):
            raise ToolError(f"--model-shape {text!r}: unknown part {part!r}; keys: {', '.join(SHAPE_REQUIRED)} "
                            f"(required), {', '.join(SHAPE_OPTIONAL)}")
        if key == "tied":
            if value.strip().lower() not in ("true", "false"):
                raise ToolError(f"--model-shape {text!r}: tied must be true or false, got {value!r}")
            fields[key] = value.strip().lower() == "true"
        elif key == "mlp":
            if value.strip() not in ("gated", "plain"):
                raise ToolError(f"--model-shape {text!r}: mlp must be gated or plain, got {value!r}")
            fields[key] = value.strip()
        else:
            fields[key] = _number(key, value, text)
    missing = [k for k in SHAPE_REQUIRED if k not in fields]
    if missing:
        raise ToolError(f"--model-shape {text!r}: missing {', '.join(missing)}; give params=N,layers=L,d_model=D")
    return ShapeSpec(text, fields, False)


def resolve_shape(spec: ShapeSpec, vocab_size: int) -> tuple[costs.ModelShape, list[str]]:
    """The :class:`costs.ModelShape` of ``spec`` at the current tokenizer's ``vocab_size`` (unless the spec has one)
    and the notes saying what was assumed or derived."""
    f, notes = dict(spec.fields), list(spec.notes)
    d, layers = int(f["d_model"]), int(f["layers"])
    vocab = int(f.get("vocab") or vocab_size)
    notes.append(f"vocabulary rows {vocab:,} ({'from the model shape' if f.get('vocab') else 'the current tokenizer'})")
    heads = int(f["heads"]) if "heads" in f else max(1, d // 128)
    if "heads" not in f:
        notes.append(f"heads not given: d_model/128 = {heads} assumed (give heads=N)")
    context = int(f["context"]) if "context" in f else 4096
    if "context" not in f:
        notes.append("context not given: 4096 tokens assumed (give context=N)")
    tied, mlp = bool(f.get("tied", False)), f.get("mlp", "gated")
    d_ff = int(f["d_ff"]) if "d_ff" in f else None
    if d_ff is None and "params" in f:  # from the total: params = V·d·(1|2) + layers·(attention + MLP)
        probe = costs.ModelShape(n_layers=layers, d_model=d, n_heads=heads, vocab_size=vocab, d_ff=1, mlp=mlp,
                                 n_kv_heads=int(f["kv_heads"]) if "kv_heads" in f else None, tied=tied,
                                 context=context)
        per = (3 if mlp == "gated" else 2) * d  # MLP weights per layer per unit of d_ff
        mlp_total = f["params"] - costs.param_counts(probe)["total"] + layers * per  # the probe has d_ff = 1
        d_ff = round(mlp_total / layers / per)
        if d_ff <= 0:
            raise ToolError(f"--model-shape {spec.text!r}: params={f['params']:.3g} is too small for {layers} layers "
                            f"of d_model {d} and {vocab:,} vocabulary rows; check the numbers")
        notes.append(f"d_ff {d_ff} derived from params={f['params']:.4g} ({mlp} MLP, "
                     f"{'tied' if tied else 'untied'} head)")
    try:
        shape = costs.ModelShape(n_layers=layers, d_model=d, n_heads=heads, vocab_size=vocab, d_ff=d_ff, mlp=mlp,
                                 n_kv_heads=int(f["kv_heads"]) if "kv_heads" in f else None, tied=tied,
                                 context=context, name="yours")
    except costs.CostsError as exc:
        raise ToolError(f"--model-shape {spec.text!r}: {exc}") from None
    return shape, notes


# --------------------------------------------------------------------------- compression with intervals


def file_counts(handle, datasets: metrics.Datasets) -> dict[str, list[metrics.Counts]]:
    """``metrics.token_counts`` of every file (document) alone: ``{dataset: [Counts per non-empty file]}``."""
    return {name: [metrics.token_counts(handle, [t]) for t in texts if t] for name, (_d, texts) in datasets.items()}


def ratio_ci(num, den, n_boot: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``Σnum/Σden`` resampling the (num, den) pairs (files) with replacement:
    :func:`tokstudy.bootstrap.stratified_ratio_ci` with one stratum; NaN for fewer than 2 files."""
    if len(num) < 2:
        return float("nan"), float("nan")
    return bootstrap.stratified_ratio_ci([(num, den)], n_boot, confidence, seed)


@dataclass
class Scored:
    """One tokenizer's compression on a set of datasets: compare's rows, per-file counts, NSL intervals."""

    rows: list[dict]
    per_file: dict[str, list[metrics.Counts]]
    counts: dict[str, metrics.Counts]
    nsl_ci: dict[str, tuple[float, float]] = field(default_factory=dict)


def score(handles: dict, current, datasets: metrics.Datasets, *, base_name: str, alpha: float, n_boot: int,
          confidence: float, seed: int, pooled_domains=("code",)) -> tuple[Scored, dict[str, Scored]]:
    """Compare's rows (:func:`metrics.compression_rows`, NSL against ``current``) of every handle, plus per dataset
    and per pooled domain (``pooled:<domain>``) a paired bootstrap interval over files of its NSL."""
    cur_files = file_counts(current, datasets)
    cur_counts = {k: commands.merged_counts(v) for k, v in cur_files.items()}
    domains = {k: dom for k, (dom, _t) in datasets.items()}
    out = {}
    for label, (path, handle) in handles.items():
        per = file_counts(handle, datasets)
        counts = {k: commands.merged_counts(v) for k, v in per.items()}
        rows = metrics.compression_rows(handle, datasets, cur_counts, alpha=alpha, counts=counts,
                                        extra={"tokenizer": label, "path": path, "base": base_name})
        s = Scored(rows, per, counts)
        groups = {k: [k] for k in datasets}
        groups.update({f"pooled:{d}": [k for k in datasets if domains[k] == d] for d in pooled_domains
                       if any(domains[k] == d for k in datasets)})
        for name, members in groups.items():
            num = [c.tokens for k in members for c in per[k]]
            den = [c.tokens for k in members for c in cur_files[k]]
            s.nsl_ci[name] = ratio_ci(num, den, n_boot, confidence, seed)
        out[label] = s
    return Scored([], cur_files, cur_counts), out


def _value(rows: list[dict], dataset: str, metric: str) -> float:
    return next((r["value"] for r in rows if r["dataset"] == dataset and r["metric"] == metric), float("nan"))


def _domain(rows: list[dict], dataset: str) -> str | None:
    return next((r["domain"] for r in rows if r["dataset"] == dataset), None)


def pooled(counts: dict[str, metrics.Counts], names) -> metrics.Counts:
    return commands.merged_counts([counts[n] for n in names])


# --------------------------------------------------------------------------- inputs the page cites


def reference_sets(max_docs: int) -> tuple[metrics.Datasets | None, str]:
    """Our English/multilingual test sets (``PROFILE:test``, first profile of :data:`REFERENCE_PROFILES` built)
    and where they come from, or ``(None, why not)``."""
    for prof in REFERENCE_PROFILES:
        if (paths.corpus_dir(prof) / "test.jsonl").is_file():
            ds, _report = commands.read_docs(f"{prof}:test", max_docs=max_docs)
            ds = {k: v for k, v in ds.items() if v[0] in REFERENCE_DOMAINS}
            if ds:
                return ds, f"{paths.relative(paths.corpus_dir(prof) / 'test.jsonl')} (first {max_docs} docs per set)"
    return None, ("unavailable: no corpus test split under " + " or ".join(
        paths.relative(paths.corpus_dir(p)) for p in REFERENCE_PROFILES)
        + " (build one: tokstudy corpus --profile smoke)")


def speed_error() -> dict | None:
    """The speed check's measured error (the primary regime's mean |measured/predicted − 1|) and its record."""
    for prof in REFERENCE_PROFILES:
        rec = paths.runs_dir(prof) / "costs-costs.json"
        if rec.is_file():
            rows = results.read_run(rec)["rows"]
            mae = [r for r in rows if r["metric"] == "speed_prediction_mae" and r.get("primary")]
            n = sum(1 for r in rows if r["metric"] == "speed_measured_ratio")
            if mae:
                return {"mae": mae[0]["value"], "regime": mae[0]["regime"], "source": mae[0].get("source"),
                        "record": paths.relative(rec), "tokenizers": n}
    return None


def finetune_curves() -> dict | None:
    """Mean code bits/byte of the keep / fvt / random fine-tunes at each byte budget (our model-side runs)."""
    for prof in REFERENCE_PROFILES:
        runs = paths.runs_dir(prof)
        found: dict[str, dict[int, float]] = {}
        for method in ("keep", "fvt", "random"):
            for rec in sorted(runs.glob(f"evaluate-{method}-b*.json")):
                rows = [r for r in results.read_run(rec)["rows"] if r["metric"] == "bits_per_byte"
                        and r.get("domain") == "code" and ":" not in str(r["dataset"])]
                if rows and rows[0].get("budget_bytes"):
                    found.setdefault(method, {})[int(rows[0]["budget_bytes"])] = (
                        sum(r["value"] for r in rows) / len(rows))
        if {"keep", "fvt"} <= found.keys() and len(set(found["keep"]) & set(found["fvt"])) >= 2:
            return {"profile": prof, "records": paths.relative(runs) + "/evaluate-{keep,fvt,random}-b*.json",
                    "bpb": found}
    return None


def budget_estimate(curves: dict) -> dict:
    """Where the FVT run's code bits/byte gap to the kept tokenizer reaches zero, extrapolated log-linearly in the
    budget from the two largest measured budgets (None when the gap is not shrinking)."""
    budgets = sorted(set(curves["bpb"]["keep"]) & set(curves["bpb"]["fvt"]))
    gaps = {b: curves["bpb"]["fvt"][b] - curves["bpb"]["keep"][b] for b in budgets}
    (b1, g1), (b2, g2) = [(b, gaps[b]) for b in budgets[-2:]]
    closes = None
    if g2 <= 0:
        closes = b2
    elif g1 > g2:
        closes = b2 * math.exp((math.log(b2) - math.log(b1)) * g2 / (g1 - g2))
    return {"gaps": gaps, "closes_at_bytes": closes}


# --------------------------------------------------------------------------- transfer and risks


def transfer_plan(new, old, occurrences: dict[int, int]) -> dict:
    """FVT's token map of ``new`` from ``old``: how many new tokens are old ones, composed of old ones, or neither,
    and the share of ``new``'s tokens on the user's code (``occurrences``: id -> count) the model never saw whole."""
    from tokstudy import tokenmap

    try:
        tm = tokenmap.map_tokens(new, old)
    except TokenMapError as exc:
        return {"error": str(exc)}
    st = tm.stats()
    novel = {i for i, k in enumerate(tm.kinds) if k in ("composed", "special_mean")}
    total = sum(occurrences.values())
    st["composed_share"] = st["n_composed"] / max(st["n_regular"], 1)
    st["covered_share"] = (st["n_exact"] + st["n_composed"]) / max(st["n_regular"], 1)
    novel_n = sum(n for i, n in occurrences.items() if i in novel)
    st["novel_occurrence_share"] = novel_n / total if total else float("nan")
    return st


def vocab_risks(handle, long_bytes: int) -> dict:
    """Tokens longer than ``long_bytes`` bytes and tokens that run over whitespace into the next word."""
    toks = metrics.token_set(handle)
    long = sorted((t for t in toks if len(t) > long_bytes), key=lambda t: (-len(t), t))
    spans = sorted((t for t in toks if _SPANS_WORDS.search(t)), key=lambda t: (-len(t), t))
    return {"n_tokens": len(toks), "n_long": len(long),
            "long_examples": [t.decode("utf-8", "replace") for t in long[:3]],
            "n_spanning": len(spans), "spanning_share": len(spans) / max(len(toks), 1),
            "spanning_examples": [t.decode("utf-8", "replace") for t in spans[:3]]}


# --------------------------------------------------------------------------- training candidates


def split_files(datasets: metrics.Datasets) -> tuple[list[str], dict, list[str]]:
    """Training texts (even positions of each language's files, in the folder sample's sha256 order), the held-out
    datasets (odd positions) and the languages with a single file (train only, not scored)."""
    train, held, alone = [], {}, []
    for name, (dom, texts) in sorted(datasets.items()):
        texts = [t for t in texts if t]
        if len(texts) < 2:
            alone.append(name)
            train += texts
            continue
        train += texts[0::2]
        held[name] = (dom, texts[1::2])
    return train, held, alone


def train_candidates(P: Params, texts: list[str], sizes, train_bytes: int, stage: Path) -> dict:
    """GPT-4-regex tokenizers at ``sizes`` on at most ``train_bytes`` of ``texts`` (``commands.train_custom``, the
    ``tokstudy train --data`` path, on a JSONL of them), saved under ``stage/candidates``.

    Returns ``({label: (path, handle)}, bytes trained on, files trained on)``.
    """
    capped = metrics.limit_texts(texts, max_bytes=train_bytes)
    out = {}
    with tempfile.TemporaryDirectory(prefix="tokstudy-advise-") as tmp:
        data = Path(tmp) / "train.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in capped), encoding="utf-8")
        for size in sorted(set(sizes)):
            label = f"gpt4-{size}"
            where, _vocab, _report = commands.train_custom(P, data=str(data), regex="gpt4", vocab_size=size,
                                                           name=label, out=str(stage / "candidates" / label))
            out[label] = (f"candidates/{label}", commands.load_tokenizer(Path(where) / "tokenizer.json"))
    return out, sum(len(t.encode("utf-8")) for t in capped), len(capped)


# --------------------------------------------------------------------------- the whole verb


@dataclass(frozen=True)
class Settings:
    """The flags of ``tokstudy advise`` beyond its inputs (cli.py holds their defaults)."""

    sizes: tuple[int, ...]
    train_bytes: int
    n_boot: int
    confidence: float
    long_token_bytes: int
    max_docs: int
    reference_docs: int
    min_docs: int
    min_bytes: int
    alpha: float = 2.5


def check_inputs(folder: str, out: str, *, force: bool, specs) -> Path:
    """The cheap checks, before any work: FOLDER is a folder, ``--out`` may be written (``paths.check_output``)."""
    p = Path(folder).expanduser()
    if not p.is_dir():
        raise ToolError(f"advise FOLDER {folder}: {'not a folder' if p.exists() else 'no such folder'}; give the "
                        "folder of code your model works on")
    return paths.check_output(out, force=force, inputs=[folder, *specs], writes=ADVISE_FILES)


def advise(P: Params, folder: str, current_spec: str, candidate_specs, shape_spec: ShapeSpec, *, out: str,
           force: bool, settings: Settings) -> dict:
    """Write the advice page for ``folder`` into ``out`` (the output rule: ``paths.output_dir``); returns its numbers.

    ``candidate_specs`` empty: GPT-4-regex candidates are trained on half the files (``settings.sizes``) and every
    tokenizer is scored on the other half.
    """
    from tokstudy import tokenizer

    S = settings
    inputs = [folder, current_spec, *candidate_specs, shape_spec.text]
    check_inputs(folder, out, force=force, specs=inputs[1:])
    current = commands.load_tokenizer(current_spec, "--current")
    if candidate_specs:
        try:
            labels = tokenizer.unique_labels(candidate_specs)
        except tokenizer.TokenizerError as exc:
            raise ToolError(f"--candidate: {exc}") from None
        handles = {lab: (commands.where(s), commands.load_tokenizer(s, "--candidate"))
                   for lab, s in zip(labels, candidate_specs, strict=True)}
    shape, shape_notes = resolve_shape(shape_spec, current.vocab_size)
    datasets, report = commands.read_docs(folder, max_docs=S.max_docs)
    if not datasets:
        raise ToolError(f"advise FOLDER {folder}: no source files of a known language there ({report.summary()})")
    with paths.output_dir(out, force=force, inputs=inputs, writes=ADVISE_FILES) as stage:
        trained = None
        scored_on, alone = datasets, []
        if not candidate_specs:
            texts, scored_on, alone = split_files(datasets)
            if not scored_on:
                raise ToolError(f"advise FOLDER {folder}: every language has a single file, so none is left to score "
                                "trained candidates on; give --candidate TOKENIZER or a larger folder")
            handles, used_bytes, used_files = train_candidates(P, texts, S.sizes, S.train_bytes, stage)
            trained = {"bytes": used_bytes, "files": used_files, "cap_bytes": S.train_bytes, "alone": alone}
        seed = P.seed
        cur_scored, scored = score(handles, current, scored_on, base_name=current_spec, alpha=S.alpha,
                                   n_boot=S.n_boot, confidence=S.confidence, seed=seed)
        ref, ref_source = reference_sets(S.reference_docs)
        ref_scored = None
        if ref is not None:
            ref_scored = score(handles, current, ref, base_name=current_spec, alpha=S.alpha, n_boot=S.n_boot,
                               confidence=S.confidence, seed=seed, pooled_domains=REFERENCE_DOMAINS)
        stage.mkdir(exist_ok=True)
        # the compare verb itself on the same files: compare/compare.csv and its figure; the page's means are its
        cmp = commands.compare(handles, current, scored_on, base_name=current_spec, alpha=S.alpha,
                               out=stage / "compare", corpus=str(folder), min_bytes=S.min_bytes, min_docs=S.min_docs)
        page = _numbers(P, folder, current_spec, current, handles, scored_on, cur_scored, scored, ref_scored,
                        ref_source, shape, shape_spec, shape_notes, trained, S, cmp)
        import pandas as pd

        if ref_scored is not None:
            ref_rows = [r for s in ref_scored[1].values() for r in s.rows]
            pd.DataFrame(ref_rows).to_csv(stage / "reference.csv", index=False)
        (stage / "advise.json").write_text(json.dumps(page, indent=1, default=str) + "\n", encoding="utf-8")
        (stage / "advise.md").write_text(render(page), encoding="utf-8")
        paths.write_marker(stage, "advise")
    page["out"] = str(Path(out))
    return page


def _numbers(P, folder, current_spec, current, handles, datasets, cur_scored, scored, ref_scored, ref_source,
             shape, shape_spec, shape_notes, trained, S, cmp) -> dict:
    """Every number of the page, as plain JSON-able values."""
    cmp_rows = cmp.rows.to_dict("records")
    left_out = set(cmp.metadata.get("datasets_left_out_of_means", ()))
    code = [k for k, (dom, _t) in datasets.items() if dom == "code" and k not in left_out] or [
        k for k in datasets if k not in left_out] or list(datasets)
    cur_code = pooled(cur_scored.counts, code)
    cur_bpt = cur_code.bytes / cur_code.tokens
    doc_bytes = cur_code.bytes / cur_code.docs
    C = P.costs
    cur_costs = costs.variant_costs(shape, cur_bpt, doc_bytes=doc_bytes, dtype_bytes=C.dtype_bytes)
    err = speed_error()
    curves = finetune_curves()
    page: dict[str, Any] = {
        "folder": str(Path(folder).resolve()), "current": {"spec": current_spec, "vocab_size": current.vocab_size,
                                                           "bytes_per_token_code": cur_bpt},
        "languages": {k: {"domain": dom, "files": cur_scored.counts[k].docs, "bytes": cur_scored.counts[k].bytes,
                          "tokens_current": cur_scored.counts[k].tokens} for k, (dom, _t) in sorted(datasets.items())},
        "code_languages": code, "left_out_of_means": sorted(left_out), "compare_notes": cmp.notes,
        "long_token_bytes": S.long_token_bytes, "confidence": S.confidence,
        "n_boot": S.n_boot, "seed": P.seed,
        "shape": {"spec": shape_spec.text, "n_layers": shape.n_layers, "d_model": shape.d_model,
                  "n_heads": shape.n_heads, "n_kv_heads": shape.kv_heads, "d_ff": shape.ff, "mlp": shape.mlp,
                  "context": shape.context, "tied": shape.tied, "vocab_size": shape.vocab_size,
                  "params_total": costs.param_counts(shape)["total"], "notes": shape_notes},
        "doc_bytes": doc_bytes, "dtype_bytes": C.dtype_bytes, "speed_regime": C.speed_regime,
        "current_costs": cur_costs, "speed_error": err, "reference_source": ref_source, "trained": trained,
        "candidates": {},
    }
    for label, (path, handle) in handles.items():
        s = scored[label]
        cand_code = pooled(s.counts, code)
        bpt = cand_code.bytes / cand_code.tokens
        cshape = shape.with_vocab(handle.vocab_size)
        cc = costs.variant_costs(cshape, bpt, doc_bytes=doc_bytes, dtype_bytes=C.dtype_bytes)
        occ = pooled(s.counts, code).counter
        cand = {
            "path": path, "vocab_size": handle.vocab_size,
            "per_language": {k: {"nsl": _value(s.rows, k, "nsl"), "nsl_ci": s.nsl_ci[k],
                                 "bytes_per_token": _value(s.rows, k, "bytes_per_token"),
                                 "bytes_per_token_current": cur_scored.counts[k].bytes / cur_scored.counts[k].tokens}
                             for k in sorted(datasets)},
            "nsl_code_pooled": cand_code.tokens / cur_code.tokens,
            "nsl_code_pooled_ci": s.nsl_ci.get("pooled:code", (float("nan"), float("nan"))),
            "nsl_code_mean": _value([r for r in cmp_rows if r["tokenizer"] == label], "mean:code", "nsl"),
            "bytes_per_token_code": bpt,
            "costs": cc,
            "params_embedding_head_change": (cc["params_embedding"] + cc["params_head"])
            - (cur_costs["params_embedding"] + cur_costs["params_head"]),
            "predicted_speed_ratio": costs.predicted_speed_ratio(cshape, bpt, shape, cur_bpt, regime=C.speed_regime,
                                                                 dtype_bytes=C.dtype_bytes),
            "kv_bytes_per_doc_ratio": cc["kv_cache_bytes_per_doc"] / cur_costs["kv_cache_bytes_per_doc"],
            "effective_context_ratio": cc["effective_context_bytes"] / cur_costs["effective_context_bytes"],
            "transfer": transfer_plan(handle, current, occ),
            "risks": vocab_risks(handle, S.long_token_bytes),
        }
        if ref_scored is not None:
            ref_cur, rs = ref_scored[0], ref_scored[1][label]
            names = {d: [k for k, r in ref_cur.per_file.items() if rs.rows and _domain(rs.rows, k) == d]
                     for d in REFERENCE_DOMAINS}
            cand["reference"] = {d: {"nsl_mean": _value(rs.rows, f"mean:{d}", "nsl"),
                                     "nsl_pooled": pooled(rs.counts, names[d]).tokens / pooled(ref_cur.counts,
                                                                                               names[d]).tokens,
                                     "nsl_pooled_ci": rs.nsl_ci.get(f"pooled:{d}")}
                                 for d in REFERENCE_DOMAINS if f"pooled:{d}" in rs.nsl_ci}
        page["candidates"][label] = cand
    page["optimal_vocab"] = _optimal(P, shape, page)
    page["finetune"] = _finetune(curves, cur_bpt)
    return page


def _optimal(P, shape, page) -> dict:
    """The compute-optimal vocabulary (no attention term, as docs/paper.md#optimal-vocab-size) at the user's shape,
    for the paper's code NSL fit and, with >= 3 trained sizes, the fit of the trained candidates' NSL."""
    C = P.costs
    grid = optimum.vocab_grid(max(C.vocab_min, 1000), C.vocab_max, C.vocab_points)
    out = {"paper": optimum.optimal_vocab_size(shape, optimum.PAPER_NSL_FITS["code"], "compute", grid=grid).__dict__}
    cands = page["candidates"]
    if page["trained"] and len({c["vocab_size"] for c in cands.values()}) >= 3:
        fit = optimum.fit_nsl([(c["vocab_size"], c["nsl_code_pooled"]) for c in cands.values()])
        out["measured"] = {**optimum.optimal_vocab_size(shape, fit, "compute", grid=grid).__dict__,
                           "fit": {"a": fit.a, "b": fit.b, "c": fit.c, "rmse": fit.rmse}}
        per = {lab: float(optimum.cost_per_text(shape, [c["vocab_size"]], lambda v, n=c["nsl_code_pooled"]: n + 0 * v,
                                                "compute")[0]) for lab, c in cands.items()}
        out["best_trained"] = min(per, key=per.get)
    return out


def _finetune(curves, cur_bpt) -> dict:
    paper_tokens = 50e9
    out = {"paper": {"tokens": paper_tokens, "source": "docs/paper.md#figure-6-fine-tuning-budget",
                     "bytes_of_your_code": paper_tokens * cur_bpt}}
    if curves is None:
        out["measured"] = None
    else:
        out["measured"] = {**curves, **budget_estimate(curves)}
    return out


# --------------------------------------------------------------------------- the page


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{(x - 1) * 100:+.1f}%"


def _ci(ci) -> str:
    if ci is None or any(isinstance(v, float) and math.isnan(v) for v in ci):
        return "n/a (one file)"
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _size(n: float) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n:.0f} B"


def _count(n: float) -> str:
    for unit, k in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= k:
            return f"{n / k:+.2f}{unit}" if n else "0"
    return f"{n:+.0f}"


def summary(page: dict) -> list[str]:
    """The few lines ``tokstudy advise`` prints: per candidate, code NSL with its interval, speed, memory, risks."""
    conf = int(round(page["confidence"] * 100))
    lines = [f"current tokenizer {page['current']['spec']} (vocab {page['current']['vocab_size']:,}, "
             f"{page['current']['bytes_per_token_code']:.2f} bytes/token on your code); model {page['shape']['spec']} "
             f"({page['shape']['params_total'] / 1e9:.2f}B params)"]
    err = page["speed_error"]
    for label, c in page["candidates"].items():
        ref = "; ".join(f"{d} NSL {v['nsl_mean']:.3f}" for d, v in c.get("reference", {}).items())
        lines.append(
            f"{label} (vocab {c['vocab_size']:,}): code NSL {c['nsl_code_pooled']:.3f} {conf}% CI "
            f"{_ci(c['nsl_code_pooled_ci'])}, speed {_pct(c['predicted_speed_ratio'])}"
            f"{(' (model error ±%.0f%%)' % (err['mae'] * 100)) if err else ''}, "
            f"KV/doc {_pct(c['kv_bytes_per_doc_ratio'])}, embedding+head {_count(c['params_embedding_head_change'])} "
            f"params" + (f"; {ref}" if ref else "; English/multilingual: unavailable"))
    opt = page["optimal_vocab"]
    own = opt.get("measured")
    trusted = own is not None and not own["extrapolated"]
    rec, whose = (own, "fit of the trained candidates") if trusted else (opt["paper"], "paper NSL fit")
    note = f"; your candidates' fit: {own['vocab_size']:,}, extrapolated" if own is not None and not trusted else ""
    lines.append(f"compute-optimal vocab at your shape: {rec['vocab_size']:,} ({whose}"
                 f"{', extrapolated' if rec['extrapolated'] else ''}{note})"
                 + (f"; best trained candidate: {opt['best_trained']}" if "best_trained" in opt else ""))
    lines.append(f"page: {Path(page['out']) / 'advise.md'}")
    return lines


def render(page: dict) -> str:
    """The Markdown page."""
    conf = int(round(page["confidence"] * 100))
    cur = page["current"]
    sh = page["shape"]
    L: list[str] = [f"# Tokenizer advice for `{page['folder']}`", ""]
    L += [f"Current tokenizer `{cur['spec']}` (vocabulary {cur['vocab_size']:,}); "
          f"candidates: {', '.join(f'`{k}`' for k in page['candidates'])}.", ""]
    if page["trained"]:
        t = page["trained"]
        L += ["No candidate was given: GPT-4-regex BPE tokenizers were trained (`tokstudy train --data` path) on "
              f"{t['files']} files ({_size(t['bytes'])}, capped at {_size(t['cap_bytes'])}), the even positions of "
              "each language's files in sha256(path) order; **every number below is measured on the other half** "
              "(the odd positions), so no tokenizer is scored on its own training data."
              + (f" Languages with one file (trained on, not scored): {', '.join(t['alone'])}." if t["alone"] else ""),
              ""]
    L += ["## Compression on your code", "",
          f"NSL = tokens of the candidate / tokens of `{cur['spec']}` on the same files (lower is better; the rows of "
          f"`tokstudy compare FOLDER CANDIDATES --base {cur['spec']}`, in `compare/compare.csv`). Interval: {conf}% "
          f"percentile bootstrap over files ({page['n_boot']} resamples, seed {page['seed']}).", "",
          "| language | files | bytes | candidate | NSL | NSL CI | bytes/token | bytes/token current |",
          "|---|---:|---:|---|---:|---|---:|---:|"]
    for k, info in page["languages"].items():
        for label, c in page["candidates"].items():
            v = c["per_language"][k]
            L.append(f"| {k} | {info['files']} | {info['bytes']:,} | {label} | {v['nsl']:.3f} | {_ci(v['nsl_ci'])} | "
                     f"{v['bytes_per_token']:.3f} | {v['bytes_per_token_current']:.3f} |")
    L += ["", f"All code ({', '.join(page['code_languages'])}) pooled (Σ tokens / Σ tokens) and the per-language "
          "mean (compare's `mean:code`, each language weighted equally)"
          + (f"; left out of both as too small (compare's --min-docs/--min-bytes): "
             f"{', '.join(page['left_out_of_means'])}" if page["left_out_of_means"] else "") + ":", "",
          "| candidate | pooled NSL | CI | mean NSL | bytes/token |", "|---|---:|---|---:|---:|"]
    for label, c in page["candidates"].items():
        L.append(f"| {label} | {c['nsl_code_pooled']:.3f} | {_ci(c['nsl_code_pooled_ci'])} | {c['nsl_code_mean']:.3f} "
                 f"| {c['bytes_per_token_code']:.3f} |")
    L += ["", "![compression per language](compare/compare.png)", "", "## Elsewhere: English and multilingual text", ""]
    if any("reference" in c for c in page["candidates"].values()):
        L += [f"Our test sets: {page['reference_source']}. NSL against `{cur['spec']}`: the mean over the domain's "
              "sets (compare's `mean:<domain>`) and pooled over its documents, with the pooled NSL's bootstrap "
              "interval over documents; above 1 the candidate needs more tokens than the current tokenizer there.", "",
              "| candidate | domain | mean NSL | pooled NSL | pooled CI |", "|---|---|---:|---:|---|"]
        for label, c in page["candidates"].items():
            for d, v in c.get("reference", {}).items():
                L.append(f"| {label} | {d} | {v['nsl_mean']:.3f} | {v['nsl_pooled']:.3f} | {_ci(v['nsl_pooled_ci'])} |")
        L.append("\nPer set: `reference.csv`.")
    else:
        L.append(f"**Not measured** — {page['reference_source']}.")
    err = page["speed_error"]
    L += ["", "## At your model shape", "",
          f"Shape `{sh['spec']}`: {sh['n_layers']} layers, d_model {sh['d_model']}, {sh['n_heads']} heads "
          f"({sh['n_kv_heads']} KV), d_ff {sh['d_ff']} ({sh['mlp']}), context {sh['context']:,}, "
          f"{'tied' if sh['tied'] else 'untied'} head, {sh['params_total'] / 1e9:.3f}B parameters. "
          + "; ".join(sh["notes"]) + ".", "",
          f"Cost model `tokstudy.costs` (docs/paper.md#cost-model): bytes/token pooled over your code; a document "
          f"is your mean code file, {_size(page['doc_bytes'])}; {page['dtype_bytes']}-byte weights and KV; generation "
          f"speed in bytes/s at the `{page['speed_regime']}` regime (FLOPs per step).", ""]
    if err:
        L.append(f"**Measured error of the speed prediction: ±{err['mae'] * 100:.1f}%** (mean |measured/predicted − 1| "
                 f"of the `{err['regime']}` regime over {err['tokenizers']} tokenizers, {err['source']} models; "
                 f"`{err['record']}`, row `speed_prediction_mae`). Treat speed changes smaller than that as noise.")
    else:
        L.append("**Measured error of the speed prediction: unavailable** (no costs run record; "
                 "`dvc repro costs` makes it).")
    cc = page["current_costs"]
    L += ["", "| tokenizer | vocab | embedding+head params | change | generation speed | KV per doc | "
          "effective context |", "|---|---:|---:|---:|---:|---:|---:|",
          f"| {cur['spec']} (current) | {sh['vocab_size']:,} | "
          f"{(cc['params_embedding'] + cc['params_head']) / 1e6:.1f}M"
          f" | — | 1 | {_size(cc['kv_cache_bytes_per_doc'])} | {_size(cc['effective_context_bytes'])} |"]
    for label, c in page["candidates"].items():
        k = c["costs"]
        L.append(f"| {label} | {c['vocab_size']:,} | {(k['params_embedding'] + k['params_head']) / 1e6:.1f}M | "
                 f"{_count(c['params_embedding_head_change'])} | {_pct(c['predicted_speed_ratio'])} | "
                 f"{_size(k['kv_cache_bytes_per_doc'])} ({_pct(c['kv_bytes_per_doc_ratio'])}) | "
                 f"{_size(k['effective_context_bytes'])} ({_pct(c['effective_context_ratio'])}) |")
    opt = page["optimal_vocab"]
    p = opt["paper"]
    L += ["", "## Vocabulary size", "",
          f"Compute-optimal vocabulary at your shape (compute per unit of text, no attention term; "
          f"`tokstudy.optimum`, docs/paper.md#optimal-vocab-size): **{p['vocab_size']:,}** with the paper's code "
          f"NSL fit (docs/paper.md#nsl-fit, fitted on 10k–256k{', extrapolated' if p['extrapolated'] else ''}"
          f"{', at the grid edge' if p['at_grid_edge'] else ''})."]
    if "measured" in opt:
        m = opt["measured"]
        L.append(f"With the fit of the trained candidates' NSL on your held-out code (a={m['fit']['a']:.3f}, "
                 f"b={m['fit']['b']:.3f}, c={m['fit']['c']:.3f}, rmse {m['fit']['rmse']:.4f}): **{m['vocab_size']:,}**"
                 f"{' — extrapolated beyond the trained sizes, trust the paper fit more' if m['extrapolated'] else ''}"
                 f"{', at the grid edge' if m['at_grid_edge'] else ''}. Of the trained candidates, "
                 f"`{opt['best_trained']}` costs the least compute per byte of your code.")
    elif page["trained"]:
        L.append("Fewer than 3 distinct trained sizes: no fit of your own (train more `--sizes`).")
    L += ["", "## Transfer plan", "",
          "Fast Vocabulary Transfer (docs/paper.md#embedding-transfer; `tokstudy transfer MODEL NEW --method fvt`): "
          "a new token that is an old one keeps its vector, any other is the mean of the old tokens it is made of.", "",
          "| candidate | new tokens | exact old tokens | composed of old ones | mean pieces | no counterpart | "
          "your code's tokens the model never saw whole |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, c in page["candidates"].items():
        t = c["transfer"]
        if "error" in t:
            L.append(f"| {label} | — | — | FVT impossible: {t['error']} | | | |")
            continue
        L.append(f"| {label} | {t['n_regular']:,} | {t['exact_share'] * 100:.1f}% | {t['composed_share'] * 100:.1f}% "
                 f"| {t['mean_pieces_composed']:.2f} | {t['n_special_mean']} | "
                 f"{t['novel_occurrence_share'] * 100:.1f}% |")
    ft = page["finetune"]
    L += ["", "Fine-tuning budget after the switch:", "",
          f"- *Paper* (docs/paper.md#figure-6-fine-tuning-budget; a 1.5B model, GPT-4/Punct tokenizers with FVT): the "
          f"switched model is behind after 5B tokens and has caught up by about **50B tokens** of fine-tuning. At "
          f"your current tokenizer's {cur['bytes_per_token_code']:.2f} bytes/token that is about "
          f"{_size(ft['paper']['bytes_of_your_code'])} of code like yours — extrapolated from one model size; "
          "the paper "
          "gives no scaling with model size."]
    m = ft["measured"]
    if m:
        gaps = ", ".join(f"{_size(b)}: {g:+.3f}" for b, g in sorted(m["gaps"].items()))
        closes = m["closes_at_bytes"]
        L.append(f"- *Our measured curves* (`{m['records']}`, profile {m['profile']}: a small model, FVT to a new "
                 f"tokenizer vs keeping the old one): code bits/byte gap FVT − keep by fine-tuning budget {gaps}. "
                 + (f"Extrapolated log-linearly from the last two budgets, the gap closes at about {_size(closes)} — "
                    "a toy-scale number, useful only for the shape (the gap shrinks with budget)."
                    if closes else "The gap is not shrinking between the last two budgets: no extrapolation."))
    else:
        L.append("- *Our measured curves*: unavailable (no keep/fvt evaluate run records at two budgets).")
    L += ["", "## Risks", ""]
    for label, c in page["candidates"].items():
        r = c["risks"]
        items = []
        if r["n_spanning"]:
            items.append(f"{r['n_spanning']:,} tokens ({r['spanning_share'] * 100:.1f}%) run across whitespace into "
                         "the next word (Identity-style pre-tokenization, e.g. "
                         f"{', '.join(map(repr, r['spanning_examples']))}): "
                         "they change with formatting and hurt pass@1 in the paper (docs/paper.md#regex-ablation).")
        if r["n_long"]:
            items.append(f"{r['n_long']:,} tokens are longer than {page['long_token_bytes']} bytes "
                         f"(e.g. {', '.join(map(repr, r['long_examples']))}): a completion must end on a token "
                         "boundary, so long tokens make prompts that stop mid-token harder.")
        worse = [f"{d} NSL {v['nsl_mean']:.3f}" for d, v in c.get("reference", {}).items() if v["nsl_mean"] > 1]
        if worse:
            items.append(f"more tokens than the current tokenizer on our {', '.join(worse)}: text there gets longer, "
                         "slower and fits less in the window.")
        elif "reference" not in c:
            items.append("English/multilingual loss not measured (test sets unavailable).")
        t = c["transfer"]
        if "error" not in t:
            items.append(f"{t['novel_occurrence_share'] * 100:.1f}% of the tokens on your code are tokens the current "
                         f"model never saw as one token ({t['n_composed']:,} composed + {t['n_special_mean']} without "
                         "counterpart): they start from averaged vectors and need fine-tuning.")
        lo, hi = c["nsl_code_pooled_ci"]
        if not math.isnan(hi) and lo <= 1 <= hi:
            items.append("the code NSL interval includes 1: on this folder the gain is not distinguishable from none.")
        L.append(f"- **{label}**: " + (" ".join(items) if items else "none found."))
    L += ["", "---", "Written by `tokstudy advise`; every number is in `advise.json`."]
    return "\n".join(L) + "\n"
