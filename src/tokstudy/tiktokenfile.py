"""tiktoken rank files: export a tokenizer as ``NAME.tiktoken`` + ``NAME.json``, and build an Encoding from them.

``NAME.tiktoken`` is the format ``tiktoken.load.load_tiktoken_bpe`` reads: one
``base64(token bytes) rank`` line per ordinary token, rank = token id.
``NAME.json`` holds what the rank file cannot: ``pat_str``, ``special_tokens``
(``{text: id}``), ``n_vocab`` and the rank file's sha256. :func:`encoding` builds
``tiktoken.Encoding(name, pat_str, mergeable_ranks, special_tokens)`` from the pair.

Exact only when tiktoken's rank-based BPE and the HF merge-priority BPE agree.
:func:`ranks` checks the conditions, and refuses the export otherwise:

* every merge creates a new token, and token ids follow merge order (our layout:
  specials, 256 byte symbols, merges in order) -- a token's rank is its merge's priority;
* each token's merge is the split tiktoken itself builds from lower ranks
  (:func:`tokstudy.tokenizer.ranks_to_merges` gives back exactly the merges);
* the pre-tokenizer is ``Split(pattern, isolated)`` + plain ``ByteLevel`` (or
  ByteLevel alone: identity, exported as the pattern ``[\\s\\S]+``, one piece per
  text), with no normalizer.

Pattern caveat: the HF split runs the pattern in Oniguruma, tiktoken in Rust
``fancy-regex``; ``tests/test_export.py`` checks identical ids on the repository's
own source files and on edge-case text for our named patterns.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from pathlib import Path

from tokstudy import paths, tokenizer
from tokstudy.errors import TokenizerError

__all__ = ["IDENTITY_PATTERN", "check_out", "encoding", "export", "is_export", "ranks"]

IDENTITY_PATTERN = r"[\s\S]+"  # the whole text as one piece: the identity pre-tokenizer in tiktoken


def _pattern(d: dict, name: str) -> str:
    """The split pattern of a tokenizer.json dict, if its pre-tokenization is one tiktoken can express."""
    if d.get("normalizer") is not None:
        raise TokenizerError(f"{name}: has a normalizer, which tiktoken cannot apply; cannot export to tiktoken")
    pre = d.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    plain_bl = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}
    if not steps or any(steps[-1].get(k) != v for k, v in plain_bl.items()):
        raise TokenizerError(f"{name}: pre-tokenizer is not ByteLevel(add_prefix_space=False, use_regex=False) "
                             "as tokstudy trains it; only tokstudy-trained BPEs export to tiktoken")
    if len(steps) == 1:
        return IDENTITY_PATTERN
    split = steps[0]
    if (len(steps) != 2 or split.get("type") != "Split" or split.get("behavior") != "Isolated"
            or split.get("invert") or "Regex" not in split.get("pattern", {})):
        raise TokenizerError(f"{name}: pre-tokenizer is not Split(regex, isolated) + ByteLevel; cannot export")
    return split["pattern"]["Regex"]


def ranks(handle: tokenizer.TokenizerHandle) -> tuple[dict[bytes, int], dict[str, int], str]:
    """``(mergeable_ranks, special_tokens, pat_str)`` of ``handle``; a TokenizerError if tiktoken's ids would differ."""
    if handle.kind == "tiktoken":
        enc = handle.tokenizer
        return dict(enc._mergeable_ranks), dict(enc._special_tokens), enc._pat_str
    if handle.kind != "bytelevel":
        raise TokenizerError(f"{handle.name}: a {handle.kind} tokenizer has no tiktoken form (byte-level BPE only)")
    d = tokenizer.tokenizer_json(handle.tokenizer)
    model = d["model"]
    if model.get("type") != "BPE":
        raise TokenizerError(f"{handle.name}: model is {model.get('type')}, not BPE; cannot export to tiktoken")
    pattern = _pattern(d, handle.name)
    specials = {handle.special_text(i): i for i in sorted(handle.special_ids)}
    vocab = model["vocab"]
    merges = tokenizer.merge_pairs(model)
    mergeable = {tokenizer.from_bytelevel(t): i for t, i in vocab.items() if i not in handle.special_ids}
    if len(mergeable) + len(specials) != handle.vocab_size:
        raise TokenizerError(f"{handle.name}: has non-special added tokens; tiktoken cannot hold them")
    first = len(mergeable) - len(merges)
    created = [vocab.get(a + b) for a, b in merges]
    if first < 0 or created != sorted(mergeable.values())[first:]:
        raise TokenizerError(f"{handle.name}: token ids do not follow merge order (or a merge re-creates a token); "
                             "tiktoken's rank-based BPE would give different ids, so it is not exported")
    if tokenizer.ranks_to_merges(mergeable) != merges:
        raise TokenizerError(f"{handle.name}: some merge differs from the split tiktoken builds from lower ranks; "
                             "tiktoken would give different ids, so it is not exported")
    return mergeable, specials, pattern


