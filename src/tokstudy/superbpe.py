"""SuperBPE-style training: subwords with a pre-tokenization regex, then superwords without the whitespace split.

What SuperBPE is and where our rules come from: docs/paper.md#superbpe (Liu et al. 2025,
arXiv 2503.13423). In short, BPE is trained in two stages over the same text:

1. **Stage 1** (subwords): ordinary byte-level BPE with a named pre-tokenization regex
   (:data:`tokstudy.pretok.PRETOKENIZERS`, GPT-4 by default) up to the *transition* vocab size
   ``t`` (the paper's *t* is a vocabulary size too: 180k of 200k). This is :func:`tokstudy.bpe.train`
   at ``vocab_size = t``, so the first ``t - 256 - specials`` merges are exactly a plain stage-1 run's.
2. **Stage 2** (superwords): training goes on up to ``V`` with the whitespace split dropped. As in the
   authors' trainer, the stage-1 merges are first re-applied, in rank order, to each stage-2
   pre-token (text no longer cut at spaces), and new merges are then counted over the result.

Stage-2 rules (docs/paper.md#superbpe has the reasons):

* **followed** -- no whitespace or punctuation boundary: a stage-2 token may span words, spaces and
  punctuation (``"ĠofĠthe"``, ``",ĠIĠam"`` in the authors' released tokenizers);
* **followed, adapted** -- numbers stay cut as stage 1 cuts them: the authors keep their stage-1 digit
  rule (runs of digits apart from other text, in groups of 3) in stage 2; we keep the *stage-1 regex's*
  digit alternative (``\\p{N}{1,3}`` for gpt4, ``\\p{N}{1,2}`` for the num2 variants, ``\\p{N}`` for
  llama), so a number never merges with its neighbours. Stage 1 must therefore be a named regex with a
  clean digit rule (:data:`DIGIT_RULES`); gpt2 (`` ?\\p{N}+``), identity and raw patterns are refused;
* **followed** -- no byte cap on stage-2 tokens (the authors' trainer sets none); ``max_token_length``
  bounds stage 1 only. ``max_superword_parts`` optionally caps a stage-2 token at that many stage-1
  tokens (exact: it is HF's ``max_token_length`` on the stage-2 symbols); off by default;
* **not followed** -- the ``mw4``/``colon`` variants seen in the authors' scripts (at most 4 words per
  superword; no ``": "`` inside one) are not implemented: we could not read their exact definition;
* **option, not in the paper** -- ``boundaries="digits+lines"`` also ends every stage-2 pre-token after
  a line break, so no token runs from one line into the next (code layout); the paper's rule is
  ``"digits"`` (tokens may cross newlines), the default.

Engine (both stages maintained code, nothing hand-written): stage 1 is :func:`tokstudy.bpe.train`
(HF ``tokenizers`` by default). The stage-1 merges are re-applied by HF's BPE model itself (the stage-1
vocab and merges under the stage-2 pre-tokenizer). Each stage-1 token id ``i`` becomes one code point
``U+10000 + i`` (outside the BMP: no surrogates, room for > 1M ids, no normalizer sees them); HF's
``BpeTrainer`` with no pre-tokenizer then learns the stage-2 merges over those code-point strings, one
"word" per stage-2 pre-token. Each stage-2 merge is mapped back to its ByteLevel strings and appended
after the stage-1 merges; :func:`tokstudy.bpe` lays the result out as every tokstudy tokenizer
(6 specials, 256 byte symbols, merges in order, exactly ``V`` tokens).

The saved ``tokenizer.json`` is a plain HF BPE: ``Split(stage-2 pattern, isolated) + ByteLevel``
pre-tokenizer, merges in rank order (the authors release theirs the same way: their stage-2 split,
one merge list). Its encoding applies the stage-1 merges before any stage-2 merge (lower ranks), which is
what training counted, with one exception: a stage-2 merge whose bytes equal an existing token (``a+bc``
when ``ab+c`` already made ``abc``) is one token in the byte world but a separate symbol in the code-point
world. :attr:`Trained.collisions` counts them and :meth:`Trained.intended_tokens` gives the token count
training intended, so the exactness is measured (tests, ``benchmarks/bench_superbpe.py``), not assumed.
A collision also makes the tiktoken export refuse (its rank-based BPE would differ), never export wrongly.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Iterable, Sequence

from tokstudy import bpe, pretok
from tokstudy.errors import TokenizerError
from tokstudy.tokenizer import merge_pairs, tokenizer_json

log = logging.getLogger(__name__)

__all__ = ["BOUNDARIES", "CODE_POINT_BASE", "DIGIT_RULES", "Trained", "stage2_pattern", "train", "train_stages"]

# The digit alternative of each named stage-1 regex that stage 2 keeps (docs/paper.md#superbpe).
DIGIT_RULES: dict[str, str] = {
    "gpt4": r"\p{N}{1,3}",
    "gpt4-num2": r"\p{N}{1,2}",
    "punct": r"\p{N}{1,3}",
    "punct-num2": r"\p{N}{1,2}",
    "llama": r"\p{N}",
}
BOUNDARIES = ("digits", "digits+lines")  # "digits": the paper's stage 2; "+lines": also end pieces at line breaks
CODE_POINT_BASE = 0x10000  # stage-1 token id i <-> chr(CODE_POINT_BASE + i) in stage 2


def stage2_pattern(regex: str | None, boundaries: str = "digits") -> str:
    """The stage-2 split pattern (``Split(..., isolated)``) for stage-1 regex name ``regex``.

    Every alternative is a whole match (no gaps), so tiktoken's ``finditer`` covers the text as HF's
    isolated split does. ``digits``: numbers as the stage-1 regex cuts them, all other text in maximal
    runs; ``digits+lines``: the runs also end after their line break(s).

    >>> stage2_pattern("gpt4")
    '\\\\p{N}{1,3}|[^\\\\p{N}]+'
    """
    if boundaries not in BOUNDARIES:
        raise TokenizerError(f"unknown stage-2 boundaries {boundaries!r}; choose one of {BOUNDARIES}")
    if regex not in DIGIT_RULES:
        known = ", ".join(DIGIT_RULES)
        raise TokenizerError(f"SuperBPE needs a named stage-1 regex with a digit rule stage 2 can keep ({known}); "
                             f"got {regex!r}: set `regex:` to one of them")
    digits = DIGIT_RULES[regex]
    if boundaries == "digits":
        return f"{digits}|[^\\p{{N}}]+"
    return f"{digits}|[^\\p{{N}}\\r\\n]+[\\r\\n]*|[\\r\\n]+"


@dataclasses.dataclass
class Trained:
    """A SuperBPE run: the final tokenizer and the two stage engines that define what it should produce."""

    tokenizer: object  # tokenizers.Tokenizer, our layout, exactly V tokens
    replay: object  # stage-1 vocab + merges under the stage-2 pre-tokenizer (no specials): stage 2's input
    stage2: object  # the code-point BPE of the stage-2 merges actually used
    transition: int
    pattern: str
    stage1_merges: int
    stage2_merges: int
    collisions: int  # stage-2 merges whose bytes equal a token that already existed
    info: dict

    def _words(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for enc in self.replay.encode_batch(list(texts), add_special_tokens=False):
            out.append(_split_words(enc.ids, enc.word_ids, keep_single=True))
        return out

    def intended_tokens(self, texts: Sequence[str]) -> int:
        """Σ tokens training meant ``texts`` to get: stage-1 merges re-applied, then the code-point stage-2 BPE."""
        total = 0
        for words in self._words(texts):
            if words:
                total += sum(len(e.ids) for e in self.stage2.encode_batch(words, add_special_tokens=False))
        return total

    def actual_tokens(self, texts: Sequence[str]) -> int:
        """Σ tokens the saved tokenizer gives ``texts``."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False))


