"""Inference-cost model against hand-computed values; the notebook tables against synthetic rows."""

import numpy as np
import pytest

from tokstudy import costs, optimum
from tokstudy.costs import ModelShape
from tokstudy.errors import CostsError
from tokstudy.optimum import NslFit

# head_dim 4; per layer: Q 8·8 + O 8·8 + K,V 2·8·(1·4) = 192, plain MLP 2·8·16 = 256 -> 448; body 896
TINY = ModelShape(n_layers=2, d_model=8, n_heads=2, n_kv_heads=1, d_ff=16, mlp="plain", vocab_size=10, context=4)


def test_param_counts_tiny_shape():
    assert costs.param_counts(TINY) == {"embedding": 80, "head": 80, "body": 896, "total": 1056}
    tied = costs.param_counts(ModelShape(**{**TINY.__dict__, "tied": True}))
    assert tied == {"embedding": 80, "head": 0, "body": 896, "total": 976}
    # gated MLP: 3 matrices -> 192 + 3·8·16 = 576 per layer
    assert costs.body_params(ModelShape(n_layers=2, d_model=8, n_heads=2, n_kv_heads=1, d_ff=16)) == 1152


def test_kaplan_body_and_llama_defaults():
    plain = ModelShape(n_layers=3, d_model=16, n_heads=4, mlp="plain")  # d_ff = 4d, no GQA
    assert costs.body_params(plain) == 12 * 3 * 16**2
    assert ModelShape(n_layers=1, d_model=4096, n_heads=32).ff == 11008  # Llama-2-7B's 8/3·d rounded to 256
    llama7b = ModelShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008)
    assert costs.param_counts(llama7b)["total"] == 6_738_149_376  # Llama-2-7B without norms (6.74B)


def test_flops_per_token_tiny_shape():
    # 2·896 + 2·V·d (2·10·8) + 2·n_layers·ctx·d_attn (2·2·4·8)
    assert costs.flops_per_token(TINY) == 1792 + 160 + 128
    assert costs.flops_per_token(TINY, ctx=0) == 1952
    assert costs.flops_per_token(TINY, include_attention=False) == 1952
    assert costs.flops_per_byte(TINY, 2.5) == pytest.approx(2080 / 2.5)


def test_kv_cache_bytes():
    # 2 · n_layers 2 · kv_heads 1 · head_dim 4 · 2 bytes = 32 bytes per token
    assert costs.kv_cache_bytes(TINY, 1) == 32
    assert costs.kv_cache_bytes(TINY, 10, dtype_bytes=2, batch=3) == 960
    assert costs.kv_cache_bytes(TINY, 10, dtype_bytes=4) == 640
    assert costs.kv_cache_bytes_per_doc(TINY, 100, 2.5) == 32 * 40


def test_effective_context_and_variant_costs():
    assert costs.effective_context_bytes(4096, 3.5) == 14336
    v = costs.variant_costs(TINY, 2.5, doc_bytes=100)
    assert v["effective_context_bytes"] == 10
    assert v["flops_per_byte"] == pytest.approx(832)
    assert v["kv_cache_bytes_per_doc"] == 1280
    assert v["embedding_share"] == pytest.approx(160 / 1056)
    assert v["weights_bytes"] == 2112


def test_predicted_speed_ratio():
    big_v = TINY.with_vocab(20)  # flops 1792 + 320 + 128 = 2240
    assert costs.predicted_speed_ratio(TINY, 3.0, TINY, 2.0) == pytest.approx(1.5)
    assert costs.predicted_speed_ratio(TINY, 3.0, big_v, 2.0) == pytest.approx((3 / 2080) / (2 / 2240))
    assert costs.predicted_speed_ratio(TINY, 3.0, big_v, 2.0, regime="steps") == pytest.approx(1.5)
    # memory-bound: weights (1056 vs 1216 params) ·2 bytes + KV of 4 tokens (128 bytes)
    mem = costs.predicted_speed_ratio(TINY, 3.0, big_v, 2.0, regime="memory")
    assert mem == pytest.approx((3 / (2112 + 128)) / (2 / (2432 + 128)))
    with pytest.raises(CostsError):
        costs.predicted_speed_ratio(TINY, 3.0, big_v, 2.0, regime="nope")


