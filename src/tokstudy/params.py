"""Settings, loaded from ``params.yaml`` into frozen, validated dataclasses.

``params.yaml`` is the only place a setting's value lives: the dataclasses here
have no defaults, and a missing or unknown key is a :class:`ParamsError` that
names the key as a YAML path (``profiles.cpu.train.lr``) and the file. :func:`load`
resolves the chosen *profile* (``smoke`` / ``cpu`` / ``gpu``): ``profiles.<p>.<section>``
holds only what differs and is deep-merged over the top-level ``<section>``.
Tokenizer variants get their vocab size from the ``vocab_sizes`` ladder, so one
ablation runs at every scale. Types, ranges and the names one section uses of
another (a model run's tokenizer, a transfer target, a mix, a budget) are all
checked at load, so a bad value fails here, not an hour into training.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from tokstudy import choices, paths
from tokstudy.errors import ParamsError
from tokstudy.paramfile import Loader, merge, origin, read_yaml

DOMAINS = choices.DOMAINS  # the paper's Table 1 domains (docs/paper.md)
STAGES = choices.TRAIN_STAGES
# top-level sections a profile may override (dvc.yaml tracks profiles.<p>.<section> for each)
PROFILE_SECTIONS = ("corpus", "vocab_sizes", "tokenizer", "metrics", "costs", "train", "evaluate", "analysis")
# top-level keys of params.yaml; every one is read by load()
TOP_KEYS = ("profile", "seed", "sources", "source_defaults", "mixes", "profiles", "tokenizer", "tokenizers",
            "truncations",
            "vocab_sizes", "corpus", "metrics", "costs", "models", "train", "transfer", "evaluate", "analysis")

Pos = Annotated[int, Field(gt=0)]
NonNeg = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Domain = choices.Domain


def _dataclass(cls):
    """A frozen dataclass whose constructor validates types and rejects unknown keys (pydantic)."""
    return _pydantic_dataclass(frozen=True, config=pydantic.ConfigDict(extra="forbid"))(cls)


@_dataclass
class SourceSpec:
    """One corpus source: where to read files and what they are (``sources.<name>``).

    With ``fetch`` (a pinned registry artifact, :mod:`tokstudy.fetch`) and its
    ``sha256``, ``root`` / ``path`` are relative to the unpacked artifact.
    """

    name: str
    kind: Literal["python-stdlib", "dir", "zip", "manpages", "jsonl"]
    language: str
    domain: Domain
    fetch: str | None  # deb:NAME=VERSION | pypi:NAME==VERSION | npm:NAME@VERSION
    sha256: str | None  # of the fetched .deb / .whl / .tar.gz / .tgz
    root: str | tuple[str, ...] | None  # or a list of candidates, the first that exists wins
    path: str | tuple[str, ...] | None
    include: str | tuple[str, ...]
    exclude: str | tuple[str, ...]
    package: str | tuple[str, ...]

    def __post_init__(self):
        for name in ("root", "path"):  # a list of candidates: the first that exists on this machine
            value = getattr(self, name)
            if isinstance(value, tuple):
                found = next((v for v in value if Path(v).exists()), value[0] if value else None)
                object.__setattr__(self, name, found)
        for name in ("include", "exclude", "package"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))


@_dataclass
class CorpusParams:
    budget_bytes: Pos
    max_file_bytes: Pos
    max_line_chars: Pos
    min_file_bytes: NonNeg
    val_fraction: Fraction
    test_fraction: Fraction
    min_test_docs: NonNeg  # per dataset (language): small ones are topped up from train (tokstudy.corpus)
    max_files_per_source: Pos
    sources: tuple[str, ...] | None  # names of `sources` to build from; None: all


@_dataclass
class TokenizerVariant:
    """A named tokenizer to train: the unit of the tokenizer ablations (``tokenizer`` + ``tokenizers.<name>``)."""

    name: str
    regex: str | None  # a name of choices.Regex (checked when the section loads, and by bpe.check_variant)
    pattern: str | None  # or a raw pre-tokenizer regex (exactly one of the two)
    vocab_size: Pos
    mix: str
    engine: choices.Engine
    train_bytes: Pos
    max_token_length: Pos
    chunk_bytes: Pos | None  # cut texts at line ends into pieces of at most this many bytes (None: whole texts)
    special_tokens: tuple[str, ...]
    vocab: str | int | None  # the ladder key it was resolved from
    truncate_of: str | None  # `truncations:`: the first vocab_size tokens of this trained variant
    # SuperBPE (tokstudy.superbpe): the share of the learned merges done with `regex`; the rest without the
    # whitespace split (superword tokens). None: plain BPE.
    transition: Annotated[float, Field(gt=0, lt=1)] | None
    stage2_boundaries: choices.Stage2Boundaries
    max_superword_parts: Pos | None  # cap on stage-1 tokens per stage-2 token (None: none, the paper's)

    @property
    def transition_vocab(self) -> int | None:
        """SuperBPE's t: the vocab size at which stage 2 starts (bytes + specials + ``transition`` x merges)."""
        if self.transition is None:
            return None
        fixed = 256 + len(self.special_tokens)
        return fixed + round(self.transition * (self.vocab_size - fixed))


