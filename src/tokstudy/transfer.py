"""Switch the tokenizer of a pre-trained causal LM: embedding transfer (paper §3.3, docs/paper.md "Embedding transfer").

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
            (rows by FVT). See :func:`tokstudy.tokenmap.extend_tokenizer` for its limitation.
``focus``   FOCUS (Dobler & de Melo, EMNLP 2023; docs/paper.md#focus): exact matches
            copied; every other new token is a sparsemax-weighted mix of the copied
            (overlapping) rows, the weights from cosine similarities in an auxiliary
            fastText space (gensim, CBOW) trained on caller-given text tokenized with
            the *new* tokenizer (:class:`FocusAux`); a new token too rare in that text
            to get an auxiliary vector is drawn from ``N(mean, std)`` of the old rows.

Which old rows feed each new row comes from :func:`tokstudy.tokenmap.map_tokens`
(tokens matched on raw bytes). FVT is applied to the input embeddings *and* an
untied LM head (and an output bias if present); tied models stay tied. A new
special token with no old counterpart gets the mean of all old rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tokstudy import bpe, choices, paths, tokenizer
from tokstudy import model as model_mod
from tokstudy.errors import TransferError
from tokstudy.tokenmap import TokenMap, extend_tokenizer, hf_tokenizer, map_added, map_tokens, special_ids_by_role

log = logging.getLogger(__name__)

METHODS = choices.TRANSFER_METHODS  # swap_tokenizer implements each


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
        shape = (n, *old.shape[1:])
        out = torch.zeros(shape) if is_bias else torch.randn(shape, generator=generator) * std
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


# --------------------------------------------------------------------------- focus

#: fastText settings FOCUS's reference code trains with (CBOW, window 5, 10 negatives, char n-grams 3-6); the
#: n-gram hash table is smaller than fastText's 2M buckets so that it fits a laptop (the vectors of in-vocabulary
#: tokens are all FOCUS reads; a collision only shares an n-gram's vector)
AUX_WINDOW, AUX_NEGATIVE, AUX_MIN_N, AUX_MAX_N, AUX_BUCKETS = 5, 10, 3, 6, 200_000
_AUX_SENTENCE = 10_000  # gensim drops the tokens of a sentence past 10,000: longer texts are cut into such pieces
_CHUNK = 1024  # new tokens per similarity block


@dataclass(frozen=True)
class FocusAux:
    """What FOCUS's auxiliary embeddings are trained on and how (plain values; the defaults live in params.yaml).

    ``texts`` are tokenized with the *new* tokenizer; ``dim`` / ``epochs`` / ``min_count`` are fastText's
    (a token seen fewer than ``min_count`` times gets no auxiliary vector); ``seed`` seeds the training.
    """

    texts: tuple[str, ...]
    dim: int
    epochs: int
    min_count: int
    seed: int

    def record(self) -> dict:
        """What the run record keeps of it: the data's sha256 (:func:`tokstudy.bpe.texts_sha256`) and size, no text."""
        return {"aux_texts": len(self.texts), "aux_bytes": sum(len(t.encode("utf-8")) for t in self.texts),
                "aux_sha256": bpe.texts_sha256(self.texts), "aux_sha256_of": "the auxiliary texts (texts_sha256)",
                "aux_dim": self.dim, "aux_epochs": self.epochs, "aux_min_count": self.min_count,
                "aux_seed": self.seed, "aux_engine": f"gensim {importlib.metadata.version('gensim')} FastText cbow",
                "aux_window": AUX_WINDOW, "aux_negative": AUX_NEGATIVE, "aux_ngrams": [AUX_MIN_N, AUX_MAX_N],
                "aux_buckets": AUX_BUCKETS}


def read_aux_texts(files, flag: str = "--aux-text") -> tuple[str, ...]:
    """The UTF-8 text of each file (one auxiliary text each); a missing, unreadable, non-UTF-8 or empty one is a
    one-line :class:`TransferError` naming ``flag`` and the file."""
    texts = []
    for f in files:
        try:
            text = Path(f).read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransferError(f"{flag} {f}: not UTF-8 text (byte {exc.start}); pass a UTF-8 text file") from None
        except OSError as exc:
            raise TransferError(f"{flag} {f}: cannot read it ({exc.strerror or exc}); pass a readable text "
                                "file") from None
        if not text.strip():
            raise TransferError(f"{flag} {f}: the file is empty; pass text in the new tokenizer's domain")
        texts.append(text)
    return tuple(texts)


