"""Switch the tokenizer of a pre-trained causal LM: embedding transfer (paper §3.3, notes §7).

The model-side experiments start from a base LM pretrained with the general
tokenizer (``general-m``, our stand-in for Llama 2's) and swap in a code
tokenizer. New embedding rows are initialised by one of:

``fvt``     Fast Vocabulary Transfer (Gee et al. 2022). A new token whose raw
            bytes are one old token copies that row; any other new token is
            encoded with the *old* tokenizer and gets the mean of those rows.
``mean``    exact matches copied, every other row = mean of all old rows plus
            small Gaussian noise (like ``transformers``' ``mean_resizing``).
``random``  the paper's "without FVT" baseline: every row re-drawn from the
            model's own init distribution, ``N(0, config.initializer_range)``;
            nothing is transferred (``copy_exact=False``; pass ``True`` to copy
            exact matches anyway).
``merged``  the paper's "Merged" condition: keep the old vocabulary and its
            rows by index, append the new tokens whose bytes the old vocab lacks
            (rows by FVT). See :func:`extend_tokenizer` for its limitation.

Tokens are matched on **raw bytes**, never on vocabulary strings, so byte-level
(``Ġdef``), SentencePiece (``▁def``, ``<0x0A>``) and byte-fallback vocabularies
map onto each other correctly. FVT is applied to the input embeddings *and* an
untied LM head (and an output bias if present); tied models stay tied.

Special tokens map by content to the old special with the same string; else by
role (a new ``<|begin_of_text|>`` to the old ``<s>``, an end-of-text token to
the old eos, ...); a special with no counterpart (``<pad>``, FIM tokens when
the old vocab has none) gets the mean of all old rows.

Tokenizers are used through the duck-typed ``tokstudy.bpe.TokenizerHandle``
contract: ``.name``, ``.vocab_size``, ``.encode``, ``.decode``,
``.token_bytes(id)``, ``.encode_bytes(data)``, ``.special_ids``, ``.to_hf()``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from tokstudy import bpe, paths
from tokstudy import model as model_mod
from tokstudy.errors import TokstudyError

log = logging.getLogger(__name__)

METHODS = ("fvt", "mean", "random", "merged")
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TransferError(TokstudyError, RuntimeError):
    """The embedding transfer cannot run on these inputs; the message names the fix."""


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
            raise TransferError(f"{piece!r} is not a byte-level piece (character {e.args[0]!r}); use scheme='sentencepiece'") from None
    if scheme == "sentencepiece":
        return piece.replace("\u2581", " ").encode("utf-8")
    raise TransferError(f"unknown piece scheme {scheme!r}; use 'bytelevel' or 'sentencepiece'")


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

    Raises :class:`TransferError` when the old tokenizer cannot encode some
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
        if not b and not (i in new_specials) and _BYTE_PIECE.match(s):
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
        raise TransferError(
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


# --------------------------------------------------------------------------- init


def init_rows(
    old: torch.Tensor,
    tmap: TokenMap,
    method: str,
    *,
    copy_exact: bool | None = None,
    std: float = 0.02,
    noise_std: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """New rows (``len(tmap.pieces)`` x ``old.shape[1:]``) from old rows ``old`` by ``method``.

    Works on 2-D weight matrices and 1-D output biases. ``old`` must hold only
    the old tokenizer's true vocabulary (no padding rows). For ``random`` a bias
    is zeros (as ``_init_weights`` does). ``noise_std`` (``mean`` only) defaults
    to 1% of the old rows' standard deviation.
    """
    if method not in ("fvt", "mean", "random"):
        raise TransferError(f"unknown init method {method!r}; choose one of fvt, mean, random (or merged)")
    copy_exact = (method != "random") if copy_exact is None else copy_exact
    old = old.detach().float().cpu()
    n = len(tmap.pieces)
    is_bias = old.dim() == 1
    mean = old.mean(0)
    if method == "random":
        out = torch.zeros((n, *old.shape[1:])) if is_bias else torch.randn((n, *old.shape[1:]), generator=generator) * std
    elif method == "mean":
        ns = float(old.std()) * 0.01 if noise_std is None else float(noise_std)
        out = mean.expand(n, *old.shape[1:]).clone()
        if ns > 0 and not is_bias:
            out += torch.randn(out.shape, generator=generator) * ns
    else:  # fvt
        out = mean.expand(n, *old.shape[1:]).clone()
        for i, ids in enumerate(tmap.pieces):
            if ids:
                out[i] = old[ids].mean(0)
    if copy_exact:
        for i, ok in enumerate(tmap.copied()):
            if ok:
                out[i] = old[tmap.pieces[i][0]]
    if not torch.isfinite(out).all():
        raise TransferError(f"{method} produced non-finite rows; check the base model's embeddings for NaN/inf")
    return out


# --------------------------------------------------------------------------- swap


@dataclass
class TransferStats:
    """What :func:`swap_tokenizer` did; ``rows()`` gives the result rows for ``results.write_run``.

    ``mapping`` is :meth:`TokenMap.stats` of the new vocabulary (for ``merged``:
    of the appended tokens only, so ``exact_share`` is 0 there by construction).
    """

    method: str
    old_tokenizer: str
    new_tokenizer: str
    old_vocab_size: int
    true_vocab_size: int
    padded_vocab_size: int
    tied: bool
    copy_exact: bool
    seed: int
    mapping: dict[str, float | int]
    n_added: int = 0  # merged only: new tokens appended to the old vocab
    n_skipped: int = 0  # merged only: new tokens that could not become added tokens
    special_ids: dict[str, int | None] = field(default_factory=dict)
    tokenizer: Any = field(default=None, repr=False, compare=False)  # the HF tokenizer to save with the model
    token_map: TokenMap | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("tokenizer", "token_map")}

    def rows(self, **columns) -> list[dict]:
        cols = {"tokenizer": self.new_tokenizer, "method": self.method, **columns}
        values = {
            **self.mapping,
            "true_vocab_size": self.true_vocab_size,
            "padded_vocab_size": self.padded_vocab_size,
            "old_vocab_size": self.old_vocab_size,
            **({"n_added": self.n_added, "n_skipped": self.n_skipped} if self.method == "merged" else {}),
        }
        return [{"metric": k, "value": v, **cols} for k, v in values.items()]


def _text_config(model):
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


def _is_tied(model) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def _padded(n: int, multiple: int | None) -> int:
    return n if not multiple else int(math.ceil(n / multiple) * multiple)


def _hf_tokenizer(tok, roles: dict[str, int]):
    """``tok.to_hf()`` with bos/eos/pad set from the special tokens when the handle left them unset."""
    hf = tok.to_hf()
    for role in ("bos", "eos", "pad", "unk"):
        if role in roles and getattr(hf, f"{role}_token", None) is None:
            setattr(hf, f"{role}_token", hf.convert_ids_to_tokens(roles[role]))
    return hf


def _write_rows(model, n_total: int, n_true: int, new_in: torch.Tensor, new_out: torch.Tensor | None,
                new_bias: torch.Tensor | None, std: float, gen: torch.Generator) -> None:
    """Resize the model's embeddings to ``n_total`` rows and fill them (padding rows: ``N(0, std)``)."""
    model.resize_token_embeddings(n_total, mean_resizing=False)
    pad_rows = n_total - n_true
    emb = model.get_input_embeddings()
    with torch.no_grad():
        w = new_in
        if pad_rows:
            w = torch.cat([w, torch.randn((pad_rows, w.shape[1]), generator=gen) * std])
        emb.weight.copy_(w.to(emb.weight.dtype))
        out = model.get_output_embeddings()
        if out is not None and out.weight is not emb.weight and new_out is not None:
            w = new_out
            if pad_rows:
                w = torch.cat([w, torch.randn((pad_rows, w.shape[1]), generator=gen) * std])
            out.weight.copy_(w.to(out.weight.dtype))
        if out is not None and getattr(out, "bias", None) is not None and new_bias is not None:
            b = torch.cat([new_bias, torch.zeros(pad_rows)]) if pad_rows else new_bias
            out.bias.copy_(b.to(out.bias.dtype))