@_dataclass
class NslInterval:
    """Bootstrap over test documents (within each dataset) of each domain's mean NSL."""

    n_boot: Pos
    confidence: Annotated[float, Field(gt=0, lt=1)]


@_dataclass
class MetricsParams:
    base: str
    references: tuple[str, ...]
    renyi_alpha: PosFloat
    max_docs: Pos
    nsl_interval: NslInterval


@_dataclass
class CostsParams:
    """Inference-cost model settings (``costs:`` section; see :mod:`tokstudy.costs`)."""

    shapes: Mapping[str, Mapping[str, Any]]  # name -> ModelShape fields
    sweep: tuple[str, ...]  # variants fitted for NSL(V)
    domain: Domain
    base_vocab_size: Pos  # vocab of the NSL base tokenizer (Llama 2)
    dtype_bytes: Pos
    doc_bytes: Pos
    memory_settings: tuple[tuple[Pos, Pos], ...]
    vocab_min: Pos
    vocab_max: Pos
    vocab_points: Pos
    speed_regime: Literal["compute", "memory", "steps"]
    speed_check_regime: Literal["compute", "memory", "steps"]  # what measured small-batch decoding is checked against
    speed_check_rounds: Pos  # round-robin timing rounds over the random-weight models (best kept)
    speed_check_prompts: Pos  # HumanEval prompts each random-weight model generates from
    speed_check_max_new_tokens: Pos  # tokens generated per prompt


@_dataclass
class ModelSize:
    """A named LlamaConfig shape (``train.sizes``); the vocab size comes from the tokenizer."""

    name: str
    n_layers: Pos
    d_model: Pos
    n_heads: Pos
    d_ff: Pos
    n_kv_heads: Pos | None  # None: = n_heads (no GQA)
    rope_theta: PosFloat
    pad_vocab_to: Pos  # embedding rows rounded up to a multiple of this (1: no padding)
    tie_embeddings: bool  # Llama unties; transfer handles both ends

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")


@_dataclass
class TrainParams:
    """One training stage (``train`` + ``train.<stage>``, profile overrides merged in), resolved."""

    stage: choices.TrainStage
    size: ModelSize
    seq_len: Pos
    batch_size: Pos  # sequences per micro-batch per process
    grad_accum: Pos
    lr: PosFloat
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)]  # cosine decays to lr * min_lr_ratio
    warmup_steps: NonNeg
    weight_decay: NonNegFloat
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]]
    grad_clip: NonNegFloat
    tokens: NonNeg  # run length when none is passed (fine-tunes take theirs from the model run)
    checkpoint_every: Pos
    keep_checkpoints: Pos
    eval_every: Pos
    eval_batches: Pos
    log_every: Pos
    val_tokens: Pos
    compile: Literal["auto"] | bool  # torch.compile: auto = on CUDA only
    fsdp: bool  # FSDP2 instead of DDP under torchrun
    precision: Literal["auto", "bf16", "fp32"]  # autocast dtype over fp32 weights: auto = bf16 on CUDA, fp32 on CPU
    seeds: Pos  # replicates of each run of this stage: data seeds seed, seed+1, ... (ModelRun.replicates)