def _stable_hash(s: str) -> int:
    """A hash that does not change with PYTHONHASHSEED (gensim's ``hashfxn``; Python's ``hash`` of a str does)."""
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def aux_word(new_tok, i: int) -> str:
    """The auxiliary-space word of new token ``i``: its bytes in the ByteLevel alphabet (no spaces, one per bytes)."""
    return "".join(bpe.bytes_to_unicode()[b] for b in new_tok.token_bytes(i))


def aux_vectors(new_tok, aux: FocusAux) -> dict[int, torch.Tensor]:
    """Train fastText (gensim, one worker: same seed and text, same vectors) on ``aux.texts`` tokenized by
    ``new_tok``; returns ``{new id: vector}`` for the tokens seen at least ``aux.min_count`` times."""
    from gensim.models import FastText

    specials = set(new_tok.special_ids)
    words = {}
    sentences: list[list[str]] = []
    for text in aux.texts:
        ids = [t for t in new_tok.encode(text) if t not in specials]
        for i in ids:
            if i not in words:
                words[i] = aux_word(new_tok, i)
        seq = [words[i] for i in ids]
        sentences += [seq[k:k + _AUX_SENTENCE] for k in range(0, len(seq), _AUX_SENTENCE)]
    if not sentences:
        raise TransferError("FOCUS: the auxiliary text has no tokens; pass non-empty text in the new tokenizer's "
                            "domain (e.g. the corpus train split)")
    log.info("FOCUS: training %d-d fastText on %d tokens (%d distinct) for %d epochs", aux.dim,
             sum(map(len, sentences)), len(words), aux.epochs)
    ft = FastText(sg=0, vector_size=aux.dim, window=AUX_WINDOW, negative=AUX_NEGATIVE, min_count=aux.min_count,
                  epochs=aux.epochs, min_n=AUX_MIN_N, max_n=AUX_MAX_N, bucket=AUX_BUCKETS, seed=aux.seed, workers=1,
                  hashfxn=_stable_hash)
    ft.build_vocab(corpus_iterable=sentences)
    if not ft.wv.key_to_index:
        raise TransferError(f"FOCUS: no token occurs min_count={aux.min_count} times in the {len(aux.texts)} "
                            "auxiliary text(s); pass more auxiliary text or a lower min_count")
    ft.train(corpus_iterable=sentences, total_examples=ft.corpus_count, epochs=ft.epochs)
    known = ft.wv.key_to_index  # not `in ft.wv`: fastText makes a vector for any string from its n-grams
    return {i: torch.from_numpy(ft.wv[w].copy()) for i, w in words.items() if w in known}


@dataclass
class FocusPlan:
    """Each FOCUS row as weights over old rows: ``new[rows[k]] += weights[k] * old[cols[k]]`` (weights of a row sum
    to 1), ``random`` the new ids drawn from ``N(mean, std)`` of the old rows (no auxiliary vector)."""

    rows: torch.Tensor
    cols: torch.Tensor
    weights: torch.Tensor
    random: list[int]
    n_candidates: int

    def stats(self) -> dict[str, float | int]:
        n = len(torch.unique(self.rows))
        return {"n_focus": n, "n_focus_random": len(self.random), "n_focus_candidates": self.n_candidates,
                "focus_mean_support": len(self.rows) / n if n else 0.0}


def focus_plan(tmap: TokenMap, vectors: dict[int, torch.Tensor]) -> FocusPlan:
    """The sparsemax weights of every composed (non-overlapping) new token over the exact (overlapping) ones.

    Candidates are the exact matches that have an auxiliary vector; a composed token's weights are
    ``sparsemax(cos(aux[new], aux[candidate]))`` (entmax's sparsemax: a projection onto the simplex, so
    most weights are exactly 0). A composed token without a vector is drawn at random (the FOCUS rule).
    """
    from entmax import sparsemax

    cand = [i for i, k in enumerate(tmap.kinds) if k == "exact" and i in vectors]
    todo = [i for i, k in enumerate(tmap.kinds) if k == "composed"]
    new = [i for i in todo if i in vectors]
    random_ids = [i for i in todo if i not in vectors]
    if todo and not cand:
        raise TransferError(
            f"FOCUS: none of the {tmap.kinds.count('exact')} tokens shared by both vocabularies occurs "
            "min_count times in the auxiliary text, so there is nothing to combine; pass more auxiliary text "
            "or a lower min_count")
    if todo and not new:
        raise TransferError(
            f"FOCUS: none of the {len(todo)} new tokens occurs min_count times in the auxiliary text, so every one "
            "would be random; pass more auxiliary text (in the new tokenizer's domain) or a lower min_count")
    old_ids = torch.tensor([tmap.pieces[i][0] for i in cand], dtype=torch.long)
    rows, cols, weights = [], [], []
    if new:
        C = torch.nn.functional.normalize(torch.stack([vectors[i] for i in cand]).double(), dim=1)
        for k in range(0, len(new), _CHUNK):
            ids = new[k:k + _CHUNK]
            N = torch.nn.functional.normalize(torch.stack([vectors[i] for i in ids]).double(), dim=1)
            W = sparsemax(N @ C.T, dim=-1)
            r, c = W.nonzero(as_tuple=True)
            rows.append(torch.tensor(ids, dtype=torch.long)[r])
            cols.append(old_ids[c])
            weights.append(W[r, c])
    if not new:  # every new token is in the old vocabulary: nothing to combine
        rows, cols, weights = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)], [
            torch.zeros(0, dtype=torch.float64)]
    return FocusPlan(torch.cat(rows), torch.cat(cols), torch.cat(weights), random_ids, len(cand))