def _set_special_ids(model, roles: dict[str, int | None], true_size: int) -> None:
    cfg, tcfg = model.config, _text_config(model)
    for role in ("bos", "eos", "pad"):
        value = roles.get(role)
        for c in {id(cfg): cfg, id(tcfg): tcfg}.values():
            setattr(c, f"{role}_token_id", value)
        if getattr(model, "generation_config", None) is not None:
            setattr(model.generation_config, f"{role}_token_id", value)
    emb = model.get_input_embeddings()
    if getattr(emb, "padding_idx", None) is not None:
        emb.padding_idx = roles.get("pad")
    for c in {id(cfg): cfg, id(tcfg): tcfg}.values():
        c.tokstudy_true_vocab_size = true_size


def swap_tokenizer(
    model,
    old_tok,
    new_tok,
    method: str = "fvt",
    pad_to_multiple_of: int | None = None,
    seed: int = 0,
    *,
    copy_exact: bool | None = None,
    noise_std: float | None = None,
) -> tuple[Any, TransferStats]:
    """Give ``model`` (any ``transformers`` causal LM trained with ``old_tok``) the vocabulary of ``new_tok``.

    Resizes the input embeddings and the LM head (separately when untied, FVT on
    both; an output bias too), keeps tied models tied, sets ``config.vocab_size``
    (the padded size when ``pad_to_multiple_of``), ``config.tokstudy_true_vocab_size``,
    and bos/eos/pad ids in ``config`` and ``generation_config``. ``method="merged"``
    extends the old vocabulary instead (:func:`extend_tokenizer`). Padding rows
    get the model's own init, ``N(0, initializer_range)``. Returns the model
    (modified in place) and :class:`TransferStats`, whose ``.tokenizer`` is the
    HF tokenizer to save with it. ``copy_exact`` defaults to ``method != "random"``.
    """
    if method not in METHODS:
        raise TransferError(f"unknown transfer method {method!r}; choose one of {METHODS}")
    emb = model.get_input_embeddings()
    n_old_rows = emb.weight.shape[0]
    if n_old_rows < old_tok.vocab_size:
        raise TransferError(
            f"the model has {n_old_rows} embedding rows but the old tokenizer {old_tok.name!r} has "
            f"{old_tok.vocab_size} ids: pass the tokenizer the base model was trained with"
        )
    tied = _is_tied(model)
    out_mod = model.get_output_embeddings()
    std = float(getattr(_text_config(model), "initializer_range", None) or 0.02)
    gen = torch.Generator().manual_seed(seed)
    V = old_tok.vocab_size
    old_in = emb.weight.detach()[:V].float().clone()
    old_out = None if (tied or out_mod is None) else out_mod.weight.detach()[:V].float().clone()
    old_bias = None if (out_mod is None or getattr(out_mod, "bias", None) is None) else out_mod.bias.detach()[:V].float().clone()

    if method == "merged":
        hf, added_ids, added_bytes, n_skipped = extend_tokenizer(old_tok, new_tok)
        tmap = _map_added(old_tok, added_bytes, new_tok)
        true_size = len(hf)
        rows = [init_rows(m, tmap, "fvt", generator=gen) if m is not None else None for m in (old_in, old_out, old_bias)]
        new_in, new_out, new_bias = (
            torch.cat([m, r]) if m is not None else None for m, r in zip((old_in, old_out, old_bias), rows)
        )
        roles = {r: getattr(hf, f"{r}_token_id", None) for r in ("bos", "eos", "pad")}
        roles = {**{k: v for k, v in special_ids_by_role(old_tok).items() if k in roles}, **{k: v for k, v in roles.items() if v is not None}}
        copy_exact_used = True
        n_added = len(added_ids)
    else:
        tmap = map_tokens(new_tok, old_tok)
        true_size = new_tok.vocab_size
        kw = dict(copy_exact=copy_exact, std=std, noise_std=noise_std, generator=gen)
        new_in = init_rows(old_in, tmap, method, **kw)
        new_out = init_rows(old_out, tmap, method, **kw) if old_out is not None else None
        new_bias = init_rows(old_bias, tmap, method, **kw) if old_bias is not None else None
        roles = special_ids_by_role(new_tok)
        hf = _hf_tokenizer(new_tok, roles)
        copy_exact_used = (method != "random") if copy_exact is None else copy_exact
        n_added, n_skipped = 0, 0

    padded = _padded(true_size, pad_to_multiple_of)
    _write_rows(model, padded, true_size, new_in, new_out, new_bias, std, gen)
    roles = {r: roles.get(r) for r in ("bos", "eos", "pad")}
    _set_special_ids(model, roles, true_size)
    if tied and not _is_tied(model):
        raise TransferError("the model lost its tied embeddings while resizing; this is a bug in tokstudy.transfer")
    stats = TransferStats(
        method=method,
        old_tokenizer=getattr(old_tok, "name", ""),
        new_tokenizer=getattr(new_tok, "name", ""),
        old_vocab_size=V,
        true_vocab_size=true_size,
        padded_vocab_size=padded,
        tied=tied,
        copy_exact=copy_exact_used,
        seed=seed,
        mapping=tmap.stats(),
        n_added=n_added,
        n_skipped=n_skipped,
        special_ids=roles,
        tokenizer=hf,
        token_map=tmap,
    )
    log.info(
        "%s -> %s (%s): %d tokens, %.1f%% exact, %.2f old pieces per token, %d via byte fallback, vocab %d (padded %d)",
        stats.old_tokenizer, stats.new_tokenizer, method, true_size, 100 * stats.mapping["exact_share"],
        stats.mapping["mean_pieces"], stats.mapping["n_byte_fallback"], true_size, padded,
    )
    return model, stats


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
    hf = _hf_tokenizer(old_tok, special_ids_by_role(old_tok))
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
        raise TransferError("merged tokenizer ids are not contiguous after the old vocabulary; this is a bug")
    log.info("merged %s + %s: %d tokens added, %d skipped", old_tok.name, new_tok.name, len(added_ids), skipped)
    return hf, added_ids, added_bytes, skipped