@_dataclass
class ModelRun:
    """A named model-side experiment (``models``): what to start from, which tokenizer, how many tokens."""

    name: str
    stage: choices.TrainStage
    tokenizer: str  # a tokenizer variant name
    init: str  # the model directory it starts from: scratch | another run (keep) | <tokenizer>-<method>-init
    method: choices.InitMethod  # how the base model's embeddings reach `tokenizer`
    mix: str  # training documents (a key of `mixes`)
    budget: str | None  # a key of train.budget_bytes; null: train.pretrain.tokens (pretrain runs)
    tokens: Pos | None  # pretrain runs: train.pretrain.tokens; fine-tunes: None (one pass over `bytes` of text)
    bytes: Pos | None  # fine-tunes: UTF-8 bytes of training text (the same text whatever the tokenizer)
    seeds: Pos  # replicates (train.<stage>.seeds): the same run with other data seeds
    chunk_bytes: Pos | None  # fine-tunes: train.finetune_chunk_bytes (tokstudy.finetune_data)

    def replicates(self, seed: int) -> tuple[tuple[str, int], ...]:
        """``(model name, data seed)`` of each replicate, the run's own name first: ``fvt-b2`` (``seed``),
        ``fvt-b2-s1`` (``seed + 1``), ... A replicate differs only in the data seed, which picks the
        fine-tune's chunks and their order; every replicate with the same index sees the same text."""
        return tuple((self.name if k == 0 else f"{self.name}-s{k}", seed + k) for k in range(self.seeds))

    @property
    def init_model(self) -> str | None:
        """The model directory name this run starts from (``paths.model_dir``), None from scratch.

        ``keep`` starts from another run; ``fvt`` / ``random`` from the transfer output
        ``<tokenizer>-<method>-init`` (``init`` names it so that dvc.yaml can depend on it).
        """
        return None if self.init == "scratch" else self.init


@_dataclass
class FocusSettings:
    """FOCUS's auxiliary fastText embeddings (``transfer.focus``, :class:`tokstudy.transfer.FocusAux`)."""

    dim: Pos
    epochs: Pos
    min_count: Pos
    max_bytes: Pos  # pipeline: auxiliary text sampled from the train split in the target variant's mix


@_dataclass
class TransferParams:
    """Embedding transfer (``transfer:``, :mod:`tokstudy.transfer`)."""

    base_tokenizer: str  # the variant the base model was trained with
    targets: tuple[str, ...]  # variants it switches to
    methods: tuple[choices.TransferMethod, ...]
    pad_to_multiple_of: Pos
    noise_std: NonNegFloat | None  # `mean` noise; None: 1% of the old rows' std
    focus: FocusSettings


@_dataclass
class AnalysisParams:
    """Vocabulary analyses (``analysis:``, notebook 09)."""

    overlap: tuple[str, ...]  # tokenizer variants or reference tokenizers
    sweep_variant: str
    sweep_compare: tuple[str, ...]  # vocab_sizes keys also trained on their own to check truncation
    table1: tuple[str, ...]  # rows of Table 1 (results/<profile>/table1_nsl.*): variants or references


@_dataclass
class BpbSettings:
    seq_len: Pos
    batch_size: Pos
    context: NonNeg
    max_docs: Pos
    max_bytes: Pos


# The least a sandboxed completion may get (evaluate.humaneval): under these a correct completion fails and
# pass@k reads 0. Measured with bwrap on the 164 HumanEval canonical solutions: 14 MB of address space fails
# all, 16 MB passes 162, 20 MB all 164 (tests/test_sandbox.py checks the floor passes them); x3 for margin.
SANDBOX_MIN_MEMORY_MB = 64
SANDBOX_MIN_TIMEOUT_S = 1.0


