"""A fine-tune's sample (tokstudy.finetune_data, stages.train.finetune_texts): line-aligned chunks of many
files, equal bytes per language, one sample per seed whatever the tokenizer."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from tokstudy import corpus, finetune_data, packing
from tokstudy.errors import DataError
from tokstudy.stages import inputs
from tokstudy.stages import train as train_step


def test_chunks_end_at_line_ends_and_a_long_line_is_cut_at_a_character_boundary():
    assert finetune_data.chunk_text("ab\ncd\nefgh\n", 6) == ["ab\ncd\n", "efgh\n"]  # 6 + 5 bytes; "efgh\n" won't fit
    assert finetune_data.chunk_text("ab\ncd\nefgh\n", 5) == ["ab\n", "cd\n", "efgh\n"]
    # a 5-byte line over a 4-byte limit: cut inside the line, the rest joins the next line
    assert finetune_data.chunk_text("a\nxxxxx\nb", 4) == ["a\n", "xxxx", "x\nb"]
    # "é" is 2 bytes: 4 bytes hold two; never half a character
    assert finetune_data.chunk_text("ééé\n", 4) == ["éé", "é\n"]
    assert finetune_data.chunk_text("ééé\n", 5) == ["éé", "é\n"]
    assert finetune_data.chunk_spans(b"ab\ncd\nefgh\n", 6) == [(0, 6), (6, 11)]
    text = "".join(random.Random(0).choice(["é", "x", "\n", "€", "🙂"]) for _ in range(2000))
    for n in (4, 7, 64):
        pieces = finetune_data.chunk_text(text, n)
        assert "".join(pieces) == text and max(len(p.encode()) for p in pieces) <= n


def test_a_chunk_size_under_one_character_names_the_param():
    with pytest.raises(DataError, match=r"chunk_bytes must be at least 4.*train.finetune_chunk_bytes"):
        finetune_data.chunk_text("abc", 3)


def test_equal_targets_cap_a_small_language_and_share_the_rest():
    assert finetune_data.equal_targets({"a": 10, "b": 100, "c": 100}, 100) == {"a": 10, "b": 45, "c": 45}
    assert finetune_data.equal_targets({"a": 50, "b": 50, "c": 50}, 100) == {"a": 33, "b": 33, "c": 34}
    assert finetune_data.equal_targets({"a": 5, "b": 7}, 100) == {"a": 5, "b": 7}  # all there is


def languages(n_docs: int = 30, lines: int = 40) -> dict[str, list[str]]:
    """Languages a, b (plenty) and s (300 bytes); every 10-byte line names its language and document."""
    out = {lang: ["".join(f"{lang}{d:03d}:{i:04d}\n" for i in range(lines)) for d in range(n_docs)]
           for lang in ("a", "b")}
    out["s"] = ["".join(f"s{d:03d}:{i:04d}\n" for i in range(10)) for d in range(3)]  # 3 x 10 lines x 10 bytes
    return out


def test_the_budget_is_shared_equally_over_languages_from_many_documents():
    texts = languages()
    assert sum(len(t) for t in texts["s"]) == 300
    chunks = finetune_data.sample(texts, 3000, 100, seed=1)
    assert all(len(c.encode()) <= 100 for c in chunks)
    by_lang = Counter()
    for c in chunks:
        by_lang[c[0]] += len(c.encode())
    assert by_lang == {"s": 300, "a": 1350, "b": 1350}  # s gives all it has; a and b share the rest
    docs = {line[:4] for c in chunks for line in c.splitlines() if line[0] != "s"}
    assert len(docs) >= 20  # 28 chunks of a and b from 60 documents: many files, not a few whole ones
    # round-robin over the languages (sorted): each of the first rounds holds one chunk of each language
    assert [c[0] for c in chunks[:6]] == ["a", "b", "s", "a", "b", "s"]
    assert all(c.endswith("\n") for c in chunks if c[0] == "s")  # whole chunks where nothing was cut


def test_the_sample_is_fixed_by_its_seed_not_by_the_input_order():
    texts = languages()
    once = finetune_data.sample(texts, 3000, 100, seed=1)
    shuffled = {lang: random.Random(5).sample(ts, len(ts)) for lang, ts in reversed(list(texts.items()))}
    assert finetune_data.sample(shuffled, 3000, 100, seed=1) == once


def test_another_seed_draws_other_chunks():
    texts = languages()
    one, two = (set(finetune_data.sample(texts, 3000, 100, seed=s)) for s in (1, 2))
    assert sum(len(c) for c in one) == sum(len(c) for c in two) == 3000
    assert len(one & two) < len(one) // 2  # s: its 3 chunks both times; a, b: 14 of 120 chunks each


def test_too_small_a_corpus_names_the_budget_param():
    with pytest.raises(DataError, match=r"hold 30 bytes \(1 languages\), fewer than the fine-tune budget of 31; "
                                        r"lower train.budget_bytes"):
        finetune_data.sample({"a": ["x" * 30]}, 31, 2048, seed=0)
    with pytest.raises(DataError, match=r"must be positive.*train.budget_bytes"):
        finetune_data.sample({"a": ["x" * 30]}, 0, 2048, seed=0)


def test_a_fine_tune_reads_the_same_bytes_whatever_its_tokenizer(smoke, tmp_path):
    keep, fvt = smoke.model("keep-b1"), smoke.model("fvt-b1")
    assert keep.tokenizer != fvt.tokenizer and keep.bytes == fvt.bytes
    texts = {spec.tokenizer: train_step.finetune_texts(smoke, spec, spec.bytes, 512, smoke.seed)
             for spec in (keep, fvt)}
    assert texts[keep.tokenizer] == texts[fvt.tokenizer]
    assert sum(len(t.encode()) for t in texts[keep.tokenizer]) == keep.bytes
    metas = [packing.pack(texts[spec.tokenizer], inputs.tokenizer_file(smoke, spec.tokenizer), tmp, 32)
             for spec, tmp in ((keep, tmp_path / "keep"), (fvt, tmp_path / "fvt"))]
    assert metas[0].texts_sha256 == metas[1].texts_sha256
    assert metas[0].tokenizer_sha256 != metas[1].tokenizer_sha256 and metas[0].n_tokens != metas[1].n_tokens
    # the smoke corpus's code languages, equal bytes each
    langs = Counter()
    docs = {d.text: d.language for d in corpus.read_split(inputs.corpus_file(smoke, "train.jsonl"))
            if d.domain == "code"}
    for t in texts[keep.tokenizer]:
        langs[next(lang for text, lang in docs.items() if t in text)] += len(t.encode())
    assert langs == {"python": keep.bytes // 2, "shell": keep.bytes // 2}
    # another data seed, other chunks of the same budget
    other = train_step.finetune_texts(smoke, keep, keep.bytes, 512, smoke.seed + 1)
    assert other != texts[keep.tokenizer] and sum(len(t.encode()) for t in other) == keep.bytes


def test_a_budget_over_the_corpus_names_the_run_and_the_param(smoke):
    spec = dataclasses.replace(smoke.model("keep-b2"), bytes=10**9)
    with pytest.raises(DataError, match=r"run 'keep-b2' \(code of the 'smoke' corpus\): .*fewer than the fine-tune "
                                        r"budget of 1000000000; lower train.budget_bytes"):
        train_step.finetune_texts(smoke, spec, spec.bytes, 2048, smoke.seed)
