"""tokstudy.finetune: schedule, model sizes, training, exact resume, DDP on CPU."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import tiny_bpe
from tokstudy import data, finetune
from tokstudy.finetune import TrainError
from tokstudy.params import ModelSize, TrainParams

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
TEXTS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(60)]
SIZE = ModelSize(name="test", n_layers=2, d_model=32, n_heads=4, d_ff=64)


def tiny_tokenizer():
    return tiny_bpe(TEXTS, 300, SPECIALS)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    tok = tiny_tokenizer()
    data.pack(TEXTS, tok, root / "train", seq_len=16)
    data.pack(TEXTS[:10], tok, root / "val", seq_len=16)
    return root, tok


def cfg(**kw) -> TrainParams:
    base = dict(stage="pretrain", size=SIZE, seq_len=16, batch_size=4, lr=3e-3, warmup_steps=2,
                checkpoint_every=4, eval_every=6, eval_batches=1, log_every=2)
    return TrainParams(**{**base, **kw})


def test_lr_schedule_hand_computed():
    m = lambda s: finetune.lr_multiplier(s, warmup_steps=4, max_steps=14, min_lr_ratio=0.1)  # noqa: E731
    assert [m(0), m(3)] == [0.25, 1.0]
    assert m(4) == 1.0 and math.isclose(m(9), 0.55) and math.isclose(m(14), 0.1) and m(30) == pytest.approx(0.1)


def test_build_model_pads_vocab_and_counts_params():
    model = finetune.build_model(SIZE, 300)
    assert model.get_input_embeddings().num_embeddings == 320  # 300 rounded up to a multiple of 64
    c = finetune.param_counts(model)
    assert c["params_embedding"] == c["params_lm_head"] == 320 * 32
    # per layer: q,k,v,o 4*32*32 + MLP 3*32*64 + 2 norms of 32; plus the final norm
    assert c["params_body"] == 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32
    assert finetune.flops_per_token(model, 16) == 6 * (c["params"] - 320 * 32) + 12 * 2 * 32 * 16
    same = finetune.build_model(SIZE, 300)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))  # seeded


def test_train_decreases_loss_and_writes_curves(packed, tmp_path):
    root, _ = packed
    ds = data.PackedDataset(root / "train", seed=0)
    val = data.PackedDataset(root / "val", shuffle=False)
    res = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path, val_dataset=val, max_steps=12)
    assert res.loss_decreased and res.metrics["steps"] == 12
    assert res.metrics["tokens"] == 12 * 4 * 16
    curve = (tmp_path / "curve.csv").read_text().splitlines()
    assert curve[0] == "step,tokens,loss,lr,tokens_per_s" and len(curve) == 1 + 7  # step 1, 2, 4, ..., 12
    evals = (tmp_path / "evals.csv").read_text().splitlines()
    assert len(evals) == 1 + 2 and json.loads((tmp_path / "metrics.json").read_text())["val_bits_per_byte"] > 0
    rows = {r["metric"]: r for r in res.rows(model="t")}
    assert rows["mfu"]["approximate"] is True and 0 < rows["mfu"]["value"] < 1
    assert rows["tokens_per_s"]["value"] > 0 and rows["params"]["model"] == "t"


def test_interrupted_run_resumes_to_identical_weights(packed, tmp_path):
    root, _ = packed
    ds = data.PackedDataset(root / "train", seed=0)
    full = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path / "a", max_steps=10)
    # pre-empted after 6 steps: the last checkpoint is step 4, so 2 steps are redone
    part = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10, stop_after=6)
    assert part.metrics["steps"] == 6
    assert [p.name for p in finetune.checkpoints(tmp_path / "b")] == ["step_0000004"]
    # a restart rebuilds the same starting model; the trained weights come from the checkpoint
    done = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10)
    assert done.metrics["resumed_from"] == 4
    a, b = full.model.state_dict(), done.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in full.curve] == [r["loss"] for r in done.curve]
    again = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10)
    assert again.metrics["resumed_from"] == 10  # a finished run is not retrained
    assert all(torch.equal(a[k], again.model.state_dict()[k]) for k in a)


def test_a_different_setup_starts_over_and_keeps_the_old_checkpoints(packed, tmp_path):
    root, _ = packed
    ds = data.PackedDataset(root / "train", seed=0)
    finetune.train(finetune.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    # changed params: the old checkpoints are kept aside, the run starts from step 0
    res = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0
    assert finetune.checkpoints(tmp_path) and any((tmp_path / "checkpoints.stale").iterdir())
    # same params, different starting weights (e.g. a re-trained base model): starts over too
    other = finetune.build_model(SIZE, 300, seed=1)
    assert finetune.state_sha256(other) != finetune.state_sha256(finetune.build_model(SIZE, 300))
    res = finetune.train(other, ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0
    # unchanged: resumes (nothing left to do)
    res = finetune.train(finetune.build_model(SIZE, 300, seed=1), ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 4
    res = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(lr=1e-3), tmp_path, max_steps=4, resume=False)
    assert res.metrics["resumed_from"] == 0


def test_seq_len_mismatch_is_a_clear_error(packed, tmp_path):
    root, _ = packed
    with pytest.raises(data.DataError, match="re-pack"):
        finetune.train(finetune.build_model(SIZE, 300), data.PackedDataset(root / "train"), cfg(seq_len=32), tmp_path, max_steps=1)


def test_grad_accumulation_matches_a_larger_batch(packed, tmp_path):
    root, _ = packed
    ds = data.PackedDataset(root / "train", seed=0)
    one = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(batch_size=8), tmp_path / "1", max_steps=3)
    two = finetune.train(finetune.build_model(SIZE, 300), ds, cfg(batch_size=4, grad_accum=2), tmp_path / "2", max_steps=3)
    assert one.metrics["tokens"] == two.metrics["tokens"]
    for p, q in zip(one.model.parameters(), two.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_save_and_load_model_round_trip(packed, tmp_path):
    _, tok = packed
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    model = finetune.build_model(SIZE, 300)
    finetune.save_model(model, tmp_path / "m", tokenizer=tmp_path / "tok" / "tokenizer.json")
    back = finetune.load_model(tmp_path / "m", vocab_size=300)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), back.parameters()))
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    with pytest.raises(TrainError, match="transfer the model"):
        finetune.load_model(tmp_path / "m", vocab_size=1000)


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from tokstudy import data, finetune
    from tokstudy.params import ModelSize, TrainParams
    root, out = sys.argv[1], sys.argv[2]
    size = ModelSize(name="test", n_layers=2, d_model=32, n_heads=4, d_ff=64)
    cfg = TrainParams(stage="pretrain", size=size, seq_len=16, batch_size=2, lr=3e-3, warmup_steps=2,
                      checkpoint_every=100, log_every=2)
    res = finetune.train(finetune.build_model(size, 300), data.PackedDataset(root + "/train", seed=0), cfg,
                         out + "/run", max_steps=8)
    rank = torch.distributed.get_rank()
    torch.save({"params": [p.detach() for p in res.model.parameters()], "metrics": res.metrics}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()
    """
)


def test_ddp_two_cpu_processes_agree(packed, tmp_path):
    root, _ = packed
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(root), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"]))
    m = r0["metrics"]
    assert m["world_size"] == 2 and m["tokens"] == 8 * 2 * 2 * 16 and m["final_loss"] < m["initial_loss"]
    assert (tmp_path / "run" / "checkpoints" / "step_0000008" / "state.pt").is_file()