def _map_added(old_tok, added_bytes: Sequence[bytes], new_tok) -> TokenMap:
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


# --------------------------------------------------------------------------- io


def save_transferred(model, tokenizer, out_dir: str | Path, stats: TransferStats | dict | None = None) -> Path:
    """Write an HF model directory (atomically) with the tokenizer and ``transfer.json``."""
    out_dir = Path(out_dir)
    with paths.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = stats.to_dict() if isinstance(stats, TransferStats) else dict(stats or {})
        (tmp / "transfer.json").write_text(json.dumps(info, indent=1, default=str) + "\n", encoding="utf-8")
    log.info("saved transferred model to %s", out_dir)
    return out_dir


_BASE_FIX = (
    "run notebooks/04_pretrain_base.ipynb (dvc repro pretrain_base) to create it, or pass "
    "base_model= a local Hugging Face model directory (config.json + model.safetensors)"
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def check_model_dir(model_dir: str | Path) -> Path:
    """Raise :class:`TransferError` unless ``model_dir`` holds config.json and weights."""
    try:
        return model_mod.check_model_dir(model_dir)
    except model_mod.ModelError as e:
        raise TransferError(f"{e}: {_BASE_FIX}") from None


def load_base(model_dir: str | Path):
    """Load the base causal LM from a local directory (float32) with :func:`tokstudy.model.load_model`.

    A :class:`TransferError` names the directory (or weights file) and the fix
    when it is missing, incomplete, an encoder (BERT & co. would get a random
    LM head) or its weights do not load.
    """
    model_dir = check_model_dir(model_dir)
    try:
        return model_mod.load_model(model_dir)
    except model_mod.ModelError as e:
        raise TransferError(str(e)) from None


def base_tokenizer(model_dir: str | Path, old_tokenizer: str | Path | None = None):
    """The tokenizer the base model was trained with: ``old_tokenizer`` if given, else the one in ``model_dir``.

    A model directory without tokenizer files is an error naming ``--old-tokenizer``
    (guessing one would map every token wrongly).
    """
    if old_tokenizer is not None:
        return bpe.load(old_tokenizer)
    model_dir = Path(model_dir)
    if not any((model_dir / f).is_file() for f in _TOKENIZER_FILES):
        raise TransferError(
            f"{model_dir} has no tokenizer ({' / '.join(_TOKENIZER_FILES)}): pass --old-tokenizer, "
            "the tokenizer the base model was trained with"
        )
    return bpe.load(model_dir)