def _split_words(ids: list[int], word_ids: list[int | None], keep_single: bool) -> list[str]:
    """The code-point strings of one encoding's pre-tokens (stage-2 words)."""
    s = "".join(map(chr, (i + CODE_POINT_BASE for i in ids)))
    out, start = [], 0
    for k in range(1, len(ids) + 1):
        if k == len(ids) or word_ids[k] != word_ids[start]:
            if keep_single or k - start > 1:
                out.append(s[start:k])
            start = k
    return out


def _replay_tokenizer(stage1, pattern: str):
    """The stage-1 vocab and merges as a bare BPE under the stage-2 pre-tokenizer (no added tokens)."""
    from tokenizers import Tokenizer, decoders, models

    model = tokenizer_json(stage1)["model"]
    tok = Tokenizer(models.BPE(vocab=model["vocab"], merges=merge_pairs(model), byte_fallback=False, fuse_unk=False))
    tok.pre_tokenizer = pretok.hf_pre_tokenizer(pattern)
    tok.decoder = decoders.ByteLevel()
    return tok


def _check(settings: bpe.Settings, transition: int, max_superword_parts: int | None) -> None:
    minimum = 256 + len(settings.specials)
    if not minimum < transition < settings.vocab_size:
        raise TokenizerError(f"SuperBPE transition t={transition} must lie in ({minimum}, {settings.vocab_size}) "
                             f"(after the byte symbols, before vocab_size); fix `transition`")
    if max_superword_parts is not None and max_superword_parts < 2:
        raise TokenizerError(f"max_superword_parts must be >= 2 or null, got {max_superword_parts}")