def focus_rows(old: torch.Tensor, tmap: TokenMap, plan: FocusPlan, generator: torch.Generator) -> torch.Tensor:
    """New rows by ``plan`` (:func:`focus_plan`) from old rows ``old`` (a weight matrix or a 1-D output bias).

    Exact matches and mapped specials copy their old row, a special with no counterpart gets the mean,
    a token of ``plan.random`` is drawn from ``N(mean, std)`` of the old rows (per dimension).
    """
    old = old.detach().float().cpu()
    mean = old.mean(0)
    out = mean.expand(len(tmap.pieces), *old.shape[1:]).clone().double()
    if len(plan.rows):
        out[torch.unique(plan.rows)] = 0
        w = plan.weights.reshape(-1, *([1] * (old.dim() - 1)))
        out.index_add_(0, plan.rows, w * old.double()[plan.cols])
    out = out.float()
    if plan.random:
        std = old.std(0)
        out[plan.random] = torch.stack([torch.normal(mean, std, generator=generator) for _ in plan.random])
    for i, ok in enumerate(tmap.copied()):
        if ok:
            out[i] = old[tmap.pieces[i][0]]
    if not torch.isfinite(out).all():
        raise TransferError("focus produced non-finite rows; check the base model's embeddings for NaN/inf")
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
    focus: dict = field(default_factory=dict)  # focus only: FocusAux.record() and FocusPlan.stats()
    special_ids: dict[str, int | None] = field(default_factory=dict)
    tokenizer: Any = field(default=None, repr=False, compare=False)  # the HF tokenizer to save with the model
    token_map: TokenMap | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("tokenizer", "token_map")
        }

    def rows(self, **columns) -> list[dict]:
        cols = {"tokenizer": self.new_tokenizer, "method": self.method, **columns}
        values = {
            **self.mapping,
            "true_vocab_size": self.true_vocab_size,
            "padded_vocab_size": self.padded_vocab_size,
            "old_vocab_size": self.old_vocab_size,
            **({"n_added": self.n_added, "n_skipped": self.n_skipped} if self.method == "merged" else {}),
            **{k: v for k, v in self.focus.items() if k in ("n_focus", "n_focus_random", "n_focus_candidates",
                                                            "focus_mean_support", "aux_bytes")},
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


@dataclass
class _NewVocab:
    """The new vocabulary's rows (input, output or None, bias or None), map, HF tokenizer and special ids."""

    rows: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]
    tmap: TokenMap
    tokenizer: Any
    true_size: int
    roles: dict[str, int | None]
    copy_exact: bool
    n_added: int = 0
    n_skipped: int = 0
    focus: dict = field(default_factory=dict)


