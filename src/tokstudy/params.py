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
from tokstudy.tokenizer import SPECIAL_TOKENS

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
    root: str | None = None  # or a list of candidates, the first that exists wins
    path: str | None = None
    include: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    package: tuple[str, ...] = ()

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ParamsError(f"source {self.name!r}: domain must be one of {DOMAINS}, got {self.domain!r}")
        for name in ("root", "path"):  # a list of candidates: the first that exists on this machine
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                found = next((v for v in value if Path(v).exists()), value[0] if value else None)
                object.__setattr__(self, name, found)
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
    regex: str | None  # a pre-tokenizer name (tokstudy.pretok); None when `pattern` is given
    vocab_size: int
    mix: str
    engine: str = "hf"
    train_bytes: int = 12_000_000
    max_token_length: int = 128
    special_tokens: tuple[str, ...] = SPECIAL_TOKENS
    vocab: str | int | None = None  # the ladder key it was resolved from
    pattern: str | None = None  # a raw pre-tokenization regex, exclusive with `regex`


@dataclass(frozen=True)
class MetricsParams:
    base: str = "llama2"
    references: tuple[str, ...] = ("llama2", "gpt2", "cl100k")
    renyi_alpha: float = 2.5
    max_docs: int = 400


@dataclass(frozen=True)
class CostsParams:
    """Inference-cost model settings (``costs:`` section; see :mod:`tokstudy.costs`)."""

    shapes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> ModelShape fields
    sweep: tuple[str, ...] = ("gpt4-xs", "gpt4-s", "gpt4-m", "gpt4-l")  # variants fitted for NSL(V)
    domain: str = "code"
    base_vocab_size: int = 32_000  # vocab of the NSL base tokenizer (Llama 2)
    dtype_bytes: int = 2
    doc_bytes: int = 10_000
    memory_settings: tuple[tuple[int, int], ...] = ((1, 1024), (1, 4096), (1, 16384), (1, 65536), (8, 4096), (64, 4096))
    vocab_min: int = 256
    vocab_max: int = 1_048_576
    vocab_points: int = 4000
    speed_regime: str = "compute"  # compute | memory | steps
    speed_check_regime: str = "steps"  # the regime measured small-batch decoding is checked against
    speed_check_rounds: int = 3  # round-robin timing rounds over the random-weight models (best kept)
    speed_check_prompts: int = 2  # HumanEval prompts each random-weight model generates from
    speed_check_max_new_tokens: int = 32  # tokens generated per prompt

    def __post_init__(self):
        object.__setattr__(self, "sweep", tuple(self.sweep))
        object.__setattr__(
            self, "memory_settings", tuple((int(b), int(l)) for b, l in self.memory_settings)
        )
        if self.domain not in DOMAINS:
            raise ParamsError(f"costs.domain must be one of {DOMAINS}, got {self.domain!r}")


STAGES = ("pretrain", "finetune")
INIT_METHODS = ("keep", "fvt", "random")