@_dataclass
class HumanevalSettings:
    limit: Pos | None  # None: all problems
    max_new_tokens: Pos
    batch_size: Pos
    workers: Pos
    timeout_s: PosFloat
    memory_mb: Pos
    n: Pos  # samples per problem (1 with temperature 0: greedy)
    temperature: NonNegFloat  # 0: greedy
    top_p: Annotated[float, Field(gt=0, le=1)]
    k: tuple[Pos, ...]  # pass@k reported for each k (each <= n)

    def __post_init__(self):
        if self.memory_mb < SANDBOX_MIN_MEMORY_MB:
            raise ValueError(f"memory_mb {self.memory_mb} is under {SANDBOX_MIN_MEMORY_MB}: the sandboxed Python needs "
                             f"~20 MB of address space to run a correct solution at all (every canonical HumanEval "
                             f"solution fails at 14 MB), so pass@k would read 0; give >= {SANDBOX_MIN_MEMORY_MB}")
        if self.timeout_s < SANDBOX_MIN_TIMEOUT_S:
            raise ValueError(f"timeout_s {self.timeout_s} is under {SANDBOX_MIN_TIMEOUT_S}: starting the sandbox "
                             f"alone takes ~0.1-0.3 s, so correct solutions would time out; give >= "
                             f"{SANDBOX_MIN_TIMEOUT_S}")
        if not self.k or max(self.k) > self.n:
            raise ValueError(f"every k of {list(self.k)} must be <= n = {self.n} (pass@k needs n >= k samples)")
        if self.temperature == 0 and self.n != 1:
            raise ValueError(f"temperature 0 is greedy decoding: its n samples would be identical; set n: 1 "
                             f"(got n = {self.n}) or a temperature > 0")


@_dataclass
class SolutionBpbSettings:
    limit: Pos | None  # problems scored (None: all)
    n_boot: Pos  # bootstrap resamples over problems
    confidence: Annotated[float, Field(gt=0, lt=1)]


@_dataclass
class MbppSettings:
    path: str | None
    limit: Pos | None
    max_new_tokens: Pos
    batch_size: Pos


@_dataclass
class SpeedSettings:
    prompts: Pos
    max_new_tokens: Pos
    warmup: NonNeg


@_dataclass
class EvaluateParams:
    """Evaluation settings (``evaluate:``, :mod:`tokstudy.evaluate`)."""

    device: str  # auto | cpu | cuda[:N]
    sandbox: choices.SandboxBackend  # how generated code is isolated
    bpb: BpbSettings
    solution_bpb: SolutionBpbSettings
    humaneval: HumanevalSettings
    mbpp: MbppSettings
    speed: SpeedSettings


@_dataclass
class Params:
    profile: str
    seed: int
    corpus: CorpusParams
    sources: Mapping[str, SourceSpec]
    mixes: Mapping[str, Mapping[str, float]]
    vocab_sizes: Mapping[str, Pos]
    tokenizers: Mapping[str, TokenizerVariant]
    metrics: MetricsParams
    costs: CostsParams
    trains: Mapping[str, TrainParams]  # stage -> settings
    models: Mapping[str, ModelRun]
    transfer: TransferParams
    analysis: AnalysisParams
    evaluate: EvaluateParams

    def tokenizer(self, name: str) -> TokenizerVariant:
        try:
            return self.tokenizers[name]
        except KeyError:
            raise ParamsError(
                f"unknown tokenizer variant {name!r}; params.yaml `tokenizers` defines {sorted(self.tokenizers)}"
            ) from None

    def mix(self, name: str) -> Mapping[str, float]:
        try:
            return self.mixes[name]
        except KeyError:
            raise ParamsError(f"unknown mix {name!r}; params.yaml `mixes` defines {sorted(self.mixes)}") from None

    def replicate(self, name: str) -> tuple[ModelRun, int, int]:
        """``(run, replicate index, data seed)`` of a model name: a run of ``models`` (index 0) or one of its
        replicates ``<run>-s<k>`` (:meth:`ModelRun.replicates`); anything else is a :class:`ParamsError`."""
        for run in self.models.values():
            for k, (rep, data_seed) in enumerate(run.replicates(self.seed)):
                if rep == name:
                    return run, k, data_seed
        raise ParamsError(f"unknown model run {name!r}; params.yaml `models` defines {sorted(self.models)} "
                          f"(and their replicates <run>-s1, ...)")

    def model(self, name: str) -> ModelRun:
        if name not in self.models:
            raise ParamsError(f"unknown model run {name!r}; params.yaml `models` defines {sorted(self.models)}")
        return self.models[name]

    def train(self, stage: str) -> TrainParams:
        """The resolved training settings of ``stage`` (pretrain | finetune)."""
        if stage not in self.trains:
            raise ParamsError(f"unknown train stage {stage!r}; choose one of {STAGES}")
        return self.trains[stage]


