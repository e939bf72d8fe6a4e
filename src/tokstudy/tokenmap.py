"""Which old tokens make up each new token: vocabularies matched on raw bytes.

Tokens are matched on **raw bytes**, never on vocabulary strings, so byte-level
(``Ġdef``), SentencePiece (``▁def``, ``<0x0A>``) and byte-fallback vocabularies
map onto each other correctly (docs/paper.md, "Embedding transfer").
:func:`map_tokens` gives, for every new id, the old ids that encode the same
bytes; :func:`extend_tokenizer` builds the paper's "Merged" tokenizer (the old
vocabulary plus the new tokens whose bytes it lacks).

Special tokens map by content to the old special with the same string; else by
role (a new ``<|begin_of_text|>`` to the old ``<s>``, an end-of-text token to
the old eos, ...); a special with no counterpart (``<pad>``, FIM tokens when
the old vocab has none) maps to nothing (``special_mean``).

Tokenizers are used through the duck-typed ``tokstudy.tokenizer.TokenizerHandle``
contract: ``.name``, ``.vocab_size``, ``.encode``, ``.decode``,
``.token_bytes(id)``, ``.encode_bytes(data)``, ``.special_ids``, ``.to_hf()``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tokstudy import bpe
from tokstudy.errors import TokenMapError

log = logging.getLogger(__name__)

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


# --------------------------------------------------------------------------- token bytes


BYTE_TO_UNICODE = bpe.bytes_to_unicode()  # the ByteLevel alphabet
UNICODE_TO_BYTE = {c: b for b, c in BYTE_TO_UNICODE.items()}


def piece_bytes(piece: str, scheme: str) -> bytes:
    """Raw bytes of a vocabulary string.

    ``scheme`` is ``"bytelevel"`` (GPT-2 style: ``Ġdef`` -> ``b" def"``) or
    ``"sentencepiece"`` (``▁def`` -> ``b" def"``). In both, a byte-fallback piece
    ``<0xNN>`` is the single byte ``0xNN`` (``<0x0A>`` -> ``b"\\n"``).
    """
    m = _BYTE_PIECE.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    if scheme == "bytelevel":
        try:
            return bytes(UNICODE_TO_BYTE[c] for c in piece)
        except KeyError as e:
            raise TokenMapError(
                f"{piece!r} is not a byte-level piece (character {e.args[0]!r}); use scheme='sentencepiece'"
            ) from None
    if scheme == "sentencepiece":
        return piece.replace("\u2581", " ").encode("utf-8")
    raise TokenMapError(f"unknown piece scheme {scheme!r}; use 'bytelevel' or 'sentencepiece'")


def _vocab_strings(tok) -> list[str]:
    """The vocabulary string of every id of a tokenizer handle (for specials and ``<0xNN>`` pieces).

    Uses the handle's ``tokenizers.Tokenizer`` (``.tokenizer``) or ``.id_to_token``;
    otherwise (tiktoken) ``.special_text`` for specials and ``""`` elsewhere.
    """
    inner = getattr(tok, "tokenizer", None)
    if inner is not None and hasattr(inner, "id_to_token"):
        return [inner.id_to_token(i) or "" for i in range(tok.vocab_size)]
    f = getattr(tok, "id_to_token", None)
    if callable(f):
        return [f(i) or "" for i in range(tok.vocab_size)]
    out = [""] * tok.vocab_size
    text = getattr(tok, "special_text", None)
    if callable(text):
        for i in tok.special_ids:
            out[i] = text(i)
        return out
    hf = tok.to_hf()
    return [t or "" for t in hf.convert_ids_to_tokens(list(range(tok.vocab_size)))]


def special_role(content: str) -> str | None:
    """``"bos"``, ``"eos"``, ``"pad"``, ``"unk"`` or ``None`` for a special token's content."""
    t = content.lower()
    if "fim" in t or t in ("<pre>", "<suf>", "<mid>", "▁<pre>", "▁<suf>", "▁<mid>"):
        return None
    if t in ("<s>", "[cls]") or any(k in t for k in ("begin_of_text", "bos", "startoftext", "start_of_text")):
        return "bos"
    if t in ("</s>", "[sep]", "<eot>", "▁<eot>") or any(k in t for k in ("end_of_text", "endoftext", "eos", "eot_id")):
        return "eos"
    if "pad" in t:
        return "pad"
    if "unk" in t:
        return "unk"
    return None


