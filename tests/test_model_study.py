"""The model-side study's glue: byte budgets for fine-tunes."""

import pytest

from tokstudy import packing
from tokstudy.stages import models


def test_budget_texts_cuts_the_same_bytes_whatever_the_tokenizer():
    texts = ["abcd", "é" * 3, "xyz"]  # 4 + 6 + 3 bytes
    assert models.budget_texts(texts, 4, "r") == ["abcd"]
    assert models.budget_texts(texts, 7, "r") == ["abcd", "é"]  # 3 bytes left: one whole 2-byte character
    assert models.budget_texts(texts, 13, "r") == texts
    with pytest.raises(packing.DataError, match=r"run 'r'.*13 bytes, fewer than its budget of 14.*train.budget_bytes"):
        models.budget_texts(texts, 14, "r")
