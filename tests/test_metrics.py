"""Compression metrics against hand-computed values on toy tokenizers."""

import math
from collections import Counter

import pytest

from tokstudy import metrics
from tokstudy.errors import MetricsError
from tokstudy.metrics import Counts


class WordTok:
    """Whitespace tokenizer over a fixed word vocabulary (the tokenizer under test)."""

    name = "words"
    vocab = {"ab": 0, "cd": 1, "é": 2, "x": 3, "y": 4, "z": 5, "w": 6, "v": 7}
    vocab_size = 8
    special_ids: set = set()

    def __init__(self):
        self.calls = 0

    def encode(self, text):
        self.calls += 1
        return [self.vocab[w] for w in text.split()]


class CharTok:
    """One token per character (the base tokenizer: base tokens == chars)."""

    name = "chars"
    vocab_size = 0x110000
    special_ids: set = set()

    def __init__(self):
        self.calls = 0

    def encode(self, text):
        self.calls += 1
        return [ord(c) for c in text]


# english-a: "ab cd" (5 chars, 5 bytes, 2 words), "ab" (2, 2, 1), "" (skipped), "é" (1 char, 2 bytes, 1 word)
# code-b:    "x x x y" (7 chars, 7 bytes, 4 words)
# english-c: "y z" (3 chars, 3 bytes, 2 words)
DATASETS = {
    "english-a": ("english", ["ab cd", "ab", "", "é"]),
    "code-b": ("code", ["x x x y"]),
    "english-c": ("english", ["y z"]),
}


def test_token_counts_skip_empty_and_total_bytes_chars():
    c = metrics.token_counts(WordTok(), DATASETS["english-a"][1])
    assert (c.tokens, c.bytes, c.chars, c.docs) == (4, 9, 8, 3)
    assert c.counter == Counter({0: 2, 1: 1, 2: 1})


def test_hand_computed_dataset_metrics():
    tok = metrics.token_counts(WordTok(), DATASETS["english-a"][1])
    base = metrics.token_counts(CharTok(), DATASETS["english-a"][1])
    assert metrics.nsl(tok, base) == pytest.approx(4 / 8)
    assert metrics.bytes_per_token(tok) == pytest.approx(9 / 4)
    assert metrics.chars_per_token(tok) == pytest.approx(8 / 4)
    # p = (1/2, 1/4, 1/4): Σp^2.5 = 2^-2.5 + 2·2^-5; H_2.5 = log2(Σ)/(1-2.5); |V_obs| = 3
    h25 = math.log2(2**-2.5 + 2 * 2**-5) / (1 - 2.5)
    assert h25 == pytest.approx(1.375499, abs=1e-6)
    assert metrics.renyi_efficiency(tok.counter, 2.5) == pytest.approx(h25 / math.log2(3))
    assert metrics.renyi_efficiency(tok.counter, 2.5, vocab_size=8) == pytest.approx(h25 / 3)
    # α = 1 is Shannon: H = 1/2·1 + 2·1/4·2 = 1.5 bits
    assert metrics.renyi_efficiency(tok.counter, 1.0) == pytest.approx(1.5 / math.log2(3))
    assert metrics.renyi_efficiency(tok.counter, 1.0, vocab_size=8) == pytest.approx(0.5)
    assert metrics.utilisation(tok.counter, 8) == pytest.approx(3 / 8)


def test_renyi_entropy_approaches_shannon_as_alpha_to_one():
    counter = Counter({0: 5, 1: 3, 2: 1, 3: 1})
    assert metrics.renyi_entropy(counter, 1.0 + 1e-7) == pytest.approx(metrics.renyi_entropy(counter, 1.0), rel=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.5, 3.0])
def test_uniform_distribution_has_efficiency_one(alpha):
    counter = Counter({i: 7 for i in range(16)})
    assert metrics.renyi_efficiency(counter, alpha) == pytest.approx(1.0)
    assert metrics.renyi_efficiency(counter, alpha, vocab_size=16) == pytest.approx(1.0)
    assert metrics.renyi_efficiency(counter, alpha, vocab_size=256) == pytest.approx(0.5)  # 4 bits / 8 bits