def special_ids_by_role(tok) -> dict[str, int]:
    """``{"bos": id, "eos": id, "pad": id, ...}`` for the special tokens of a handle (first match wins)."""
    strings = _vocab_strings(tok)
    out: dict[str, int] = {}
    for i in sorted(tok.special_ids):
        role = special_role(strings[i])
        if role and role not in out:
            out[role] = i
    return out


# --------------------------------------------------------------------------- mapping


@dataclass
class TokenMap:
    """For every new id, the old ids that encode the same raw bytes.

    ``kinds[i]`` is ``"exact"`` (one old token with the same bytes),
    ``"composed"`` (several old tokens, FVT averages them), ``"special"``
    (mapped to one old special token) or ``"special_mean"`` (no counterpart:
    ``pieces[i] == []``, initialised with the mean of all old rows).
    """

    pieces: list[list[int]]
    kinds: list[str]
    new_name: str = ""
    old_name: str = ""
    byte_fallback: list[int] = field(default_factory=list)  # new ids mapped (partly) onto old <0xNN> tokens
    greedy: list[int] = field(default_factory=list)  # new ids mapped by the greedy byte fallback

    def copied(self) -> list[bool]:
        """Whether a new row is a straight copy of one old row (exact match or special)."""
        return [k in ("exact", "special") for k in self.kinds]

    def stats(self) -> dict[str, float | int]:
        regular = [i for i, k in enumerate(self.kinds) if k in ("exact", "composed")]
        composed = [i for i in regular if self.kinds[i] == "composed"]
        n = max(len(regular), 1)
        return {
            "n_new": len(self.pieces),
            "n_regular": len(regular),
            "n_exact": len(regular) - len(composed),
            "exact_share": (len(regular) - len(composed)) / n,
            "n_composed": len(composed),
            "mean_pieces": sum(len(self.pieces[i]) for i in regular) / n,
            "mean_pieces_composed": sum(len(self.pieces[i]) for i in composed) / max(len(composed), 1),
            "max_pieces": max((len(self.pieces[i]) for i in regular), default=0),
            "n_byte_fallback": len(self.byte_fallback),
            "n_greedy_fallback": len(self.greedy),
            "n_special_matched": self.kinds.count("special"),
            "n_special_mean": self.kinds.count("special_mean"),
        }


def _greedy(data: bytes, index: dict[bytes, int], max_len: int) -> list[int] | None:
    """Longest-match segmentation of ``data`` into old tokens (a lossless fallback)."""
    out, i = [], 0
    while i < len(data):
        for j in range(min(len(data), i + max_len), i, -1):
            tid = index.get(data[i:j])
            if tid is not None:
                out.append(tid)
                i = j
                break
        else:
            return None
    return out


def _round_trips(old_tok, ids: list, data: bytes, specials: set[int]) -> bool:
    """Whether old ``ids`` (from ``encode_bytes``) are valid, non-special and decode to exactly ``data``."""
    if not ids or not all(isinstance(t, int) and 0 <= t < old_tok.vocab_size and t not in specials for t in ids):
        return False
    try:
        return b"".join(old_tok.token_bytes(t) for t in ids) == data
    except Exception:  # noqa: BLE001 - a handle that cannot give the bytes does not round-trip
        return False