def load(profile: str | None = None, path: str | Path | None = None) -> Params:
    """Load ``params.yaml`` and resolve ``profile`` (default: the file's ``profile`` key)."""
    file = Path(path) if path else paths.PARAMS_FILE
    raw = read_yaml(file)
    fail = lambda ypath, problem: ParamsError(f"{file}: {ypath}: {problem}")  # noqa: E731
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown top-level key; allowed: {sorted(TOP_KEYS)}")
    profiles = raw.get("profiles")
    if not isinstance(profiles, Mapping) or not profiles:
        raise fail("profiles", "missing or empty; define at least one profile")
    default = raw.get("profile")
    if default not in profiles:
        raise fail("profile", f"unknown profile {default!r}; `profiles` defines {sorted(profiles)}")
    profile = profile or default
    if profile not in profiles:
        raise fail("profiles", f"unknown profile {profile!r}; `profiles` defines {sorted(profiles)}")
    for name, block in profiles.items():
        extra = sorted(set(block or {}) - set(PROFILE_SECTIONS))
        if extra:
            raise fail(f"profiles.{name}.{extra[0]}",
                       f"not a section a profile may override; allowed: {list(PROFILE_SECTIONS)}")
    ld = Loader(raw, profile, file)
    seed = ld.need(raw, "seed", "")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise fail("seed", f"must be an integer, got {seed!r}")

    corpus = ld.build(CorpusParams, *ld.section("corpus"))
    src_defaults = ld.need(raw, "source_defaults", "")
    sources = {
        name: ld.build(SourceSpec, merge(src_defaults, spec or {}),
                       [(f"sources.{name}", spec or {}), ("source_defaults", src_defaults)],
                       home=f"sources.{name}", name=name)
        for name, spec in (ld.need(raw, "sources", "") or {}).items()
    }
    mixes = _mixes(ld)
    vocab_sizes, vlayers = ld.section("vocab_sizes")
    for key, size in vocab_sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise fail(origin(vlayers, [str(key)], False), f"must be a positive integer, got {size!r}")
    vocab_sizes = {str(k): v for k, v in vocab_sizes.items()}
    tokenizers = _tokenizers(ld, vocab_sizes, mixes)
    metrics = ld.build(MetricsParams, *ld.section("metrics"))
    costs = ld.build(CostsParams, *ld.section("costs"))
    train, tlayers = ld.section("train")
    trains = {stage: _train(ld, train, tlayers, stage) for stage in STAGES}
    models = _models(ld, train, tlayers, trains, tokenizers, mixes)
    transfer = ld.build(TransferParams, ld.need(raw, "transfer", ""), [("transfer", raw["transfer"])])
    analysis = ld.build(AnalysisParams, *ld.section("analysis"))
    evaluate = ld.build(EvaluateParams, *ld.section("evaluate"))
    _check_names(ld, tokenizers, metrics, costs, transfer, analysis)
    return Params(profile=profile, seed=seed, corpus=corpus, sources=sources, mixes=mixes, vocab_sizes=vocab_sizes,
                  tokenizers=tokenizers, metrics=metrics, costs=costs, trains=trains, models=models,
                  transfer=transfer, analysis=analysis, evaluate=evaluate)


def _mixes(ld: Loader) -> dict[str, dict[str, float]]:
    mixes = {}
    for name, mix in (ld.need(ld.raw, "mixes", "") or {}).items():
        ok = isinstance(mix, Mapping) and set(mix) <= set(DOMAINS) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in mix.values())
        if not ok or abs(sum(mix.values()) - 1.0) > 1e-6:
            raise ld.fail(f"mixes.{name}", f"must give non-negative shares of {DOMAINS} that sum to 1, got {mix!r}")
        mixes[name] = {k: float(v) for k, v in mix.items()}
    return mixes