def test_renyi_single_type_and_empty():
    assert math.isnan(metrics.renyi_efficiency(Counter({3: 10})))
    assert metrics.renyi_efficiency(Counter({3: 10}), vocab_size=4) == 0.0
    with pytest.raises(MetricsError):
        metrics.renyi_efficiency(Counter())


def test_nsl_refuses_different_documents():
    a = Counts(tokens=4, bytes=9, chars=8, docs=3)
    b = Counts(tokens=8, bytes=10, chars=8, docs=3)
    with pytest.raises(MetricsError, match="same documents"):
        metrics.nsl(a, b)
    assert metrics.nsl(4, 8) == 0.5


def _rows_by(rows):
    return {(r["dataset"], r["metric"]): r for r in rows}


def test_compression_rows_domain_mean_is_unweighted_over_datasets():
    rows = metrics.compression_rows(WordTok(), DATASETS, CharTok(), alpha=2.5, extra={"regex": "ws", "mix": "toy"})
    by = _rows_by(rows)
    assert by[("english-a", "nsl")]["value"] == pytest.approx(4 / 8)
    assert by[("english-c", "nsl")]["value"] == pytest.approx(2 / 3)
    assert by[("code-b", "nsl")]["value"] == pytest.approx(4 / 7)
    # unweighted mean over the domain's datasets, not the pooled 6/11
    mean_en = (4 / 8 + 2 / 3) / 2
    assert by[("mean:english", "nsl")]["value"] == pytest.approx(mean_en)
    assert by[("mean:english", "nsl")]["domain"] == "english"
    assert by[("mean:code", "nsl")]["value"] == pytest.approx(4 / 7)
    assert by[("average", "nsl")]["value"] == pytest.approx((mean_en + 4 / 7) / 2)
    assert by[("average", "nsl")]["domain"] == "all"
    tok = metrics.dataset_counts(WordTok(), DATASETS)
    base = metrics.dataset_counts(CharTok(), DATASETS)
    pooled = metrics.pooled_nsl(tok, base, ["english-a", "english-c"])
    assert pooled == pytest.approx(6 / 11)
    assert pooled != pytest.approx(mean_en)
    # bytes/token: english-a 9/4, english-c 3/2
    assert by[("mean:english", "bytes_per_token")]["value"] == pytest.approx((9 / 4 + 3 / 2) / 2)
    # code-b: x3 y1 -> Shannon-free check of the full-V variant at α=2.5
    h = math.log2((3 / 4) ** 2.5 + (1 / 4) ** 2.5) / (1 - 2.5)
    assert by[("code-b", "renyi_efficiency")]["value"] == pytest.approx(h / 1.0)  # log2(2) = 1
    assert by[("code-b", "renyi_efficiency_fullv")]["value"] == pytest.approx(h / 3)
    assert by[("code-b", "utilisation")]["value"] == pytest.approx(2 / 8)
    assert by[("english-a", "tokens")]["value"] == 4 and by[("english-a", "bytes")]["value"] == 9
    assert ("mean:english", "tokens") not in by  # totals are not averaged
    r = by[("code-b", "nsl")]
    assert (r["tokenizer"], r["regex"], r["mix"], r["vocab_size"], r["base"]) == ("words", "ws", "toy", 8, "chars")
    assert {r["metric"] for r in rows} >= {
        "bytes_per_token", "chars_per_token", "nsl", "renyi_efficiency", "renyi_efficiency_fullv",
        "utilisation", "tokens", "bytes",
    }


