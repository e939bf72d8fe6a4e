"""Named pre-tokenization regexes (docs/paper.md#pre-tokenization-regexes) and their HF ``tokenizers`` form.

A pre-tokenizer splits text into *pre-tokens*; BPE merges never cross their
boundaries. The patterns are the exact strings of the authors' code
(``get_regex_from_normalization_rule_name``, docs/paper.md#pre-tokenization-regexes), written for
the Python ``regex`` module and HF ``tokenizers.Regex`` (Oniguruma): ``\\p{L}``
letters, ``\\p{N}`` numbers.

* ``gpt4`` is the *HF-compatible* cl100k form the authors used
  (``\\s*[\\r\\n]+``, no possessive quantifiers); tiktoken's own cl100k pattern
  differs slightly, see :data:`TIKTOKEN_PATTERNS` and ``tests/test_pretok.py``.
* ``llama`` is **our emulation** of Llama 2's SentencePiece ``split_digits``:
  the GPT-4 pattern with ``\\p{N}`` instead of ``\\p{N}{1,3}`` (one digit per
  pre-token). SentencePiece itself has no regex; whitespace handling differs.
* ``identity`` is ``None``: no split at all (ByteLevel only).
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from tokstudy.errors import TokenizerError


@dataclass(frozen=True)
class Pretokenizer:
    name: str
    pattern: str | None  # None: no split (identity)
    provenance: str


_GPT4 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

PRETOKENIZERS: dict[str, Pretokenizer] = {
    p.name: p
    for p in (
        Pretokenizer(
            "gpt2",
            r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
            "GPT-2 / r50k_base, original OpenAI release pattern (encoder.py, 2019); "
            "tiktoken uses an equivalent possessive form (r50k_pat_str)",
        ),
        Pretokenizer(
            "gpt4",
            _GPT4,
            "GPT-4 / cl100k_base, the HF-compatible 2023 form used by Dagan et al. "
            "(utils.py get_regex_from_normalization_rule_name 'gpt'); docs/paper.md#pre-tokenization-regexes",
        ),
        Pretokenizer(
            "gpt4-num2",
            _GPT4.replace(r"\p{N}{1,3}", r"\p{N}{1,2}"),
            "Dagan et al. 'gpt-num2': GPT-4 pattern with numbers of at most 2 digits, for V < 50k",
        ),
        Pretokenizer(
            "punct",
            r""" ?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
            "Dagan et al. 'punct': no punctuation+letter mixing, no English contractions; docs/paper.md#pre-tokenization-regexes",
        ),
        Pretokenizer(
            "punct-num2",
            r""" ?\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
            "Dagan et al. 'punct-num2': punct with numbers of at most 2 digits",
        ),
        Pretokenizer(
            "identity",
            None,
            "Dagan et al. 'identity': no pre-tokenization (ByteLevel only); tokens may span words and lines",
        ),
        Pretokenizer(
            "llama",
            _GPT4.replace(r"\p{N}{1,3}", r"\p{N}"),
            "tokstudy emulation of Llama 2 SentencePiece split_digits: the GPT-4 pattern with \\p{N} "
            "(single digits) instead of \\p{N}{1,3}; not the SentencePiece algorithm itself",
        ),
    )
}

# tiktoken's own patterns (tiktoken_ext/openai_public.py, tiktoken 0.14), for the
# consistency tests and for loading the reference encodings offline.
TIKTOKEN_PATTERNS: dict[str, str] = {
    "r50k_base": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}

_COMPILED: dict[str, regex.Pattern] = {}

_RAW_HINT = "for a raw regex use `--regex-pattern PATTERN` (CLI) or `pattern:` (params.yaml tokenizer variant)"


def get(name: str) -> Pretokenizer:
    """The named pre-tokenizer (see :data:`PRETOKENIZERS`); an unknown name is an error listing the known ones."""
    try:
        return PRETOKENIZERS[name]
    except (KeyError, TypeError):
        raise TokenizerError(
            f"unknown pre-tokenizer name {name!r}; known: {', '.join(sorted(PRETOKENIZERS))} ({_RAW_HINT})"
        ) from None


def custom(pattern: str) -> Pretokenizer:
    """A user-supplied raw pattern, validated in both regex engines (:func:`validate`)."""
    if pattern in PRETOKENIZERS:
        raise TokenizerError(f"pattern {pattern!r} is a pre-tokenizer name: use `--regex {pattern}` / `regex: {pattern}`")
    return Pretokenizer("custom", validate(pattern), "user-supplied pattern, recorded verbatim")


def resolve(regex: str | None = None, pattern: str | None = None) -> Pretokenizer:
    """Exactly one of a pre-tokenizer *name* (``regex``) or a raw ``pattern`` -> its :class:`Pretokenizer`."""
    if regex is not None and pattern is not None:
        raise TokenizerError(
            f"give either a regex name ({regex!r}) or a raw pattern ({pattern!r}), not both: "
            "drop `--regex`/`regex:` or `--regex-pattern`/`pattern:`"
        )
    if pattern is not None:
        return custom(pattern)
    if regex is None:
        raise TokenizerError(f"no pre-tokenizer: give a regex name ({', '.join(sorted(PRETOKENIZERS))}) or {_RAW_HINT}")
    return get(regex)


def validate(pattern: str) -> str:
    """Check that ``pattern`` compiles in both the ``regex`` module and HF ``tokenizers.Regex``."""
    from tokenizers import Regex

    if not isinstance(pattern, str) or not pattern:
        raise TokenizerError(f"pre-tokenizer pattern must be a non-empty string, got {pattern!r}")
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise TokenizerError(
            f"invalid pre-tokenizer regex {pattern!r} for the Python `regex` module: {exc}. "
            f"Fix the pattern or use a named one: {sorted(PRETOKENIZERS)}"
        ) from None
    try:
        Regex(pattern)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception
        raise TokenizerError(
            f"pre-tokenizer regex {pattern!r} compiles in `regex` but not in HF tokenizers (Oniguruma): {exc}. "
            "Avoid syntax Oniguruma lacks, or use a named pattern"
        ) from None
    return pattern


def _compiled(pattern: str) -> regex.Pattern:
    if pattern not in _COMPILED:
        _COMPILED[pattern] = regex.compile(pattern)
    return _COMPILED[pattern]


def split_pattern(pattern: str | None, text: str) -> list[str]:
    """Pre-tokens of ``text`` under a raw ``pattern`` (``None``: no split), with the ``regex`` module.

    Like HF ``Split(behavior="isolated")``: text between matches (never produced
    by the named patterns, whose last alternative is ``\\s+``) is kept as its own piece.
    """
    if pattern is None:
        return [text] if text else []
    out: list[str] = []
    pos = 0
    for m in _compiled(validate(pattern)).finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        if m.end() > m.start():
            out.append(m.group())
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def split(name: str, text: str) -> list[str]:
    """Pre-tokens of ``text`` under the *named* pre-tokenizer (:func:`get`); raw patterns: :func:`split_pattern`."""
    return split_pattern(get(name).pattern, text)


def hf_pre_tokenizer(pattern: str | None):
    """HF pre-tokenizer for a raw ``pattern``: ``Split(Regex, isolated)`` + ``ByteLevel(add_prefix_space=False,
    use_regex=False)``; ``None`` (``identity``) gives ByteLevel only. Names: ``hf_pre_tokenizer(get(name).pattern)``.
    """
    from tokenizers import Regex, pre_tokenizers

    if pattern in PRETOKENIZERS:
        raise TokenizerError(f"{pattern!r} is a pre-tokenizer name, not a pattern: pass get({pattern!r}).pattern")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pattern is None:
        return byte_level
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(validate(pattern)), behavior="isolated"), byte_level])