def _tokenizers(ld: Loader, vocab_sizes: Mapping[str, int], mixes: Mapping) -> dict[str, TokenizerVariant]:
    defaults, dlayers = ld.section("tokenizer")
    out = {}
    for name, spec in (ld.need(ld.raw, "tokenizers", "") or {}).items():
        where = f"tokenizers.{name}"
        spec = dict(spec or {})
        vocab = ld.need(spec, "vocab", where)
        spec.pop("vocab")
        if isinstance(vocab, bool) or not (isinstance(vocab, int) or vocab in vocab_sizes):
            raise ld.fail(f"{where}.vocab",
                          f"{vocab!r} is neither an integer nor a key of vocab_sizes {sorted(vocab_sizes)}")
        data = merge(defaults, spec)
        if data.get("mix") not in mixes:
            raise ld.fail(f"{where}.mix", f"unknown mix {data.get('mix')!r}; `mixes` defines {sorted(mixes)}")
        if (data.get("regex") is None) == (data.get("pattern") is None):
            raise ld.fail(where, "give exactly one of `regex` (a pre-tokenizer name) and `pattern` (a raw regex)")
        if data.get("regex") is not None and data["regex"] not in choices.REGEXES:
            raise ld.fail(f"{where}.regex",
                          f"unknown pre-tokenizer {data['regex']!r}; choose one of {sorted(choices.REGEXES)}")
        size = vocab if isinstance(vocab, int) else vocab_sizes[vocab]
        out[name] = ld.build(TokenizerVariant, data, [(where, spec), *dlayers], name=name, vocab=vocab, vocab_size=size,
                             truncate_of=None)
    return out | _truncations(ld, vocab_sizes, out)


def _truncations(ld: Loader, vocab_sizes: Mapping[str, int], trained: Mapping) -> dict[str, TokenizerVariant]:
    """``truncations:``: variants made of the first ``vocab`` tokens of a trained variant (``of``)."""
    import dataclasses

    out = {}
    for name, spec in (ld.raw.get("truncations") or {}).items():
        where, spec = f"truncations.{name}", dict(spec or {})
        extra = sorted(set(spec) - {"of", "vocab"})
        if extra:
            raise ld.fail(f"{where}.{extra[0]}", "unknown key; a truncation has only `of` and `vocab`")
        of, vocab = ld.need(spec, "of", where), ld.need(spec, "vocab", where)
        if name in trained or of not in trained:
            raise ld.fail(where if name in trained else f"{where}.of",
                          "name already in `tokenizers`" if name in trained
                          else f"{of!r} is not a variant of `tokenizers` {sorted(trained)}")
        if isinstance(vocab, bool) or not (isinstance(vocab, int) or vocab in vocab_sizes):
            raise ld.fail(f"{where}.vocab",
                          f"{vocab!r} is neither an integer nor a key of vocab_sizes {sorted(vocab_sizes)}")
        size = vocab if isinstance(vocab, int) else vocab_sizes[vocab]
        if size > trained[of].vocab_size:
            raise ld.fail(f"{where}.vocab", f"{size} exceeds the vocab_size {trained[of].vocab_size} of {of!r}")
        out[name] = dataclasses.replace(trained[of], name=name, vocab=vocab, vocab_size=size, truncate_of=of)
    return out


def _train(ld: Loader, train: Mapping, layers: list, stage: str) -> TrainParams:
    """``train`` merged with ``train.<stage>``; ``size`` resolved from ``train.sizes``."""
    flat = {k: v for k, v in train.items() if k not in ("sizes", "budget_bytes", "finetune_chunk_bytes", *STAGES)}
    over = ld.need(train, stage, "train") or {}
    data = merge(flat, over)
    slayers = [(f"{p}.{stage}", (d.get(stage) or {})) for p, d in layers] + layers
    sizes = ld.need(train, "sizes", "train") or {}
    size = data.pop("size", None)
    if size not in sizes:
        raise ld.fail(origin(slayers, ["size"], False), f"{size!r} is not a key of train.sizes {sorted(sizes)}")
    model_size = ld.build(ModelSize, sizes[size], [(f"{p}.sizes.{size}", (d.get("sizes") or {}).get(size) or {})
                                                   for p, d in layers], name=size)
    return ld.build(TrainParams, data, slayers, stage=stage, size=model_size)