def test_compression_rows_with_precomputed_base_and_without_base():
    base = metrics.dataset_counts(CharTok(), DATASETS)
    a = metrics.compression_rows(WordTok(), DATASETS, CharTok())
    b = metrics.compression_rows(WordTok(), DATASETS, base)
    va = {(r["dataset"], r["metric"]): r["value"] for r in a}
    vb = {(r["dataset"], r["metric"]): r["value"] for r in b}
    assert va == pytest.approx(vb, nan_ok=True)
    none = metrics.compression_rows(WordTok(), DATASETS, None)
    assert "nsl" not in {r["metric"] for r in none}
    with pytest.raises(MetricsError, match="lack dataset"):
        metrics.compression_rows(WordTok(), DATASETS, {"code-b": base["code-b"]})


def test_limit_docs_keeps_first_non_empty():
    out = metrics.limit_docs(DATASETS, 2)
    assert out["english-a"] == ("english", ["ab cd", "ab"])
    assert out["code-b"] == ("code", ["x x x y"])
    assert metrics.limit_docs(DATASETS, None)["english-a"][1] == ["ab cd", "ab", "é"]


def test_base_counts_are_cached_per_folder_and_data(tmp_path):
    base = CharTok()
    cache = tmp_path / "t" / "metrics"
    first = metrics.base_counts(base, DATASETS, cache_dir=cache)
    calls = base.calls
    assert calls == 5  # 5 non-empty documents
    again = metrics.base_counts(base, DATASETS, cache_dir=cache)
    assert base.calls == calls  # served from the cache
    assert {k: v.to_json() for k, v in again.items()} == {k: v.to_json() for k, v in first.items()}
    assert len(list((tmp_path / "t" / "metrics").glob("base-chars-*.json"))) == 1
    metrics.base_counts(base, metrics.limit_docs(DATASETS, 1), cache_dir=cache)  # other data: another key
    assert base.calls > calls
    assert len(list((tmp_path / "t" / "metrics").glob("base-chars-*.json"))) == 2
    calls = base.calls
    metrics.base_counts(base, DATASETS)  # no cache folder: counted again, nothing written
    assert base.calls == calls + 5 and len(list(cache.glob("*.json"))) == 2


class VocabTok:
    def __init__(self, name, tokens, specials=()):
        self.name, self.tokens, self.special_ids = name, tokens, set(specials)
        self.vocab_size = len(tokens)

    def token_bytes(self, i):
        return self.tokens[i]


def test_vocab_overlap_on_toy_vocabularies():
    a = VocabTok("A", [b"a", b"b", b"ab", b"<s>", b"a"], specials=[3])  # duplicate b"a" (byte fallback)
    b = VocabTok("B", [b"a", b"b", b"ba", b"abc", b""])
    ov = metrics.vocab_overlap(a, b)
    assert ov.shared == {b"a", b"b"}
    assert ov.only_a == {b"ab"}
    assert ov.only_b == {b"ba", b"abc"}
    assert ov.jaccard == pytest.approx(2 / 5)
    rows = {(r["tokenizer"], r["metric"], r.get("token_length")): r["value"] for r in ov.rows()}
    assert rows[("A", "vocab_jaccard", None)] == pytest.approx(0.4)
    assert rows[("A", "vocab_only_tokenizer", None)] == 1 and rows[("A", "vocab_only_other", None)] == 2
    assert rows[("A", "token_length_count", 1)] == 2 and rows[("A", "token_length_count", 2)] == 1
    assert rows[("B", "token_length_count", 3)] == 1
    assert rows[("B", "token_length_mean", None)] == pytest.approx((1 + 1 + 2 + 3) / 4)
    assert all("metric" in r and "value" in r for r in ov.rows())



# --------------------------------------------------------------------------- per-document counts and intervals