def _compression_rows():
    """Synthetic compression rows of a 4-size sweep with two code datasets."""
    rows = []
    true = NslFit(0.7, 0.9, 0.45)
    for name, v in (("s1", 300), ("s2", 400), ("s3", 512), ("s4", 768)):
        nsl = float(true(v))
        per = {"py": (nsl * 0.9, 3.0), "c": (nsl * 1.1, 2.0)}
        for ds, (n, bpt) in per.items():
            rows += [
                {"kind": "compression", "tokenizer": name, "vocab_size": v, "dataset": ds, "domain": "code",
                 "metric": "nsl", "value": n},
                {"kind": "compression", "tokenizer": name, "vocab_size": v, "dataset": ds, "domain": "code",
                 "metric": "bytes_per_token", "value": bpt},
            ]
        rows += [
            {"kind": "compression", "tokenizer": name, "vocab_size": v, "dataset": "mean:code", "domain": "code",
             "metric": "nsl", "value": nsl},
            {"kind": "compression", "tokenizer": name, "vocab_size": v, "dataset": "mean:code", "domain": "code",
             "metric": "bytes_per_token", "value": 2.5},
        ]
    rows.append({"kind": "paper_sweep", "tokenizer": "s1", "vocab_size": 1, "dataset": "mean:code",
                 "domain": "code", "metric": "nsl", "value": 9.0})
    return rows, true


def test_sweep_points_cost_rows_and_optimal_rows():
    rows, true = _compression_rows()
    pts = costs.sweep_points(rows, ["s1", "s2", "s3", "s4"], "code")
    assert [p["vocab_size"] for p in pts] == [300, 400, 512, 768]
    p = pts[0]
    assert p["nsl"] == pytest.approx(float(true(300)))  # the paper_sweep row is ignored
    assert p["bytes_per_token"] == 2.5
    # base bpt per dataset = bpt·nsl: (3·0.9·n + 2·1.1·n)/2
    assert p["base_bytes_per_token"] == pytest.approx((3 * 0.9 + 2 * 1.1) / 2 * float(true(300)))
    shapes = {"tiny": TINY}
    crow = costs.cost_rows(pts, shapes, base_vocab_size=10, doc_bytes=100)
    by = {(r["tokenizer"], r["metric"]): r["value"] for r in crow}
    assert by[("s1", "effective_context_bytes")] == pytest.approx(4 * 2.5)
    assert by[("s1", "effective_context_ratio")] == pytest.approx(2.5 / p["base_bytes_per_token"])
    s1 = TINY.with_vocab(300)
    expected = (2.5 / costs.flops_per_token(s1)) / (p["base_bytes_per_token"] / costs.flops_per_token(TINY))
    assert by[("s1", "predicted_speed_ratio")] == pytest.approx(expected)
    assert by[("s1", "params_embedding")] == 300 * 8
    orow = optimum.optimal_vocab_rows(pts, shapes, [(1, 100), (8, 100)], grid=np.arange(16, 20_000, 4))
    fit = {r["metric"]: r["value"] for r in orow if r.get("nsl_source") == "measured" and "model" not in r}
    assert (fit["nsl_fit_a"], fit["nsl_fit_b"], fit["nsl_fit_c"]) == pytest.approx((0.7, 0.9, 0.45), abs=2e-3)
    opts = [r for r in orow if r["metric"] == "optimal_vocab_size"]
    # 2 NSL sources × (compute, compute+attention, 2 memory settings)
    assert len(opts) == 8 and {r["nsl_source"] for r in opts} == {"measured", "paper"}
    mem = {r["batch"]: r["value"] for r in opts if r["objective"] == "memory" and r["nsl_source"] == "measured"}
    assert mem[8] > mem[1]
    with pytest.raises(CostsError, match="no compression rows"):
        costs.sweep_points(rows, ["missing"], "code")