def _old_bytes_index(old_tok, old_strings: list[str]) -> dict[bytes, int]:
    """bytes -> old id; where several old tokens share bytes (``a`` and ``<0x61>``) prefer the one
    the old tokenizer itself produces for those bytes, else a non-byte-fallback piece."""
    groups: dict[bytes, list[int]] = {}
    specials = set(old_tok.special_ids)
    for i in range(old_tok.vocab_size):
        if i in specials:
            continue
        b = old_tok.token_bytes(i)
        if b:
            groups.setdefault(b, []).append(i)
    index = {}
    for b, ids in groups.items():
        if len(ids) > 1:
            try:
                enc = list(old_tok.encode_bytes(b))
            except Exception:  # noqa: BLE001 - any failure just means "no preference"
                enc = []
            if len(enc) == 1 and enc[0] in ids:
                index[b] = enc[0]
                continue
            ids = sorted(ids, key=lambda t: (bool(_BYTE_PIECE.match(old_strings[t])), t))
        index[b] = ids[0]
    return index


def map_tokens(new_tok, old_tok) -> TokenMap:
    """Map every new token to the old tokens with the same raw bytes (pure; see module docstring).

    Raises :class:`TokenMapError` when the old tokenizer cannot encode some
    bytes of a new token (no lossless segmentation exists in its vocabulary).
    """
    old_strings = _vocab_strings(old_tok)
    new_strings = _vocab_strings(new_tok)
    index = _old_bytes_index(old_tok, old_strings)
    max_len = max((len(b) for b in index), default=1)
    old_fallback = {i for i, s in enumerate(old_strings) if _BYTE_PIECE.match(s)}
    old_specials = {old_strings[i]: i for i in sorted(old_tok.special_ids)}
    old_roles = special_ids_by_role(old_tok)
    new_specials = set(new_tok.special_ids)
    old_special_ids = set(old_tok.special_ids)

    pieces: list[list[int]] = []
    kinds: list[str] = []
    byte_fallback: list[int] = []
    greedy: list[int] = []
    failures: list[tuple[int, str, bytes]] = []
    for i in range(new_tok.vocab_size):
        s = new_strings[i]
        b = b"" if i in new_specials else new_tok.token_bytes(i)
        if not b and i not in new_specials and _BYTE_PIECE.match(s):
            b = piece_bytes(s, "sentencepiece")
        if i in new_specials or not b:
            if s in old_specials:
                pieces.append([old_specials[s]])
                kinds.append("special")
            elif special_role(s) in old_roles and special_role(s) != "pad":
                pieces.append([old_roles[special_role(s)]])
                kinds.append("special")
            else:
                pieces.append([])
                kinds.append("special_mean")
            continue
        if b in index:
            pieces.append([index[b]])
            kinds.append("exact")
            if index[b] in old_fallback:
                byte_fallback.append(i)
            continue
        try:
            ids = list(old_tok.encode_bytes(b))
        except Exception as e:  # noqa: BLE001 - re-raised below if the fallback fails too
            log.debug("old encode_bytes(%r) failed: %s", b, e)
            ids = []
        if not _round_trips(old_tok, ids, b, old_special_ids):
            ids = _greedy(b, index, max_len)
            if ids is None:
                failures.append((i, s, b))
                continue
            greedy.append(i)
        pieces.append(ids)
        kinds.append("exact" if len(ids) == 1 else "composed")
        if old_fallback.intersection(ids):
            byte_fallback.append(i)
    if failures:
        shown = ", ".join(f"{i} {s!r} {b!r}" for i, s, b in failures[:5])
        raise TokenMapError(
            f"the old tokenizer {getattr(old_tok, 'name', '?')!r} cannot encode the bytes of {len(failures)} "
            f"new token(s) of {getattr(new_tok, 'name', '?')!r} (e.g. {shown}): its vocabulary lacks some single "
            "bytes. Use an old tokenizer with byte fallback (<0xNN> tokens) or a full byte-level alphabet."
        )
    if greedy:
        log.warning(
            "%d new tokens were mapped by greedy longest match because the old tokenizer's encode_bytes "
            "did not round-trip their bytes (e.g. new id %d)", len(greedy), greedy[0]
        )
    return TokenMap(pieces, kinds, getattr(new_tok, "name", ""), getattr(old_tok, "name", ""), byte_fallback, greedy)


