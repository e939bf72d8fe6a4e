"""Byte-level BPE: training, saving, truncation and the vocab-size sweep.

Layout of every tokenizer we train (docs/paper.md#tokenizer-training, both engines)::

    ids 0..k-1        the variant's special tokens (k = 6 by default)
    ids k..k+255      the 256 ByteLevel alphabet symbols, in byte order 0x00..0xFF
                      (the full alphabet: every byte round-trips, no byte fallback needed)
    ids k+256..V-1    tokens created by the merges, in merge order

so ``vocab_size`` is exactly ``V``. The pre-tokenizer is ``Split(regex, isolated)`` +
``ByteLevel(add_prefix_space=False, use_regex=False)`` (:func:`tokstudy.pretok.hf_pre_tokenizer`),
the decoder is ``ByteLevel``. Deviation from the authors' files: they also carry
256 ``<0xNN>`` byte-fallback tokens and only the *observed* byte symbols; with
the full ByteLevel alphabet those are redundant, so we spend the slots on merges.

Engines: ``hf`` (HF ``tokenizers`` BpeTrainer, default), ``bpeasy`` (the
paper author's trainer, ``bpeasy.train_bpe``) and ``rustbpe`` (nanochat's trainer,
``rustbpe.Tokenizer.train_from_iterator``; no token-length cap, so ``max_token_length``
is refused unless it cannot bind); the byte ranks of the last two are converted to the
same layout. All are deterministic: none uses a random seed (``seed`` is
recorded only), and the same data gives a byte-identical ``tokenizer.json``.

``chunk_bytes`` cuts every training text at line ends into pieces of at most that
many bytes (:func:`chunk_texts`). Without pre-tokenization (identity) each piece is
one BPE "word", and the engines' merge step costs grow with the square of a word's
length: whole documents are slow, line-aligned pieces are not.


Pre-tokenization is a *name* of :data:`tokstudy.pretok.PRETOKENIZERS` (``regex``)
or an explicit raw ``pattern``, never a guess between the two. Loading tokenizers
is :mod:`tokstudy.tokenizer`; reference tokenizers are :mod:`tokstudy.reference`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tokstudy
from tokstudy import choices, paths, pretok
from tokstudy.errors import TokenizerError
from tokstudy.tokenizer import bytes_to_unicode, merge_pairs, ranks_to_merges, tokenizer_json

log = logging.getLogger(__name__)

ENGINES = choices.ENGINES  # one training function each (train)

__all__ = [
    "ENGINES",
    "build",
    "variant_fields",
    "TokenizerError",
    "check_out_dir",
    "TOKENIZER_FILES",
    "check_variant",
    "chunk_texts",
    "hf_configs",
    "save",
    "sweep_from_one_run",
    "train",
    "truncate",
]


# --------------------------------------------------------------------------- building
def build(
    specials: Sequence[str],
    merges: Iterable[tuple[str, str]],
    pattern: str | None,
    vocab_size: int | None = None,
):
    """A byte-level BPE ``tokenizers.Tokenizer`` in our layout from ordered merges (ByteLevel strings).

    Merges whose result is already a token (possible in HF's trainer) add no id; a
    merge whose result collides with a special token's string is dropped together
    with every later merge that uses it. Stops once ``vocab_size`` tokens exist.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models

    vocab: dict[str, int] = {}
    for s in specials:
        if s in vocab:
            raise TokenizerError(f"special token {s!r} is listed twice; make special_tokens unique")
        vocab[s] = len(vocab)
    for b in range(256):
        sym = bytes_to_unicode()[b]
        if sym in vocab:
            raise TokenizerError(f"special token {sym!r} collides with a ByteLevel byte symbol; rename it")
        vocab[sym] = len(vocab)
    special_set = set(specials)
    kept: list[tuple[str, str]] = []
    banned: set[str] = set()
    for a, b in merges:
        if vocab_size is not None and len(vocab) >= vocab_size:
            break
        new = a + b
        if a in banned or b in banned or new in special_set:
            banned.add(new)
            continue
        if a not in vocab or b not in vocab:
            raise TokenizerError(f"merge ({a!r}, {b!r}) uses a token that no earlier merge created")
        kept.append((a, b))
        if new not in vocab:
            vocab[new] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=kept, byte_fallback=False, fuse_unk=False))
    tok.pre_tokenizer = pretok.hf_pre_tokenizer(pattern)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