def _models(ld: Loader, train: Mapping, layers: list, trains: Mapping[str, TrainParams], tokenizers: Mapping,
            mixes: Mapping) -> dict[str, ModelRun]:
    """Every run of ``models``: ``bytes`` from ``train.budget_bytes``, or ``tokens`` from ``train.pretrain.tokens``."""
    budgets = ld.need(train, "budget_bytes", "train") or {}
    pretrain_tokens = trains["pretrain"].tokens
    chunk = ld.need(train, "finetune_chunk_bytes", "train")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk <= 0:
        raise ld.fail(origin(layers, ["finetune_chunk_bytes"], False), f"must be a positive byte count, got {chunk!r}")
    for key, value in budgets.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ld.fail(origin(layers, ["budget_bytes", str(key)], False),
                          f"must be a positive byte count, got {value!r}")
    groups = ld.need(ld.raw, "models", "") or {}
    for group in groups:
        if group not in STAGES:
            raise ld.fail(f"models.{group}", f"unknown group; `models` holds one mapping of runs per stage {STAGES}")
    specs = {}
    for stage in STAGES:
        for name, spec in (ld.need(groups, stage, "models") or {}).items():
            if name in specs:
                raise ld.fail(f"models.{stage}.{name}", f"run name already used under models.{specs[name][0]}")
            specs[name] = (stage, spec)
    runs = {}
    for name, (stage, spec) in specs.items():
        where, spec = f"models.{stage}.{name}", dict(spec or {})
        if "stage" in spec:
            raise ld.fail(f"{where}.stage", f"remove it: the group models.{stage} names the stage")
        budget = ld.need(spec, "budget", where)
        if budget is None and stage == "finetune":
            raise ld.fail(f"{where}.budget",
                          f"a fine-tune needs a budget, a key of train.budget_bytes {sorted(budgets)}")
        if budget is not None and budget not in budgets:
            raise ld.fail(f"{where}.budget", f"{budget!r} is not a key of train.budget_bytes of profile {ld.profile!r} "
                                             f"{sorted(budgets)}")
        if budget is None and pretrain_tokens <= 0:
            raise ld.fail(origin(layers, ["pretrain", "tokens"], False),
                          f"{where} (budget: null) pretrains on train.pretrain.tokens, which must be positive")
        tokens, nbytes = (pretrain_tokens, None) if budget is None else (None, budgets[budget])
        run = ld.build(ModelRun, spec, [(where, spec)], name=name, stage=stage, tokens=tokens, bytes=nbytes,
                       seeds=trains[stage].seeds, chunk_bytes=None if budget is None else chunk)
        if run.tokenizer not in tokenizers:
            raise ld.fail(f"{where}.tokenizer",
                          f"unknown tokenizer variant {run.tokenizer!r}; defined: {sorted(tokenizers)}")
        if run.mix not in mixes:
            raise ld.fail(f"{where}.mix", f"unknown mix {run.mix!r}; `mixes` defines {sorted(mixes)}")
        transferred = f"{run.tokenizer}-{run.method}-init"
        if run.method != "keep" and run.init != transferred:
            raise ld.fail(f"{where}.init", f"a {run.method} run starts from the transfer output {transferred!r} "
                                           f"(<tokenizer>-<method>-init), not {run.init!r}")
        if run.method == "keep" and run.init != "scratch" and run.init not in specs:
            raise ld.fail(f"{where}.init", f"{run.init!r} is neither 'scratch' nor a run of `models` {sorted(specs)}")
        runs[name] = run
    for n, run in runs.items():
        for r, _ in run.replicates(0)[1:]:
            if r in runs:
                raise ld.fail(f"models.{run.stage}.{r}", f"the name of replicate {r!r} of run {n!r} "
                                                         f"(train.{run.stage}.seeds: {run.seeds}); rename the run")
    return runs


def _check_names(ld: Loader, tokenizers: Mapping, metrics: MetricsParams, costs: CostsParams,
                 transfer: TransferParams, analysis: AnalysisParams) -> None:
    """Names one section uses of another: variants, reference tokenizers."""
    variants, refs = sorted(tokenizers), sorted(choices.REFERENCES)
    checks = [("metrics.base", [metrics.base], refs), ("metrics.references", metrics.references, refs),
              ("costs.sweep", costs.sweep, variants), ("transfer.base_tokenizer", [transfer.base_tokenizer], variants),
              ("transfer.targets", transfer.targets, variants),
              ("analysis.sweep_variant", [analysis.sweep_variant], variants),
              ("analysis.overlap", analysis.overlap, variants + refs),
              ("analysis.table1", analysis.table1, variants + refs)]
    for ypath, names, allowed in checks:
        bad = [n for n in names if n not in allowed]
        if bad:
            section = ypath.split(".")[0]
            if section in PROFILE_SECTIONS and ypath.split(".")[1] in (ld.prof.get(section) or {}):
                ypath = f"profiles.{ld.profile}.{ypath}"
            raise ld.fail(ypath, f"unknown name(s) {bad}; choose from {allowed}")