def train_stages(texts: Iterable[str], variant, transition: int, *, boundaries: str = "digits",
                 max_superword_parts: int | None = None, seed: int = 0) -> Trained:
    """Train SuperBPE and keep both stage engines (:class:`Trained`); :func:`train` returns only the tokenizer.

    ``variant``: as :func:`tokstudy.bpe.check_variant` (``vocab_size`` is the final ``V``; ``regex`` a
    name of :data:`DIGIT_RULES`; ``engine``, ``max_token_length``, ``chunk_bytes`` apply to stage 1,
    ``chunk_bytes`` also cuts the stage-2 pieces at line ends). ``transition``: the vocab size at which
    stage 2 starts (``256 + specials < t < V``). ``seed`` is recorded only (both stages are deterministic).
    """
    from tokenizers import Tokenizer, models, trainers

    s = bpe.check_variant(variant)
    _check(s, transition, max_superword_parts)
    pattern = stage2_pattern(s.regex, boundaries)  # also refuses identity / raw patterns / gpt2
    texts = [t for t in texts if t]
    fields = bpe.variant_fields(variant)
    t0 = time.perf_counter()
    info1: dict = {}
    stage1 = bpe.train(texts, {**fields, "vocab_size": transition}, seed=seed, info=info1)
    t1 = time.perf_counter()
    merges1 = merge_pairs(tokenizer_json(stage1)["model"])
    replay = _replay_tokenizer(stage1, pattern)

    pieces = bpe.chunk_texts(texts, s.chunk_bytes) if s.chunk_bytes else texts
    words: list[str] = []
    for enc in replay.encode_batch(pieces, add_special_tokens=False):
        words.extend(_split_words(enc.ids, enc.word_ids, keep_single=False))
    t2 = time.perf_counter()

    wanted = s.vocab_size - transition
    margin = max(64, wanted // 20)  # spare merges: collisions add no token (the final layout cuts at exactly V)
    cp = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=transition + wanted + margin,
        special_tokens=[],
        initial_alphabet=[chr(CODE_POINT_BASE + i) for i in range(transition)],
        min_frequency=0,
        max_token_length=max_superword_parts,
        show_progress=log.isEnabledFor(logging.INFO) and sys.stderr.isatty(),
    )
    cp.train_from_iterator(words, trainer=trainer, length=len(words))
    cp_merges = merge_pairs(tokenizer_json(cp)["model"])
    t3 = time.perf_counter()

    inv = {i: t for t, i in tokenizer_json(stage1)["model"]["vocab"].items()}

    def to_bytelevel(sym: str) -> str:
        return "".join(inv[ord(c) - CODE_POINT_BASE] for c in sym)

    merges2 = [(to_bytelevel(a), to_bytelevel(b)) for a, b in cp_merges]
    final = bpe.build(s.specials, merges1 + merges2, pattern, s.vocab_size)
    got = final.get_vocab_size(with_added_tokens=True)
    if got != s.vocab_size:
        raise TokenizerError(f"SuperBPE stage 2 reached only {got} of {s.vocab_size} tokens: too few distinct "
                             f"pairs across pre-tokens; raise train_bytes or lower vocab_size/transition")
    n_final = len(merge_pairs(tokenizer_json(final)["model"]))
    if merge_pairs(tokenizer_json(final)["model"])[: len(merges1)] != merges1:
        raise TokenizerError("SuperBPE: the final merges do not start with the stage-1 merges (a special token "
                             "collides with a merged token?); rename the special tokens")
    n2 = n_final - len(merges1)
    used = merges2[:n2]
    known = set(tokenizer_json(stage1)["model"]["vocab"])
    collisions = 0
    for a, b in used:
        collisions += (a + b) in known
        known.add(a + b)
    stage2 = Tokenizer(models.BPE(vocab=tokenizer_json(cp)["model"]["vocab"], merges=cp_merges[:n2]))
    seconds = time.perf_counter() - t0
    info = {
        **info1,
        "method": "superbpe",
        "vocab_size": s.vocab_size,
        "transition": transition,
        "stage2_boundaries": boundaries,
        "stage2_pattern": pattern,
        "stage2_engine": "hf (code points)",
        "stage2_max_token_length": None,
        "max_superword_parts": max_superword_parts,
        "stage1_merges": len(merges1),
        "stage2_merges": n2,
        "stage2_collisions": collisions,
        "stage2_words": len(words),
        "stage1_seconds": t1 - t0,
        "replay_seconds": t2 - t1,
        "stage2_seconds": t3 - t2,
        "train_seconds": seconds,
    }
    log.info("SuperBPE %r: t=%d V=%d, %d stage-2 merges (%d collisions) in %.1f s", s.name, transition,
             s.vocab_size, n2, collisions, seconds)
    return Trained(tokenizer=final, replay=replay, stage2=stage2, transition=transition, pattern=pattern,
                   stage1_merges=len(merges1), stage2_merges=n2, collisions=collisions, info=info)


def train(texts: Iterable[str], variant, transition: int, *, boundaries: str = "digits",
          max_superword_parts: int | None = None, seed: int = 0, info: dict | None = None):
    """A SuperBPE ``tokenizers.Tokenizer`` of exactly ``variant.vocab_size`` tokens (:func:`train_stages`).

    If ``info`` is a dict it receives what ``meta.json`` should record (stage-1 :func:`tokstudy.bpe.train`
    info plus ``transition``, the stage-2 pattern, merge and collision counts, seconds per stage).
    """
    run = train_stages(texts, variant, transition, boundaries=boundaries,
                       max_superword_parts=max_superword_parts, seed=seed)
    if info is not None:
        info.update(run.info)
    return run.tokenizer