# --------------------------------------------------------------------------- training
def _check_texts(texts) -> list[str]:
    texts = [t for t in texts if t]
    if not texts:
        raise TokenizerError("no training text: pass a non-empty list of strings (check the corpus and the mix)")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)][:3]
    if bad:
        raise TokenizerError(f"training texts must be str, got {bad}")
    return texts


def variant_fields(variant) -> dict[str, Any]:
    """A variant (a ``TokenizerVariant`` or a plain mapping) as a dict of its fields."""
    if dataclasses.is_dataclass(variant):
        return {f.name: getattr(variant, f.name) for f in dataclasses.fields(variant)}
    return dict(variant)


@dataclasses.dataclass(frozen=True)
class Settings:
    """A variant's training settings, resolved and checked (:func:`check_variant`)."""

    name: str | None
    engine: str
    vocab_size: int
    specials: tuple[str, ...]
    max_token_length: int
    regex: str | None  # the pre-tokenizer name, or None for a raw pattern
    pattern: str | None  # the pattern used, verbatim (None: identity, no split)
    chunk_bytes: int | None  # texts cut at line ends into pieces of at most this many bytes


def check_variant(variant, engine: str | None = None) -> Settings:
    """Resolve and check ``variant``'s settings without touching data (cheap: call it before reading a corpus).

    ``variant`` is a :class:`tokstudy.params.TokenizerVariant` or a mapping with
    ``name, vocab_size`` and exactly one of ``regex`` (a name of
    :data:`tokstudy.pretok.PRETOKENIZERS`) or ``pattern`` (a raw regex), plus
    optional ``engine, max_token_length, special_tokens``.
    """
    v = variant_fields(variant)
    engine = engine or v.get("engine") or "hf"
    if engine not in ENGINES:
        raise TokenizerError(f"unknown BPE engine {engine!r}; choose one of {ENGINES}")
    specials = tuple(v.get("special_tokens") or ())
    vocab_size = int(v["vocab_size"])
    minimum = 256 + len(specials)
    if vocab_size < minimum:
        raise TokenizerError(
            f"vocab_size {vocab_size} is too small for variant {v.get('name')!r}: the minimum is {minimum} "
            f"(256 byte symbols + {len(specials)} special tokens); raise `vocab` in params.yaml"
        )
    pre = pretok.resolve(regex=v.get("regex"), pattern=v.get("pattern"))
    return Settings(
        name=v.get("name"),
        engine=engine,
        vocab_size=vocab_size,
        specials=specials,
        max_token_length=int(v.get("max_token_length") or 128),
        regex=None if pre.name == "custom" else pre.name,
        pattern=pre.pattern,
        chunk_bytes=int(v["chunk_bytes"]) if v.get("chunk_bytes") else None,
    )


