"""Tokenizer handles: one view of our BPEs, HF tokenizer.json files/dirs and the reference tokenizers.

:func:`load` takes a ``tokenizer.json`` path, a local HF tokenizer directory, a
reference or tiktoken name (:mod:`tokstudy.reference`) or a locally cached HF
model id, and returns a :class:`TokenizerHandle`
(``encode``, ``token_bytes``, ``decode``, ``to_hf``). Also here: the ByteLevel
alphabet and the merge helpers shared with training (:mod:`tokstudy.bpe`), the
special tokens of our tokenizers (:data:`SPECIAL_TOKENS`, defined only here), and
:func:`unique_labels` for naming several tokenizers in one table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from tokstudy import pretok, reference
from tokstudy.errors import TokenizerError

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "TokenizerError",
    "TokenizerHandle",
    "bytes_to_unicode",
    "from_bytelevel",
    "load",
    "merge_pairs",
    "ranks_to_merges",
    "to_bytelevel",
    "tokenizer_json",
    "unique_labels",
]

# The special tokens of every tokenizer we train, in id order 0..5 (BOS, EOS, PAD, then the FIM trio).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<pad>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
)
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = SPECIAL_TOKENS[:3]


# --------------------------------------------------------------------------- ByteLevel alphabet
@cache
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
    return dict(zip(bs, map(chr, cs), strict=True))


@cache
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def to_bytelevel(data: bytes) -> str:
    m = bytes_to_unicode()
    return "".join(m[b] for b in data)


def from_bytelevel(token: str) -> bytes:
    m = unicode_to_bytes()
    try:
        return bytes(m[c] for c in token)
    except KeyError as exc:
        raise TokenizerError(f"token {token!r} holds a character outside the ByteLevel alphabet: {exc}") from None


# --------------------------------------------------------------------------- merges
def tokenizer_json(tokenizer) -> dict:
    """The ``tokenizers.Tokenizer`` as its JSON dict."""
    return json.loads(tokenizer.to_str())


def merge_pairs(model_json: Mapping) -> list[tuple[str, str]]:
    """The ordered merges of a BPE ``model`` JSON, in either of HF's two formats."""
    out = []
    for m in model_json.get("merges", []):
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        out.append((a, b))
    return out


def ranks_to_merges(ranks: Mapping[bytes, int]) -> list[tuple[str, str]]:
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
        merges.append((to_bytelevel(parts[0]), to_bytelevel(parts[1])))
    return merges


# --------------------------------------------------------------------------- handles
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerHandle:
    """A uniform view of one tokenizer (ours, an HF tokenizer.json, or tiktoken).

    * ``encode(text)`` never adds special tokens, never matches special-token
      strings inside the text (non-special added tokens, such as llama.cpp's
      user-defined ones, are matched, as HF and llama.cpp do; their bytes are
      their text), and (for SentencePiece vocabs) adds **no dummy
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
            raise TokenizerError(
                f"{self.name}: some bytes of the input have no token; this vocabulary cannot encode them"
            )
        return ids


class _HFHandle(TokenizerHandle):
    """A ``tokenizers.Tokenizer``: byte-level BPE (``Ġ``) or SentencePiece-style BPE (``▁`` + ``<0xNN>``)."""

    def __init__(self, name: str, tokenizer, source: Path | None = None):
        from tokenizers import Tokenizer

        super().__init__(name, tokenizer)
        self.source = source
        d = tokenizer_json(tokenizer)
        text = json.dumps({k: d.get(k) for k in ("pre_tokenizer", "decoder", "normalizer")}, ensure_ascii=False)
        self.kind = "bytelevel" if '"ByteLevel"' in text else "spm" if "▁" in text else None
        if self.kind is None:
            raise TokenizerError(f"{name}: neither a ByteLevel nor a SentencePiece-style (▁) tokenizer; unsupported")
        self._added = {t["id"]: t for t in d.get("added_tokens", [])}
        # the encoding copy: no special-token matching, no dummy prefix; non-special added tokens (llama.cpp's
        # user-defined tokens, e.g. DeepSeek-Coder's "õ") are still matched in the text, as HF and llama.cpp do
        plain = dict(d, added_tokens=[t for t in self._added.values() if not t.get("special", True)],
                     post_processor=None)
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
        if i in self._added:  # a non-special added token is matched as its text: its bytes are the text's UTF-8
            return self._added[i]["content"].encode("utf-8")
        if self.kind == "bytelevel":
            try:
                return from_bytelevel(piece)
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
            ids = [t.id for t in self._plain.model.tokenize(to_bytelevel(data))] if data else []
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
            # strict=False: a tokenizer with fewer than three specials fills only the first roles
            kw.update({k: s for k, s in zip(names, specials[:3], strict=False)})
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
        vocab = {to_bytelevel(t): r for t, r in ranks.items()}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=ranks_to_merges(ranks)))
        tok.pre_tokenizer = pretok.hf_pre_tokenizer(self.tokenizer._pat_str)
        tok.decoder = decoders.ByteLevel()
        for s, _id in sorted(self.tokenizer._special_tokens.items(), key=lambda kv: kv[1]):
            tok.add_special_tokens([AddedToken(s, special=True, normalized=False)])
        return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                       eos_token="<|endoftext|>")


def _from_file(path: Path):
    """``tokenizers.Tokenizer.from_file`` with a one-line error naming the file."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TokenizerError(
            f"{path} is not a valid HF tokenizer.json ({reason}); re-train or re-save it, or point to another file"
        ) from None