def test_per_document_counts_in_order_and_through_json():
    c = metrics.token_counts(WordTok(), DATASETS["english-a"][1])
    assert (c.doc_tokens, c.doc_bytes) == ([2, 1, 1], [5, 2, 2])  # "" skipped; "é" is 2 bytes
    back = Counts.from_json(c.to_json())
    assert (back.doc_tokens, back.doc_bytes, back.tokens) == ([2, 1, 1], [5, 2, 2], 4)
    base = metrics.dataset_counts(CharTok(), DATASETS)
    ours = metrics.dataset_counts(WordTok(), DATASETS)
    assert metrics.document_counts(ours, base) == {
        "code-b": {"bytes": [7], "tokens": [4], "base_tokens": [7]},
        "english-a": {"bytes": [5, 2, 2], "tokens": [2, 1, 1], "base_tokens": [5, 2, 1]},
        "english-c": {"bytes": [3], "tokens": [2], "base_tokens": [3]},
    }
    other = metrics.dataset_counts(CharTok(), {"code-b": ("code", ["x"])})
    with pytest.raises(MetricsError, match="'code-b': the base was counted on other documents"):
        metrics.document_counts({"code-b": ours["code-b"]}, other)


# two documents: "x y" (2 words / 3 chars) and "x" (1 / 1). A resample takes both of one (NSL 2/3 or 1, p = 1/4
# each) or one of each (3/4, p = 1/2); a one-document dataset "y z" is 2/3 whatever is drawn.
TWO = {"code-x": ("code", ["x y", "x"]), "code-y": ("code", ["y z"])}


def test_nsl_interval_hand_computed():
    ours, base = metrics.dataset_counts(WordTok(), TWO), metrics.dataset_counts(CharTok(), TWO)
    lo, hi = metrics.nsl_interval(ours, base, ["code-x"], 2000, 0.95, 0)
    assert (lo, hi) == (pytest.approx(2 / 3), pytest.approx(1.0))
    assert metrics.nsl_interval(ours, base, ["code-x"], 2000, 0.2, 0) == (0.75, 0.75)  # 40th/60th: the middle
    # a domain's interval is the one of the mean over its datasets: (2/3 + 2/3) / 2 ... (1 + 2/3) / 2
    lo, hi = metrics.nsl_interval(ours, base, ["code-x", "code-y"], 2000, 0.95, 0)
    assert (lo, hi) == (pytest.approx(2 / 3), pytest.approx(5 / 6))
    # counts of the whole dataset without per-document lists (an old cache) are refused, never bootstrapped
    stale = {"code-x": Counts(tokens=3, bytes=4, chars=4, docs=2)}
    with pytest.raises(MetricsError, match="'code-x': no per-document counts"):
        metrics.nsl_interval(stale, base, ["code-x"], 10, 0.95, 0)


def test_compression_rows_carry_the_domain_intervals():
    rows = metrics.compression_rows(WordTok(), TWO, metrics.dataset_counts(CharTok(), TWO), n_boot=500,
                                    confidence=0.95, seed=3)
    got = {(r["dataset"], r["metric"]): r for r in rows}
    assert got[("mean:code", "nsl")]["value"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    low, high = got[("mean:code", "nsl_ci_low")], got[("mean:code", "nsl_ci_high")]
    assert (low["value"], high["value"]) == (pytest.approx(2 / 3), pytest.approx(5 / 6))
    assert (low["n_boot"], low["confidence"]) == (500, 0.95)
    assert ("average", "nsl_ci_low") not in got  # intervals are per domain only
    plain = metrics.compression_rows(WordTok(), TWO, metrics.dataset_counts(CharTok(), TWO))
    assert not [r for r in plain if r["metric"] in metrics.INTERVAL_METRICS]


def test_stratified_ratio_ci_bad_input():
    from tokstudy import bootstrap
    from tokstudy.errors import StatsError

    with pytest.raises(StatsError, match=r"0 < confidence < 1 and n_boot >= 1, got 1.5, 10 \(metrics.nsl_interval"):
        bootstrap.stratified_ratio_ci([([1], [1])], 10, 1.5, 0)
    with pytest.raises(StatsError, match="group 0: 2 numerators and 1 denominators"):
        bootstrap.stratified_ratio_ci([([1, 2], [1])], 10, 0.9, 0)
    with pytest.raises(StatsError, match="no groups"):
        bootstrap.stratified_ratio_ci([], 10, 0.9, 0)