# --------------------------------------------------------------------------- merged


def extend_tokenizer(old_tok, new_tok):
    """The paper's "Merged" tokenizer: the old one plus the new tokens whose bytes it lacks.

    Returns ``(hf_tokenizer, added_ids, added_bytes, n_skipped)``: a
    ``PreTrainedTokenizerFast`` of the old tokenizer (old ids unchanged) with the
    new tokens appended as *added tokens*, their new ids in the merged tokenizer
    and their bytes, and how many new tokens could not be added.

    Limitation (fine at smoke/cpu scale, not a faithful 80k SentencePiece
    extension): added tokens are matched leftmost-longest on the raw text before
    the old pre-tokenizer, not through BPE merges, so they ignore the new
    tokenizer's regex and slow encoding down for large additions; tokens that are
    not valid UTF-8 on their own (partial characters) cannot be added and are
    skipped (``n_skipped``).
    """
    from tokenizers import AddedToken

    old_strings = _vocab_strings(old_tok)
    present = set(_old_bytes_index(old_tok, old_strings))
    new_specials = set(new_tok.special_ids)
    new_strings = _vocab_strings(new_tok)
    candidates: list[tuple[str, bytes]] = []
    skipped = 0
    seen: set[bytes] = set()
    for i in range(new_tok.vocab_size):
        if i in new_specials or _BYTE_PIECE.match(new_strings[i]):
            continue
        b = new_tok.token_bytes(i)
        if not b or b in present or b in seen:
            continue
        seen.add(b)
        try:
            text = b.decode("utf-8")
        except UnicodeDecodeError:
            skipped += 1
            continue
        candidates.append((text, b))
    hf = hf_tokenizer(old_tok, special_ids_by_role(old_tok))
    n_before = len(hf)
    hf.add_tokens([AddedToken(t, normalized=False, special=False) for t, _ in candidates])
    added_ids, added_bytes = [], []
    for t, b in candidates:
        tid = hf.convert_tokens_to_ids(t)
        if tid is not None and tid >= n_before:
            added_ids.append(tid)
            added_bytes.append(b)
        else:
            skipped += 1
    order = sorted(range(len(added_ids)), key=lambda k: added_ids[k])
    added_ids = [added_ids[k] for k in order]
    added_bytes = [added_bytes[k] for k in order]
    if added_ids and added_ids != list(range(n_before, n_before + len(added_ids))):
        raise TokenMapError("merged tokenizer ids are not contiguous after the old vocabulary; this is a bug")
    log.info("merged %s + %s: %d tokens added, %d skipped", old_tok.name, new_tok.name, len(added_ids), skipped)
    return hf, added_ids, added_bytes, skipped


def map_added(old_tok, added_bytes: Sequence[bytes], new_tok) -> TokenMap:
    """A :class:`TokenMap` for the appended tokens of a merged tokenizer (old pieces of their bytes)."""

    class _Bytes:  # a minimal "new tokenizer" holding only the added tokens
        name = getattr(new_tok, "name", "")
        vocab_size = len(added_bytes)
        special_ids: set[int] = set()

        @staticmethod
        def token_bytes(i):
            return added_bytes[i]

        @staticmethod
        def id_to_token(i):
            return ""

    return map_tokens(_Bytes(), old_tok)


def hf_tokenizer(tok, roles: dict[str, int]):
    """``tok.to_hf()`` with bos/eos/pad set from the special tokens when the handle left them unset."""
    hf = tok.to_hf()
    for role in ("bos", "eos", "pad", "unk"):
        if role in roles and getattr(hf, f"{role}_token", None) is None:
            setattr(hf, f"{role}_token", hf.convert_ids_to_tokens(roles[role]))
    return hf