def chunk_texts(texts: Iterable[str], chunk_bytes: int) -> list[str]:
    """Every text cut after line ends into pieces of at most ``chunk_bytes`` UTF-8 bytes.

    Lines are kept whole and packed greedily; a single line longer than ``chunk_bytes`` is
    a piece of its own (never cut inside a line). Joining the pieces gives the texts back.

    >>> chunk_texts(["ab\\ncd\\nefgh\\n", "x"], 6)
    ['ab\\ncd\\n', 'efgh\\n', 'x']
    """
    if chunk_bytes <= 0:
        raise TokenizerError(f"chunk_bytes must be positive, got {chunk_bytes}; fix `chunk_bytes` in params.yaml")
    out: list[str] = []
    for text in texts:
        piece, size = [], 0
        for line in text.splitlines(keepends=True):
            n = len(line.encode("utf-8"))
            if piece and size + n > chunk_bytes:
                out.append("".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += n
        if piece:
            out.append("".join(piece))
    return out


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 of a list of texts: each text's UTF-8 bytes preceded by their length (8 bytes, big-endian)."""
    h = hashlib.sha256()
    for t in texts:
        data = t.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def train(texts: Iterable[str], variant, seed: int = 0, engine: str | None = None, info: dict | None = None):
    """Train a byte-level BPE ``tokenizers.Tokenizer`` of exactly ``variant.vocab_size`` tokens.

    ``variant``: see :func:`check_variant`. ``engine`` overrides ``variant.engine``.
    ``seed`` is recorded only: both engines are deterministic. If ``info`` is a
    dict it receives what ``meta.json`` should record: engine, regex name, the
    pattern verbatim, seconds, bytes, texts and their sha256 (:func:`texts_sha256`).
    """
    s = check_variant(variant, engine)
    texts = _check_texts(texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    log.info("training %s BPE %r: V=%d regex=%s on %d texts / %.1f MB", s.engine, s.name, s.vocab_size,
             s.regex or "(raw pattern)", len(texts), n_bytes / 1e6)
    t0 = time.perf_counter()
    pieces = chunk_texts(texts, s.chunk_bytes) if s.chunk_bytes else texts
    if s.engine == "hf":
        merges = _train_hf(pieces, s.specials, s.vocab_size, s.max_token_length, s.pattern)
    elif s.engine == "bpeasy":
        merges = _train_bpeasy(pieces, s.vocab_size - len(s.specials), s.max_token_length, s.pattern)
    else:
        merges = _train_rustbpe(pieces, s.vocab_size - len(s.specials), s.max_token_length, s.pattern)
    tok = build(s.specials, merges, s.pattern, s.vocab_size)
    seconds = time.perf_counter() - t0
    got = tok.get_vocab_size(with_added_tokens=True)
    if got != s.vocab_size:
        raise TokenizerError(
            f"{s.engine} training reached only {got} of {s.vocab_size} tokens: the data has too few distinct pairs "
            f"({n_bytes} bytes, max_token_length={s.max_token_length}); raise train_bytes or lower the vocab size"
        )
    log.info("trained %r in %.2f s (%.2f MB/s)", s.name, seconds, n_bytes / 1e6 / max(seconds, 1e-9))
    if info is not None:
        info.update(engine=s.engine, regex=s.regex, pattern=s.pattern, train_seconds=seconds, train_bytes=n_bytes,
                    train_texts=len(texts), train_pieces=len(pieces), chunk_bytes=s.chunk_bytes,
                    train_texts_sha256=texts_sha256(texts), seed=seed)
    return tok


def _train_hf(texts, specials, vocab_size, max_len, pattern):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pretok.hf_pre_tokenizer(pattern)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=max_len,
        min_frequency=0,
        show_progress=log.isEnabledFor(logging.INFO) or sys.stderr.isatty(),
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return merge_pairs(tokenizer_json(tok)["model"])


def _train_bpeasy(texts, vocab_size, max_len, pattern):
    try:
        import bpeasy
    except ImportError:
        raise TokenizerError("engine 'bpeasy' needs the bpeasy package: pip install bpeasy==0.1.6") from None
    # identity: one pre-token per text (bpeasy always needs a pattern)
    ranks = bpeasy.train_bpe(iter(texts), pattern or r"[\s\S]+", max_len, vocab_size)
    return ranks_to_merges(ranks)


def _train_rustbpe(texts, vocab_size, max_len, pattern):
    try:
        import rustbpe
    except ImportError:
        raise TokenizerError("engine 'rustbpe' needs the rustbpe package: pip install rustbpe==0.1.0") from None
    tok = rustbpe.Tokenizer()
    # identity: one pre-token per text, as for bpeasy
    tok.train_from_iterator(iter(texts), vocab_size, pattern=pattern or r"[\s\S]+")
    ranks = {bytes(t): r for t, r in tok.get_mergeable_ranks()}
    longest = max(len(t) for t in ranks)
    if longest > max_len:  # rustbpe has no cap: refuse rather than silently differ from the variant's definition
        raise TokenizerError(f"engine 'rustbpe' learned a {longest}-byte token but max_token_length is {max_len} "
                             "(rustbpe has no length cap); use engine hf or bpeasy for this variant")
    return ranks_to_merges(ranks)


# --------------------------------------------------------------------------- save
# What save() writes: AutoTokenizer.from_pretrained(folder) reads the first three (transformers 4.x and 5.x).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "meta.json")


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` if :func:`save` may replace it: new, or holding only :data:`TOKENIZER_FILES`."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        other = sorted(p.name for p in out_dir.iterdir() if p.name not in TOKENIZER_FILES)
        if other:
            raise TokenizerError(f"{out_dir} holds other files ({', '.join(other[:3])}): saving would replace them; "
                                 "choose a new or tokenizer-only folder (--out)")
    elif out_dir.exists():
        raise TokenizerError(f"{out_dir} is a file; choose a folder for the tokenizer (--out)")
    return out_dir


def hf_configs(tokenizer) -> tuple[dict, dict]:
    """``(tokenizer_config.json, special_tokens_map.json)`` contents for ``tokenizer``.

    BOS/EOS/PAD are :data:`tokstudy.tokenizer.SPECIAL_TOKENS` ``[:3]`` when the
    tokenizer has them as special tokens (a variant without them gets none); the
    other specials (FIM) are ``additional_special_tokens``. The class is
    ``PreTrainedTokenizerFast``, which transformers 4.x and 5.x both load.
    """
    from tokstudy.tokenizer import SPECIAL_TOKENS

    specials = [t["content"] for t in sorted(tokenizer_json(tokenizer).get("added_tokens", []), key=lambda t: t["id"])
                if t.get("special", True)]
    role_names = ("bos_token", "eos_token", "pad_token")
    roles = {k: s for k, s in zip(role_names, SPECIAL_TOKENS[:3], strict=True) if s in specials}
    extra = [s for s in specials if s not in roles.values()]
    smap = dict(roles, **({"additional_special_tokens": extra} if extra else {}))
    config = dict(smap, tokenizer_class="PreTrainedTokenizerFast", clean_up_tokenization_spaces=False,
                  add_bos_token=False, add_eos_token=False)
    return config, smap


def save(tokenizer, out_dir: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Atomically write :data:`TOKENIZER_FILES` into ``out_dir``; returns the tokenizer.json path.

    ``tokenizer_config.json`` and ``special_tokens_map.json`` (:func:`hf_configs`)
    make ``AutoTokenizer.from_pretrained(out_dir)`` know BOS/EOS/PAD.
    ``meta`` may hold a ``variant`` (dataclass), :func:`train`'s ``info`` and the
    data source; the vocab size, the sha256 of tokenizer.json and the tokstudy and
    tokenizers versions are added. Durations (keys ending ``_seconds``) are left out: meta.json
    says what the tokenizer is, so training it again on the same text gives the same folder
    byte for byte, and DVC does not rerun what reads it (the run record keeps the timing).
    The folder is replaced only once all files are
    written (a failure leaves an existing tokenizer as it was); a folder that holds
    anything else is refused rather than replaced.
    """
    from tokstudy.results import _jsonable

    out_dir = check_out_dir(out_dir)
    text = tokenizer.to_str(pretty=True)
    data = text.encode("utf-8")
    config, smap = hf_configs(tokenizer)
    meta = {k: v for k, v in _jsonable(dict(meta or {})).items() if not k.endswith("_seconds")}
    meta.update(
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        tokenizer_sha256=hashlib.sha256(data).hexdigest(),
        tokenizers_version=__import__("tokenizers").__version__,
        tokstudy_version=tokstudy.__version__,
    )
    with paths.atomic_dir(out_dir) as tmp:
        (tmp / "tokenizer.json").write_bytes(data)
        for name, obj in (("tokenizer_config.json", config), ("special_tokens_map.json", smap), ("meta.json", meta)):
            (tmp / name).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log.info("saved tokenizer (V=%d) to %s", meta["vocab_size"], out_dir)
    return out_dir / "tokenizer.json"


# --------------------------------------------------------------------------- truncation
def truncate(tokenizer, vocab_size: int):
    """The tokenizer made of the specials, the 256 byte symbols and the first merges, up to ``vocab_size`` tokens.

    One training run at the largest V gives the whole vocab sweep. Measured
    (tests/test_bpe.py, ~0.5 MB of stdlib code + prose, gpt4 regex): for the HF
    engine, truncating a V=1024 run to V in {262, 300, 400, 512, 768} gives a
    **byte-identical** ``tokenizer.json`` to training at V with the same data
    (BpeTrainer picks merges greedily by count; V only decides where it stops).
    bpeasy: truncating 768 -> 400 is identical too. On the cpu corpus (26 MB of the code70 mix, GPT-4
    regex) a 192k run truncated to 32k is byte-identical to training 32k on the same text.
    """
    from tokenizers import Tokenizer

    d = tokenizer_json(tokenizer)
    specials = [t["content"] for t in sorted(d.get("added_tokens", []), key=lambda t: t["id"])]
    minimum = 256 + len(specials)
    current = tokenizer.get_vocab_size(with_added_tokens=True)
    if not minimum <= vocab_size <= current:
        raise TokenizerError(f"truncate: vocab_size must be in [{minimum}, {current}], got {vocab_size}")
    model = d["model"]
    vocab = model["vocab"]
    kept = []
    for a, b in merge_pairs(model):
        if vocab[a + b] >= vocab_size:
            break
        kept.append([a, b])
    model["merges"] = kept
    model["vocab"] = {t: i for t, i in vocab.items() if i < vocab_size}
    return Tokenizer.from_str(json.dumps(d, ensure_ascii=False))

def sweep_from_one_run(texts, variant, sizes: Sequence[int], seed: int = 0, compare: bool | Sequence[int] = False,
                       big=None, one_run_seconds: float | None = None) -> list[dict]:
    """Derive a vocab-size sweep from one training run at the largest size.

    Trains ``variant`` once at ``max(sizes)`` (or takes ``big``, that run's tokenizer, with
    ``one_run_seconds`` its training time) and truncates it (:func:`truncate`) to every
    smaller size. ``compare`` (True: every size; or a list of sizes) also trains those sizes
    separately on ``texts`` (the slow way) and reports, per size, whether the two tokenizers
    are identical (``identical`` = 1.0 / 0.0), the share of equal vocabulary
    entries, and the seconds each way, so the time saved is measured rather
    than assumed. Returns tidy result rows (``metric``/``value`` + ``vocab_size``).
    """
    from tqdm.auto import tqdm

    texts = _check_texts(texts)
    sizes = sorted(set(int(v) for v in sizes))
    check = set(sizes) if compare is True else {int(v) for v in (compare or ())}
    if not check <= set(sizes):
        raise TokenizerError(f"sweep: compare sizes {sorted(check - set(sizes))} are not among the sizes {sizes}")
    if big is None:
        t0 = time.perf_counter()
        big = train(texts, dataclasses.replace(variant, vocab_size=sizes[-1]), seed=seed)
        one_run_seconds = time.perf_counter() - t0
    elif big.get_vocab_size(with_added_tokens=True) < sizes[-1]:
        raise TokenizerError(f"sweep: the given run has {big.get_vocab_size(with_added_tokens=True)} tokens, "
                             f"fewer than the largest size {sizes[-1]}")
    rows: list[dict] = [{"metric": "train_seconds_one_run", "value": one_run_seconds, "vocab_size": sizes[-1]}]
    separate_total = 0.0
    for v in tqdm(sizes, desc="vocab sweep", unit="size"):
        t0 = time.perf_counter()
        small = truncate(big, v)
        rows.append({"metric": "truncate_seconds", "value": time.perf_counter() - t0, "vocab_size": v})
        if v not in check:
            continue
        t0 = time.perf_counter()
        ref = train(texts, dataclasses.replace(variant, vocab_size=v), seed=seed)
        sec = time.perf_counter() - t0
        separate_total += sec
        a, b = small.get_vocab(with_added_tokens=True), ref.get_vocab(with_added_tokens=True)
        same = sum(1 for t, i in a.items() if b.get(t) == i)
        rows += [
            {"metric": "train_seconds_separate", "value": sec, "vocab_size": v},
            {"metric": "identical", "value": float(small.to_str() == ref.to_str()), "vocab_size": v},
            {"metric": "vocab_agreement", "value": same / max(len(a), len(b)), "vocab_size": v},
        ]
    if check == set(sizes) and one_run_seconds:
        rows.append({"metric": "time_saved_seconds", "value": separate_total - one_run_seconds,
                     "vocab_size": sizes[-1]})
        rows.append({"metric": "speedup", "value": separate_total / one_run_seconds, "vocab_size": sizes[-1]})
    for r in rows:
        r.update(tokenizer=variant.name, regex=variant.regex, mix=variant.mix, engine=variant.engine)
        if getattr(variant, "pattern", None) is not None:
            r.update(pattern=variant.pattern)
    return rows
