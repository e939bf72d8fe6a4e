"""Settings, loaded from ``params.yaml`` into frozen dataclasses.

``params.yaml`` is the single source of settings. :func:`load` resolves the
chosen *profile* (``smoke`` / ``cpu`` / ``gpu``): per-profile blocks override
the shared ones, and tokenizer variants get their concrete vocab size from the
profile's ``vocab_sizes`` ladder, so one ablation runs at every scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from tokstudy import paths

DOMAINS = ("code", "english")


class ParamsError(ValueError):
    """params.yaml is missing a key or holds an invalid value."""


def _build(cls, data: Mapping[str, Any] | None, where: str):
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    return cls(**data)


@dataclass(frozen=True)
class SourceSpec:
    """One corpus source: where to read files and what they are."""

    name: str
    kind: str  # python-stdlib | dir | zip | manpages | jsonl
    language: str
    domain: str  # code | english
    root: str | None = None
    path: str | None = None
    include: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    package: tuple[str, ...] = ()

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ParamsError(f"source {self.name!r}: domain must be one of {DOMAINS}, got {self.domain!r}")
        for name in ("include", "exclude", "package"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            else:
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class CorpusParams:
    budget_bytes: int = 40_000_000
    max_file_bytes: int = 200_000
    max_line_chars: int = 1000
    min_file_bytes: int = 64
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    max_files_per_source: int = 20_000


@dataclass(frozen=True)
class TokenizerVariant:
    """A named tokenizer to train: the unit of the tokenizer ablations."""

    name: str
    regex: str
    vocab_size: int
    mix: str
    engine: str = "hf"
    train_bytes: int = 12_000_000
    max_token_length: int = 128
    special_tokens: tuple[str, ...] = (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<pad>",
        "<|fim_prefix|>",
        "<|fim_middle|>",
        "<|fim_suffix|>",
    )
    vocab: str | int | None = None  # the ladder key it was resolved from


@dataclass(frozen=True)
class MetricsParams:
    base: str = "llama2"
    references: tuple[str, ...] = ("llama2", "gpt2", "cl100k")
    renyi_alpha: float = 2.5
    max_docs: int = 400


@dataclass(frozen=True)
class Params:
    profile: str
    seed: int
    corpus: CorpusParams
    sources: Mapping[str, SourceSpec]
    mixes: Mapping[str, Mapping[str, float]]
    vocab_sizes: Mapping[str, int]
    tokenizers: Mapping[str, TokenizerVariant]
    metrics: MetricsParams
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def tokenizer(self, name: str) -> TokenizerVariant:
        try:
            return self.tokenizers[name]
        except KeyError:
            raise ParamsError(
                f"unknown tokenizer variant {name!r}; params.yaml defines {sorted(self.tokenizers)}"
            ) from None

    def mix(self, name: str) -> Mapping[str, float]:
        try:
            return self.mixes[name]
        except KeyError:
            raise ParamsError(f"unknown mix {name!r}; params.yaml defines {sorted(self.mixes)}") from None

    def section(self, name: str) -> Mapping[str, Any]:
        """The raw dict of a top-level section, with the profile's override merged in."""
        base = dict(self.raw.get(name) or {})
        over = (self.raw.get("profiles", {}).get(self.profile) or {}).get(name) or {}
        return _merge(base, over)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path | None = None) -> dict:
    path = Path(path) if path else paths.PARAMS_FILE
    if not path.is_file():
        raise ParamsError(f"no params file at {path}; run from the project root or set TOKSTUDY_ROOT")
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def load(profile: str | None = None, path: str | Path | None = None) -> Params:
    """Load ``params.yaml`` and resolve ``profile`` (default: the file's ``profile`` key)."""
    raw = read_yaml(path)
    profile = profile or raw.get("profile", paths.DEFAULT_PROFILE)
    profiles = raw.get("profiles") or {}
    if profile not in profiles:
        raise ParamsError(f"unknown profile {profile!r}; params.yaml defines {sorted(profiles)}")
    prof = profiles[profile] or {}

    corpus = _build(CorpusParams, _merge(raw.get("corpus") or {}, prof.get("corpus") or {}), "corpus")
    sources = {
        name: _build(SourceSpec, {"name": name, **spec}, f"sources.{name}")
        for name, spec in (raw.get("sources") or {}).items()
    }
    mixes = {}
    for name, mix in (raw.get("mixes") or {}).items():
        mix = {k: float(v) for k, v in mix.items()}
        if set(mix) - set(DOMAINS) or abs(sum(mix.values()) - 1.0) > 1e-6:
            raise ParamsError(f"mix {name!r} must give shares of {DOMAINS} that sum to 1, got {mix}")
        mixes[name] = mix
    vocab_sizes = {str(k): int(v) for k, v in (prof.get("vocab_sizes") or {}).items()}
    tok_defaults = prof.get("tokenizer") or {}
    tokenizers = {}
    for name, spec in (raw.get("tokenizers") or {}).items():
        spec = {**tok_defaults, **spec}
        vocab = spec.pop("vocab", None)
        if "vocab_size" not in spec:
            if isinstance(vocab, int):
                spec["vocab_size"] = vocab
            elif vocab in vocab_sizes:
                spec["vocab_size"] = vocab_sizes[vocab]
            else:
                raise ParamsError(
                    f"tokenizers.{name}: vocab {vocab!r} is neither an integer nor a key of "
                    f"profiles.{profile}.vocab_sizes {sorted(vocab_sizes)}"
                )
        if spec.get("mix") not in mixes:
            raise ParamsError(f"tokenizers.{name}: unknown mix {spec.get('mix')!r}; defined: {sorted(mixes)}")
        if "special_tokens" in spec:
            spec["special_tokens"] = tuple(spec["special_tokens"])
        tokenizers[name] = _build(TokenizerVariant, {"name": name, "vocab": vocab, **spec}, f"tokenizers.{name}")
    metrics_raw = _merge(raw.get("metrics") or {}, prof.get("metrics") or {})
    if "references" in metrics_raw:
        metrics_raw["references"] = tuple(metrics_raw["references"])
    metrics = _build(MetricsParams, metrics_raw, "metrics")
    return Params(
        profile=profile,
        seed=int(raw.get("seed", 0)),
        corpus=corpus,
        sources=sources,
        mixes=mixes,
        vocab_sizes=vocab_sizes,
        tokenizers=tokenizers,
        metrics=metrics,
        raw=raw,
    )