def is_export(out: str | os.PathLike) -> bool:
    """Whether ``NAME.json`` beside the rank file ``out`` is one :func:`export` wrote for it (keys, file name)."""
    out = Path(out)
    try:
        info = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(info, dict) and info.get("tiktoken_file") == out.name
            and {"pat_str", "special_tokens", "n_vocab", "tiktoken_sha256"} <= info.keys())


def check_out(out: str | os.PathLike, inputs=(), flag: str = "--tiktoken") -> tuple[Path, Path]:
    """``(out, NAME.json)`` if :func:`export` may write them: each absent, or both an earlier export (see
    :func:`is_export`); never a folder, a file of the user or an input. Else a one-line error naming ``flag``."""
    out = Path(out)
    if out.suffix != ".tiktoken":
        raise TokenizerError(f"{out}: the rank file must end in .tiktoken (e.g. {out.with_suffix('.tiktoken')})")
    ours = is_export(out)
    for path in (out, out.with_suffix(".json")):
        paths.check_output_file(path, flag=flag, ours=ours, inputs=inputs)
    return out, out.with_suffix(".json")


def export(handle: tokenizer.TokenizerHandle, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out`` (``NAME.tiktoken``) and ``NAME.json`` beside it (atomically); returns both paths.

    Only where :func:`check_out` allows it; a failed write leaves no new file behind.
    """
    out, side = check_out(out)
    mergeable, specials, pattern = ranks(handle)
    data = b"".join(base64.b64encode(t) + b" " + str(r).encode() + b"\n"
                    for t, r in sorted(mergeable.items(), key=lambda kv: kv[1]))
    info = {
        "name": out.stem,
        "pat_str": pattern,
        "special_tokens": specials,
        "n_vocab": handle.vocab_size,
        "tiktoken_file": out.name,
        "tiktoken_sha256": hashlib.sha256(data).hexdigest(),
        "source": str(getattr(handle, "source", None) or handle.name),
    }
    made = [p for p in (out, side, *out.parents) if not os.path.lexists(p)]
    try:
        paths.atomic_write(out, data)
        paths.atomic_write(side, json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    except BaseException:
        for p in made:  # the files and folders this call created, deepest first
            with contextlib.suppress(OSError):
                (p.rmdir if p.is_dir() else p.unlink)()
        raise
    return out, side


def encoding(tiktoken_file: str | os.PathLike):
    """A ``tiktoken.Encoding`` from an exported ``NAME.tiktoken`` and its ``NAME.json``."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    path = Path(tiktoken_file)
    side = path.with_suffix(".json")
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"{side}: cannot read the JSON beside {path.name} ({exc}); "
                             "re-run tokstudy export") from None
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != info.get("tiktoken_sha256"):
        raise TokenizerError(f"{path} has sha256 {got}, but {side.name} expects {info.get('tiktoken_sha256')}; "
                             "re-run tokstudy export")
    # load_tiktoken_bpe keeps a copy in tiktoken's cache dir, keyed by path: the hash makes a stale copy harmless
    return tiktoken.Encoding(name=info["name"], pat_str=info["pat_str"],
                             mergeable_ranks=load_tiktoken_bpe(str(path), expected_hash=got),
                             special_tokens=info["special_tokens"])