def _old_rows(model, n: int, tied: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Float copies of the first ``n`` rows of the input embeddings, an untied LM head and an output bias."""
    out_mod = model.get_output_embeddings()
    old_in = model.get_input_embeddings().weight.detach()[:n].float().clone()
    old_out = None if (tied or out_mod is None) else out_mod.weight.detach()[:n].float().clone()
    has_bias = out_mod is not None and getattr(out_mod, "bias", None) is not None
    old_bias = out_mod.bias.detach()[:n].float().clone() if has_bias else None
    return old_in, old_out, old_bias


def _merged_vocab(old_tok, new_tok, old: tuple, gen: torch.Generator) -> _NewVocab:
    """``method="merged"``: the old rows by index, then FVT rows for the appended tokens."""
    hf, added_ids, added_bytes, n_skipped = extend_tokenizer(old_tok, new_tok)
    tmap = map_added(old_tok, added_bytes, new_tok)
    rows = [init_rows(m, tmap, "fvt", generator=gen) if m is not None else None for m in old]
    new_rows = tuple(torch.cat([m, r]) if m is not None else None for m, r in zip(old, rows, strict=True))
    roles = {r: getattr(hf, f"{r}_token_id", None) for r in ("bos", "eos", "pad")}
    old_roles = {k: v for k, v in special_ids_by_role(old_tok).items() if k in roles}
    roles = {**old_roles, **{k: v for k, v in roles.items() if v is not None}}
    return _NewVocab(new_rows, tmap, hf, len(hf), roles, True, len(added_ids), n_skipped)


def _replaced_vocab(old_tok, new_tok, old: tuple, method: str, copy_exact: bool | None, **init_kw) -> _NewVocab:
    """``fvt`` / ``mean`` / ``random``: every row of the new vocabulary from :func:`init_rows`."""
    tmap = map_tokens(new_tok, old_tok)
    rows = tuple(init_rows(m, tmap, method, copy_exact=copy_exact, **init_kw) if m is not None else None for m in old)
    roles = special_ids_by_role(new_tok)
    hf = hf_tokenizer(new_tok, roles)
    copy_exact_used = (method != "random") if copy_exact is None else copy_exact
    return _NewVocab(rows, tmap, hf, new_tok.vocab_size, roles, copy_exact_used)


def _focus_vocab(old_tok, new_tok, old: tuple, aux: FocusAux, gen: torch.Generator) -> _NewVocab:
    """``method="focus"``: one sparsemax plan from auxiliary vectors trained on ``aux``, applied to every matrix."""
    tmap = map_tokens(new_tok, old_tok)
    plan = focus_plan(tmap, aux_vectors(new_tok, aux))
    rows = tuple(focus_rows(m, tmap, plan, gen) if m is not None else None for m in old)
    roles = special_ids_by_role(new_tok)
    info = {**aux.record(), **plan.stats()}
    log.info("FOCUS: %d new tokens from %d overlapping ones (%.1f non-zero weights each), %d random (too rare in "
             "%d auxiliary bytes)", info["n_focus"], info["n_focus_candidates"], info["focus_mean_support"],
             info["n_focus_random"], info["aux_bytes"])
    return _NewVocab(rows, tmap, hf_tokenizer(new_tok, roles), new_tok.vocab_size, roles, True, focus=info)


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
    focus: FocusAux | None = None,
) -> tuple[Any, TransferStats]:
    """Give ``model`` (any ``transformers`` causal LM trained with ``old_tok``) the vocabulary of ``new_tok``.

    Resizes the input embeddings and the LM head (separately when untied, FVT on
    both; an output bias too), keeps tied models tied, sets ``config.vocab_size``
    (the padded size when ``pad_to_multiple_of``), ``config.tokstudy_true_vocab_size``,
    and bos/eos/pad ids in ``config`` and ``generation_config``. ``method="merged"``
    extends the old vocabulary instead (:func:`tokstudy.tokenmap.extend_tokenizer`).
    Padding rows get the model's own init, ``N(0, initializer_range)``. Returns the
    model (modified in place) and :class:`TransferStats`, whose ``.tokenizer`` is
    the HF tokenizer to save with it. ``copy_exact`` defaults to ``method != "random"``.
    ``method="focus"`` needs ``focus`` (its auxiliary text and settings) and takes no ``copy_exact``.
    """
    if method not in METHODS:
        raise TransferError(f"unknown transfer method {method!r}; choose one of {METHODS}")
    if (method == "focus") != (focus is not None):
        raise TransferError("method focus needs its auxiliary text (focus=FocusAux(...); `tokstudy transfer "
                            "--aux-text FILE`)" if focus is None else
                            f"auxiliary text is used by method focus only, not {method!r}; drop it or use focus")
    if method == "focus" and copy_exact is False:
        raise TransferError("focus always copies the overlapping tokens (they are what it combines); "
                            "drop copy_exact=False")
    n_old_rows = model.get_input_embeddings().weight.shape[0]
    if n_old_rows < old_tok.vocab_size:
        raise TransferError(
            f"the model has {n_old_rows} embedding rows but the old tokenizer {old_tok.name!r} has "
            f"{old_tok.vocab_size} ids: pass the tokenizer the base model was trained with"
        )
    tied = _is_tied(model)
    std = float(getattr(_text_config(model), "initializer_range", None) or 0.02)
    gen = torch.Generator().manual_seed(seed)
    V = old_tok.vocab_size
    old = _old_rows(model, V, tied)
    if method == "merged":
        nv = _merged_vocab(old_tok, new_tok, old, gen)
    elif method == "focus":
        nv = _focus_vocab(old_tok, new_tok, old, focus, gen)
    else:
        nv = _replaced_vocab(old_tok, new_tok, old, method, copy_exact, std=std, noise_std=noise_std, generator=gen)
    true_size = nv.true_size
    padded = _padded(true_size, pad_to_multiple_of)
    _write_rows(model, padded, true_size, *nv.rows, std, gen)
    roles = {r: nv.roles.get(r) for r in ("bos", "eos", "pad")}
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
        copy_exact=nv.copy_exact,
        seed=seed,
        mapping=nv.tmap.stats(),
        n_added=nv.n_added,
        n_skipped=nv.n_skipped,
        focus=nv.focus,
        special_ids=roles,
        tokenizer=nv.tokenizer,
        token_map=nv.tmap,
    )
    log.info(
        "%s -> %s (%s): %d tokens, %.1f%% exact, %.2f old pieces per token, %d via byte fallback, vocab %d (padded %d)",
        stats.old_tokenizer, stats.new_tokenizer, method, true_size, 100 * stats.mapping["exact_share"],
        stats.mapping["mean_pieces"], stats.mapping["n_byte_fallback"], true_size, padded,
    )
    return model, stats


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


#: what save_transferred writes (save_pretrained of a causal LM and its tokenizer, plus transfer.json)
_OUTPUT_FILES = re.compile(r"(config|generation_config|transfer|tokenizer|tokenizer_config|special_tokens_map"
                           r"|added_tokens|vocab)\.json|merges\.txt|chat_template\.jinja"
                           r"|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json")


def output_files(folder: str | Path) -> set[str] | None:
    """The files of ``folder`` that :func:`save_transferred` wrote, if its ``transfer.json`` is ours (else None)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "transfer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and {"method", "true_vocab_size"} <= record.keys()):
        return None
    return {p.name for p in folder.iterdir() if _OUTPUT_FILES.fullmatch(p.name)}


def vocab_fingerprint(handle) -> str:
    """sha256 of a tokenizer's token -> id map (each id's bytes, a special token by its text): equal iff same vocab."""
    h = hashlib.sha256()
    specials = handle.special_ids
    for i in range(handle.vocab_size):
        piece = b"\x00special:" + handle.special_text(i).encode() if i in specials else handle.token_bytes(i)
        h.update(len(piece).to_bytes(8, "little") + piece)
    return h.hexdigest()


def check_old_tokenizer(model_dir: str | Path, old, spec: str) -> None:
    """A TransferError unless ``old`` (``--old-tokenizer spec``) has the vocabulary of ``model_dir``'s own tokenizer.

    A model folder without tokenizer files has nothing to compare: any ``old`` is taken.
    """
    model_dir = Path(model_dir)
    if not any((model_dir / f).is_file() for f in _TOKENIZER_FILES):
        return
    try:
        own = tokenizer.load(model_dir)
    except tokenizer.TokenizerError as exc:
        raise TransferError(f"--old-tokenizer {spec}: cannot compare it with {model_dir}'s own tokenizer ({exc}); "
                            "pass --force to use --old-tokenizer anyway") from None
    if vocab_fingerprint(own) != vocab_fingerprint(old):
        raise TransferError(
            f"--old-tokenizer {spec} is not the tokenizer of {model_dir} (its vocabulary differs: {old.vocab_size} vs "
            f"{own.vocab_size} tokens, or other token ids), so the embeddings would be mapped to the wrong tokens; "
            "drop --old-tokenizer, or pass --force if the model was trained with it")


_BASE_FIX = (
    "run `dvc repro pretrain@base` (notebooks/04_pretrain_base.ipynb) to create it, or pass a local Hugging Face "
    "model directory (config.json + model.safetensors): BASE_MODEL of `tokstudy transfer`, base_model= in Python"
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
        return tokenizer.load(old_tokenizer)
    model_dir = Path(model_dir)
    if not any((model_dir / f).is_file() for f in _TOKENIZER_FILES):
        raise TransferError(
            f"{model_dir} has no tokenizer ({' / '.join(_TOKENIZER_FILES)}): pass --old-tokenizer, "
            "the tokenizer the base model was trained with"
        )
    return tokenizer.load(model_dir)