def _hf_handle(name: str, tokenizer, source: Path) -> _HFHandle:
    try:
        return _HFHandle(name, tokenizer, source=source)
    except TokenizerError as exc:
        raise TokenizerError(f"{source}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - malformed JSON content surfaces as KeyError/TypeError/...
        raise TokenizerError(f"{source} has an unexpected tokenizer.json layout ({type(exc).__name__}: {exc}); "
                             "re-save it with `tokenizers` or point to another file") from None


_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_KNOWN_FORMS = ("a tokenizer.json file, a local HF tokenizer folder, a reference name (gpt2 llama2 starcoder ...), "
                "a tiktoken encoding or model name (cl100k_base, r50k_base, o200k_base, gpt-4o), or an org/name "
                "HF model id already in the local Hugging Face cache")


def _hf_cached(spec: str) -> Path | None:
    """The local snapshot folder of HF model id ``spec`` (``org/name``), offline; None if it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except LocalEntryNotFoundError:
        return None


def _load_dir(path: Path, name: str) -> TokenizerHandle:
    if (path / "tokenizer.json").is_file():
        return _hf_handle(name, _from_file(path / "tokenizer.json"), path / "tokenizer.json")
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        reason = " ".join(str(exc).split())
        raise TokenizerError(f"{path} holds no tokenizer.json and transformers cannot load it: {reason}") from None
    if not getattr(hf, "is_fast", False):
        raise TokenizerError(f"{path}: only fast (tokenizers-backed) HF tokenizers are supported")
    return _hf_handle(name, hf.backend_tokenizer, path)


def load(spec: str | os.PathLike) -> TokenizerHandle:
    """Load a tokenizer from any of the forms in ``_KNOWN_FORMS``, offline.

    Order: a reference or tiktoken name (:func:`tokstudy.reference.resolve`), an
    existing path, then an ``org/name`` HF model id found in the local HF cache
    (``huggingface_hub.snapshot_download(local_files_only=True)``; never downloads).
    Anything else, and any unreadable or malformed file, is a one-line
    :class:`TokenizerError` naming it.
    """
    ref_name = reference.resolve(spec) if isinstance(spec, str) else None
    if ref_name is not None:
        ref = reference.REFERENCES[ref_name]
        path = reference.fetch(ref_name)
        if ref["format"] == "tiktoken":
            return _TiktokenHandle(ref_name, reference.tiktoken_encoding(path, ref["encoding"]))
        path = reference.hf_json(ref_name)
        return _hf_handle(ref_name, _from_file(path), path)
    path = Path(spec)
    if path.is_dir():
        return _load_dir(path, path.name)
    if path.is_file():
        name = path.parent.name if path.name == "tokenizer.json" else path.stem
        return _hf_handle(name, _from_file(path), path)
    if isinstance(spec, str) and _HF_ID.match(spec):
        snapshot = _hf_cached(spec)
        if snapshot is not None:
            return _load_dir(snapshot, spec)
        raise TokenizerError(f"cannot load tokenizer {spec!r}: no such path, and no HF model {spec!r} in the local "
                             "Hugging Face cache (tokstudy never downloads it); give " + _KNOWN_FORMS)
    raise TokenizerError(f"cannot load tokenizer {spec!r}: give {_KNOWN_FORMS}")


def unique_labels(specs: Sequence[str | os.PathLike]) -> list[str]:
    """One distinct short label per tokenizer spec, in order.

    A reference name is its own label; a path is labelled by its folder (for a
    ``tokenizer.json``) or its name, and same-named paths get parent folders
    added until the labels differ (``a/gpt4-m`` vs ``b/gpt4-m``). The same
    file given twice is an error.
    """
    parts: list[tuple[str, ...]] = []
    for spec in specs:
        path = Path(spec)
        if isinstance(spec, str) and not path.exists() and (spec in reference.REFERENCES or _HF_ID.match(spec)):
            parts.append((spec,))
            continue
        full = path.resolve() if path.exists() else path
        parts.append(full.parent.parts if full.name == "tokenizer.json" else full.parts)
    depth = [1] * len(specs)
    while True:
        labels = ["/".join(p[-d:]).lstrip("/") or "/" for p, d in zip(parts, depth, strict=True)]
        groups: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            return labels
        for group in clashes:
            longer = [i for i in group if depth[i] < len(parts[i])]
            if not longer:
                given = " and ".join(repr(str(specs[i])) for i in group)
                raise TokenizerError(f"{given} are the same tokenizer; give each tokenizer once")
            for i in longer:
                depth[i] += 1
