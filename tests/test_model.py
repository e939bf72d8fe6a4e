"""tokstudy.model: the one builder / loader / saver of causal LMs."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_bpe
from tokstudy import model
from tokstudy.errors import ModelError
from tokstudy.params import ModelSize

SIZE = ModelSize(name="test", n_layers=2, d_model=32, n_heads=4, d_ff=64, n_kv_heads=None, rope_theta=10000.0,
                 pad_vocab_to=64, tie_embeddings=False)
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>"]


def test_build_model_pads_vocab_and_counts_params():
    m = model.build_model(SIZE, 300)
    assert m.get_input_embeddings().num_embeddings == 320  # 300 rounded up to a multiple of 64
    c = model.param_counts(m)
    assert c["params_embedding"] == c["params_lm_head"] == 320 * 32
    # per layer: q,k,v,o 4*32*32 + MLP 3*32*64 + 2 norms of 32; plus the final norm
    assert c["params_body"] == 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32
    assert model.flops_per_token(m, 16) == 6 * (c["params"] - 320 * 32) + 12 * 2 * 32 * 16
    same = model.build_model(SIZE, 300)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), same.parameters(), strict=True))  # seeded


def test_save_and_load_model_round_trip(tmp_path):
    tok = tiny_bpe([f"def f{i}(x): return x * {i}\n" for i in range(40)], 300, SPECIALS)
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    m = model.build_model(SIZE, 300)
    model.save_model(m, tmp_path / "m", tokenizer=tmp_path / "tok" / "tokenizer.json")
    back = model.load_model(tmp_path / "m", vocab_size=300)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), back.parameters(), strict=True))
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    with pytest.raises(ModelError, match="transfer the model"):
        model.load_model(tmp_path / "m", vocab_size=1000)


def test_tiny_model_is_seeded_and_tied_on_request():
    a, b = model.tiny_model(50, seed=3), model.tiny_model(50, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    tied = model.tiny_model(50, tie=True)
    assert tied.get_output_embeddings().weight is tied.get_input_embeddings().weight
    assert model.tiny_model(50, arch="gpt2").config.model_type == "gpt2"
    with pytest.raises(ModelError, match="unknown arch 'bert'"):
        model.tiny_model(50, arch="bert")


def test_a_missing_lm_head_is_an_error_not_a_random_head(tmp_path):
    from safetensors.torch import load_file, save_file

    model.tiny_model(50).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    save_file({k: v for k, v in state.items() if not k.startswith("lm_head")}, weights, metadata={"format": "pt"})
    with pytest.raises(ModelError, match=r"lacks weights the model needs \(lm_head.weight"):
        model.load_model(tmp_path / "m")