def test_speed_check_rows_hand_computed():
    # anchor a: 100 tok/s × 2 B/tok = 200 B/s; b: 80 tok/s × 3 B/tok = 240 B/s -> measured ratio 1.2
    measured = [{"tokenizer": "b", "vocab_size": 20, "tokens_per_s": 80.0, "source": "random-weights"},
                {"tokenizer": "a", "vocab_size": 10, "tokens_per_s": 100.0, "source": "random-weights"}]
    rows = costs.speed_check_rows(measured, {"a": 2.0, "b": 3.0}, TINY, regime="steps")
    by = {(r["metric"], r.get("tokenizer"), r.get("regime")): r for r in rows}
    assert by[("gen_tokens_per_s_random", "b", None)]["value"] == 80.0
    assert by[("speed_measured_ratio", "a", None)]["value"] == 1.0
    assert by[("speed_measured_ratio", "b", None)]["value"] == pytest.approx(1.2)
    # steps: predicted 3/2 = 1.5 -> error 1.2/1.5 - 1 = -0.2
    assert by[("speed_predicted_ratio", "b", "steps")]["value"] == pytest.approx(1.5)
    assert by[("speed_prediction_error", "b", "steps")]["value"] == pytest.approx(-0.2)
    assert by[("speed_prediction_error", "b", "steps")]["primary"] is True
    # compute: TINY flops/token 2080 at V=10, 2240 at V=20 -> predicted (3/2240)/(2/2080) = 1.392857...
    pc = 1.5 * 2080 / 2240
    assert by[("speed_predicted_ratio", "b", "compute")]["value"] == pytest.approx(pc)
    assert by[("speed_prediction_error", "b", "compute")]["value"] == pytest.approx(1.2 / pc - 1)
    assert by[("speed_prediction_error", "b", "compute")]["primary"] is False
    assert ("speed_prediction_error", "a", "steps") not in by  # the anchor has no error row
    assert by[("speed_prediction_mae", None, "steps")]["value"] == pytest.approx(0.2)
    assert {r["anchor"] for r in rows} == {"a"} and {r.get("source") for r in rows} == {"random-weights"}
    assert sum(r["metric"] == "speed_predicted_ratio" for r in rows) == 2 * len(costs.REGIMES)


def test_speed_check_rows_keep_every_round_against_the_anchors_same_round():
    # round 0: a 100, b 80 tok/s; round 1: a 50 (a busy neighbour), b 40 -> ratios (80*3)/(100*2), (40*3)/(50*2)
    measured = [{"tokenizer": "a", "vocab_size": 10, "tokens_per_s": 100.0, "round_tokens_per_s": [100.0, 50.0]},
                {"tokenizer": "b", "vocab_size": 20, "tokens_per_s": 80.0, "round_tokens_per_s": [80.0, 40.0]}]
    rows = costs.speed_check_rows(measured, {"a": 2.0, "b": 3.0}, TINY)
    got = {(r["tokenizer"], r["round"]): r["value"] for r in rows if r["metric"] == "speed_measured_ratio_round"}
    assert got == {("a", 0): 1.0, ("a", 1): 1.0, ("b", 0): pytest.approx(1.2), ("b", 1): pytest.approx(1.2)}
    no_rounds = costs.speed_check_rows([{k: v for k, v in m.items() if k != "round_tokens_per_s"} for m in measured],
                                       {"a": 2.0, "b": 3.0}, TINY)
    assert not [r for r in no_rounds if r["metric"] == "speed_measured_ratio_round"]


def test_speed_check_rows_shape_uses_padded_vocab_and_validates():
    measured = [{"tokenizer": "a", "vocab_size": 10, "model_vocab_size": 64, "tokens_per_s": 100.0},
                {"tokenizer": "b", "vocab_size": 70, "model_vocab_size": 128, "tokens_per_s": 100.0}]
    seen = []
    costs.speed_check_rows(measured, {"a": 2.0, "b": 2.0}, lambda v: seen.append(v) or TINY.with_vocab(v))
    assert sorted(set(seen)) == [64, 128]
    with pytest.raises(CostsError, match="bytes/token"):
        costs.speed_check_rows(measured, {"a": 2.0}, TINY)
    with pytest.raises(CostsError, match=">= 2"):
        costs.speed_check_rows(measured[:1], {"a": 2.0}, TINY)
    with pytest.raises(CostsError, match="anchor"):
        costs.speed_check_rows(measured, {"a": 2.0, "b": 2.0}, TINY, anchor="zz")
    with pytest.raises(CostsError, match="tokens_per_s"):
        costs.speed_check_rows([measured[0], {**measured[1], "tokens_per_s": 0}], {"a": 2.0, "b": 2.0}, TINY)


def test_shape_from_size_pads_the_vocab_like_build_model():
    from tokstudy import params

    s = costs.shape_from_size(params.load("cpu").train("pretrain").size, 2049, context=128)
    assert (s.vocab_size, s.ff, s.mlp, s.context, s.tied, s.name) == (2112, 512, "gated", 128, False, "cpu")
