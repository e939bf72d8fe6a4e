"""A fine-tune's sample: the byte budget filled with short chunks from many files of every language.

A fine-tune trains one pass over ``n_bytes`` of text. Filling that budget with the leading bytes
of a shuffle of whole files gives a handful of files (at 100 KB on the cpu corpus: 4 files, 94 %
of them one Rust file; at 300 KB: 11 files and 5 of the 12 code languages absent), so the model
adapts to those files rather than to the domain. :func:`sample` instead

1. cuts every document into **chunks** of at most ``chunk_bytes`` UTF-8 bytes at line ends
   (:func:`chunk_spans`: lines are packed greedily; a single line longer than ``chunk_bytes`` is cut
   at character boundaries, so no chunk is ever longer);
2. gives every language an **equal byte target** where it holds that much, a language holding less
   gives all it has and the others share the rest (water-filling; targets sum to ``n_bytes``);
3. takes each language's chunks in a **seeded shuffle** (``random.Random(f"{seed}:{language}")``, over
   the language's documents sorted by content, so the input order does not matter) until its target
   is reached, the last chunk cut to the bytes left at a character boundary: the sample holds
   ``n_bytes`` bytes (where the cut falls inside a character, the next chunk's start fills the bytes
   left);
4. returns the chunks **round-robin** over the languages (sorted): the first chunk of each language,
   then the second of each, ...

The sample depends only on the texts, ``n_bytes``, ``chunk_bytes`` and ``seed``, never on a
tokenizer: runs with different tokenizers train on the same bytes. A new ``seed`` draws other
chunks (and, in the step, another data order).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from tokstudy.errors import DataError

MAX_CHAR_BYTES = 4  # the longest UTF-8 encoding of one character


def _char_start(raw: bytes, i: int) -> int:
    """The largest character boundary of ``raw`` at or before byte ``i``."""
    while 0 < i < len(raw) and raw[i] & 0xC0 == 0x80:  # a continuation byte 10xxxxxx
        i -= 1
    return i


def chunk_spans(raw: bytes, chunk_bytes: int) -> list[tuple[int, int]]:
    """``(start, end)`` byte spans that cut UTF-8 ``raw`` into pieces of at most ``chunk_bytes`` bytes.

    Each piece ends after a ``\\n`` (lines packed greedily) or at the end of ``raw``; a line longer
    than ``chunk_bytes`` is cut at character boundaries. The spans tile ``raw``.

    >>> chunk_spans(b"ab\\ncd\\nefgh\\n", 6)
    [(0, 6), (6, 11)]
    """
    if chunk_bytes < MAX_CHAR_BYTES:
        raise DataError(f"chunk_bytes must be at least {MAX_CHAR_BYTES} (one UTF-8 character), got {chunk_bytes}; "
                        "fix train.finetune_chunk_bytes in params.yaml")
    spans, pos, n = [], 0, len(raw)
    while pos < n:
        end = pos + chunk_bytes
        if end >= n:
            spans.append((pos, n))
            break
        cut = raw.rfind(b"\n", pos, end) + 1  # after the last line end that fits; 0 when none does
        if cut <= pos:  # one line longer than chunk_bytes
            cut = _char_start(raw, end)
        spans.append((pos, cut))
        pos = cut
    return spans


def chunk_text(text: str, chunk_bytes: int) -> list[str]:
    """``text`` cut into pieces of at most ``chunk_bytes`` UTF-8 bytes (:func:`chunk_spans`); they join to ``text``.

    >>> chunk_text("ab\\ncd\\nefgh\\n", 6)
    ['ab\\ncd\\n', 'efgh\\n']
    """
    raw = text.encode("utf-8")
    return [raw[a:b].decode("utf-8") for a, b in chunk_spans(raw, chunk_bytes)]


def equal_targets(available: Mapping[str, int], n_bytes: int) -> dict[str, int]:
    """Bytes per language: ``n_bytes`` split evenly, a language capped at what it holds, the rest shared.

    Integer water-filling, smallest holdings first; the targets sum to ``min(n_bytes, sum(available))``.

    >>> equal_targets({"a": 10, "b": 100, "c": 100}, 100)
    {'a': 10, 'b': 45, 'c': 45}
    """
    out, left = {}, n_bytes
    order = sorted(available, key=lambda lang: (available[lang], lang))
    for i, lang in enumerate(order):
        out[lang] = min(available[lang], left // (len(order) - i))
        left -= out[lang]
    return dict(sorted(out.items()))


def sample(texts: Mapping[str, Sequence[str]], n_bytes: int, chunk_bytes: int, seed: int) -> list[str]:
    """``n_bytes`` of chunks of ``texts`` (``{language: [text, ...]}``), stratified over the languages.

    See the module doc for the rule. A corpus holding fewer than ``n_bytes`` bytes is a
    :class:`~tokstudy.errors.DataError` naming ``train.budget_bytes``.
    """
    if n_bytes <= 0:
        raise DataError(f"a fine-tune's byte budget must be positive, got {n_bytes}; fix train.budget_bytes")
    raws = {lang: sorted(t.encode("utf-8") for t in ts if t) for lang, ts in sorted(texts.items())}
    raws = {lang: docs for lang, docs in raws.items() if docs}
    available = {lang: sum(map(len, docs)) for lang, docs in raws.items()}
    if sum(available.values()) < n_bytes:
        raise DataError(
            f"the training texts hold {sum(available.values())} bytes ({len(available)} languages), fewer than "
            f"the fine-tune budget of {n_bytes}; lower train.budget_bytes in params.yaml or build a larger corpus "
            "(corpus.budget_bytes)"
        )
    per_lang: dict[str, list[str]] = {}
    for lang, target in equal_targets(available, n_bytes).items():
        docs = raws[lang]
        spans = [(d, a, b) for d, raw in enumerate(docs) for a, b in chunk_spans(raw, chunk_bytes)]
        random.Random(f"{seed}:{lang}").shuffle(spans)
        chunks, left = [], target
        for d, a, b in spans:
            if left <= 0:
                break
            b = min(b, _char_start(docs[d], a + left))  # the last chunk cut to the bytes left
            if b > a:  # (empty when a character straddles the cut: the next chunk fills the bytes left)
                chunks.append(docs[d][a:b].decode("utf-8"))
                left -= b - a
        per_lang[lang] = chunks
    rounds = max((len(c) for c in per_lang.values()), default=0)
    return [c[i] for i in range(rounds) for c in per_lang.values() if i < len(c)]


__all__ = ["chunk_spans", "chunk_text", "equal_targets", "sample"]