@dataclass(frozen=True)
class ModelSize:
    """A named LlamaConfig shape (``train.sizes``); the vocab size comes from the tokenizer."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    n_kv_heads: int | None = None  # None: = n_heads (no GQA)
    rope_theta: float = 10000.0
    pad_vocab_to: int = 64  # embedding rows rounded up to a multiple of this (1: no padding)
    tie_embeddings: bool = False  # Llama unties; transfer handles both ends

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ParamsError(f"train.sizes.{self.name}: d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")


@dataclass(frozen=True)
class TrainParams:
    """One training stage (``train`` + ``train.<stage>`` + ``profiles.<p>.train``), resolved."""

    stage: str
    size: ModelSize
    seq_len: int = 128
    batch_size: int = 16  # sequences per micro-batch per process
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    tokens: int = 0  # pretraining token budget (fine-tunes take theirs from the model run)
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    eval_every: int = 100
    eval_batches: int = 8
    log_every: int = 10
    val_tokens: int = 65536
    compile: bool = True  # torch.compile, CUDA only
    fsdp: bool = False  # FSDP2 instead of DDP under torchrun

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ParamsError(f"train stage must be one of {STAGES}, got {self.stage!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("seq_len", "batch_size", "grad_accum", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ParamsError(f"train.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelRun:
    """A named model-side experiment (``models``): what to start from, which tokenizer, how many tokens."""

    name: str
    stage: str  # pretrain | finetune
    tokenizer: str  # a tokenizer variant name
    init: str = "scratch"  # scratch | the name of another run
    method: str = "keep"  # keep | fvt | random: how init's embeddings reach `tokenizer`
    mix: str = "code100"  # training documents (a key of `mixes`)
    budget: str | int | None = None  # a key of train.budgets, or a token count
    tokens: int = 0  # resolved token budget

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ParamsError(f"models.{self.name}: stage must be one of {STAGES}, got {self.stage!r}")
        if self.method not in INIT_METHODS:
            raise ParamsError(f"models.{self.name}: method must be one of {INIT_METHODS}, got {self.method!r}")

    @property
    def init_model(self) -> str | None:
        """The model directory name this run starts from (``paths.model_dir``), None from scratch.

        ``keep`` starts from ``init`` itself; ``fvt`` / ``random`` from the transfer output
        ``<tokenizer>-<method>-init`` that ``tokstudy.transfer.save_transferred`` writes.
        """
        if self.init == "scratch":
            return None
        return self.init if self.method == "keep" else f"{self.tokenizer}-{self.method}-init"


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
    costs: CostsParams = field(default_factory=CostsParams)
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
        return merge(base, over)

    @property
    def models(self) -> Mapping[str, ModelRun]:
        """The ``models`` runs with their token budgets resolved for this profile."""
        return model_runs(self)

    def model(self, name: str) -> ModelRun:
        runs = self.models
        if name not in runs:
            raise ParamsError(f"unknown model run {name!r}; params.yaml `models` defines {sorted(runs)}")
        return runs[name]

    def train(self, stage: str) -> TrainParams:
        """The resolved training settings of ``stage`` (pretrain | finetune)."""
        return train_params(self, stage)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    """``base`` updated by ``over``, recursively for nested mappings (profile overrides)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
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

    corpus = _build(CorpusParams, merge(raw.get("corpus") or {}, prof.get("corpus") or {}), "corpus")
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
        if "pattern" in spec:
            spec.setdefault("regex", None)  # exclusive with `regex`: tokstudy.bpe.check_variant rejects both
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
    metrics_raw = merge(raw.get("metrics") or {}, prof.get("metrics") or {})
    if "references" in metrics_raw:
        metrics_raw["references"] = tuple(metrics_raw["references"])
    metrics = _build(MetricsParams, metrics_raw, "metrics")
    costs = _build(CostsParams, merge(raw.get("costs") or {}, prof.get("costs") or {}), "costs")
    return Params(
        profile=profile,
        seed=int(raw.get("seed", 0)),
        corpus=corpus,
        sources=sources,
        mixes=mixes,
        vocab_sizes=vocab_sizes,
        tokenizers=tokenizers,
        metrics=metrics,
        costs=costs,
        raw=raw,
    )


def train_params(params: Params, stage: str, **overrides: Any) -> TrainParams:
    """``train`` merged with ``train.<stage>`` (profile overrides included), plus ``overrides``."""
    raw = dict(params.section("train"))
    sizes = raw.pop("sizes", None) or {}
    raw.pop("budgets", None)
    stages = {s: raw.pop(s, None) or {} for s in STAGES}
    if stage not in STAGES:
        raise ParamsError(f"train stage must be one of {STAGES}, got {stage!r}")
    merged = {**merge(raw, stages[stage]), **overrides}
    size = merged.pop("size", None)
    if not isinstance(size, ModelSize):
        if size not in sizes:
            raise ParamsError(f"train.size {size!r} is not a key of train.sizes {sorted(sizes)}")
        size = _build(ModelSize, {"name": size, **sizes[size]}, f"train.sizes.{size}")
    return _build(TrainParams, {"stage": stage, "size": size, **merged}, f"train ({params.profile}, {stage})")


def model_runs(params: Params) -> dict[str, ModelRun]:
    """Every run of ``models`` with ``tokens`` resolved from ``train.budgets`` / ``train.pretrain.tokens``."""
    train = params.section("train")
    budgets = {str(k): int(v) for k, v in (train.get("budgets") or {}).items()}
    pretrain_tokens = int(merge(train, train.get("pretrain") or {}).get("tokens") or 0)
    runs = {}
    for name, spec in (params.section("models") or {}).items():
        spec = dict(spec)
        budget = spec.get("budget")
        if "tokens" not in spec:
            if isinstance(budget, int):
                spec["tokens"] = budget
            elif budget in budgets:
                spec["tokens"] = budgets[budget]
            elif budget is None and spec.get("stage") == "pretrain":
                spec["tokens"] = pretrain_tokens
            else:
                raise ParamsError(
                    f"models.{name}: budget {budget!r} is neither a token count nor a key of "
                    f"profiles.{params.profile}.train.budgets {sorted(budgets)}"
                )
        run = _build(ModelRun, {"name": name, **spec}, f"models.{name}")
        if run.tokenizer not in params.tokenizers:
            raise ParamsError(f"models.{name}: unknown tokenizer {run.tokenizer!r}; defined: {sorted(params.tokenizers)}")
        if run.mix not in params.mixes:
            raise ParamsError(f"models.{name}: unknown mix {run.mix!r}; defined: {sorted(params.mixes)}")
        runs[name] = run
    for run in runs.values():
        if run.init != "scratch" and run.init not in runs:
            raise ParamsError(f"models.{run.name}: init {run.init!r} is neither 'scratch' nor a run in `models`")
    return runs
