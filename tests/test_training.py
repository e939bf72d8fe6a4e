"""tokstudy.training (+ checkpoint, distributed): schedule, training, exact resume, damaged checkpoints, DDP on CPU."""

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
from tokstudy import checkpoint, model, packing, params, training
from tokstudy.params import ModelSize, TrainParams

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
TEXTS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(60)]
SIZE = ModelSize(name="test", n_layers=2, d_model=32, n_heads=4, d_ff=64, n_kv_heads=None, rope_theta=10000.0,
                 pad_vocab_to=64, tie_embeddings=False)


def tiny_tokenizer():
    return tiny_bpe(TEXTS, 300, SPECIALS)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    tok = tiny_tokenizer()
    packing.pack(TEXTS, tok, root / "train", seq_len=16)
    packing.pack(TEXTS[:10], tok, root / "val", seq_len=16)
    return root, tok


def cfg(**kw) -> TrainParams:
    """The smoke profile's pretraining settings with every value these tests rely on spelled out."""
    base = dict(stage="pretrain", size=SIZE, seq_len=16, batch_size=4, grad_accum=1, lr=3e-3, min_lr_ratio=0.1,
                warmup_steps=2, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0, checkpoint_every=4,
                keep_checkpoints=2, eval_every=6, eval_batches=1, log_every=2, compile=False, fsdp=False)
    return dataclasses.replace(params.load("smoke").train("pretrain"), **{**base, **kw})


def test_lr_schedule_hand_computed():
    m = lambda s: training.lr_multiplier(s, warmup_steps=4, max_steps=14, min_lr_ratio=0.1)  # noqa: E731
    assert [m(0), m(3)] == [0.25, 1.0]
    assert m(4) == 1.0 and math.isclose(m(9), 0.55) and math.isclose(m(14), 0.1) and m(30) == pytest.approx(0.1)


def test_train_decreases_loss_and_writes_curves(packed, tmp_path):
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    val = packing.PackedDataset(root / "val", shuffle=False)
    res = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, val_dataset=val, max_steps=12)
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
    ds = packing.PackedDataset(root / "train", seed=0)
    full = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path / "a", max_steps=10)
    # pre-empted after 6 steps: the last checkpoint is step 4, so 2 steps are redone
    part = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10, stop_after=6)
    assert part.metrics["steps"] == 6
    assert [p.name for p in checkpoint.checkpoints(tmp_path / "b")] == ["step_0000004"]
    # a restart rebuilds the same starting model; the trained weights come from the checkpoint
    done = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10)
    assert done.metrics["resumed_from"] == 4
    a, b = full.model.state_dict(), done.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in full.curve] == [r["loss"] for r in done.curve]
    again = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path / "b", max_steps=10)
    assert again.metrics["resumed_from"] == 10  # a finished run is not retrained
    assert all(torch.equal(a[k], again.model.state_dict()[k]) for k in a)


def test_a_checkpoint_written_by_other_training_code_is_not_resumed(packed, tmp_path, monkeypatch, caplog):
    """A finished run whose training code has since changed trains again: resuming its final checkpoint would
    return the old weights under the new code (DVC reruns the stage because the code changed)."""
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    assert training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4).metrics["resumed_from"] == 4
    monkeypatch.setattr(training, "code_sha256", lambda: "0" * 64)  # as if training.py had been edited
    with caplog.at_level("WARNING"):
        res = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0 and res.metrics["steps"] == 4
    assert "different setup ['code']" in caplog.text and (tmp_path / "checkpoints.stale").is_dir()


def test_code_sha256_covers_the_weight_code_and_torch(monkeypatch, tmp_path):
    """The hash changes with the code of any weight-deciding source and with the torch version; an edit to a
    comment or docstring keeps it."""
    import hashlib
    import sys

    files = [Path(sys.modules[f"tokstudy.{m}"].__file__) for m in training.WEIGHT_CODE]
    assert [f.name for f in files] == ["training.py", "model.py", "distributed.py", "checkpoint.py", "packing.py",
                                       "threads.py"]
    expected = hashlib.sha256(torch.__version__.encode())
    for f in files:
        expected.update(training.code_text(f.read_text()).encode())
    training.code_sha256.cache_clear()
    assert training.code_sha256() == expected.hexdigest()
    source = files[4].read_text()
    edits = {  # packing.py, edited: (text, whether the hash must change)
        "comment": (source + "\n# an edit\n", False),
        "docstring": (source.replace('"""', '"""An edited docstring. ', 1), False),
        "layout": (source.replace("\n\n\n", "\n\n\n\n"), False),
        "code": (source + "\nEXTRA = 1\n", True),
        "constant": (source.replace("= 0", "= 1", 1), True),
    }
    for what, (text, changes) in edits.items():
        assert text != source, what
        edited = tmp_path / f"{what}.py"
        edited.write_text(text)
        monkeypatch.setattr(sys.modules["tokstudy.packing"], "__file__", str(edited))
        training.code_sha256.cache_clear()
        assert (training.code_sha256() != expected.hexdigest()) == changes, what
        monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    training.code_sha256.cache_clear()
    assert training.code_sha256() != expected.hexdigest()
    monkeypatch.undo()
    training.code_sha256.cache_clear()


def test_code_text_drops_only_comments_layout_and_docstrings():
    """Hand-made cases: docstrings of a module, class and function go, a string statement later in a body and
    every string expression stay."""
    base = 'x = 1\n\nclass A:\n    y = "keep"\n\ndef f():\n    z = 0\n    "late"\n    return z\n'
    documented = ('"""Module doc."""\n# comment\nx = 1  # trailing\n\n\nclass A:\n    """Class doc."""\n'
                  '    y = "keep"\n\ndef f():\n    """Function doc."""\n    z = 0\n    "late"\n    return z\n')
    assert training.code_text(documented) == training.code_text(base)
    assert training.code_text(base.replace('"keep"', '"kept"')) != training.code_text(base)
    assert training.code_text(base.replace('"late"', '"later"')) != training.code_text(base)
    only_doc = training.code_text('def g():\n    """Only a docstring."""\n')
    assert only_doc == training.code_text("def g():\n    pass\n")


def test_a_truncated_newest_checkpoint_resumes_from_the_previous_one(packed, tmp_path, caplog):
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=10, stop_after=9)
    step4, step8 = checkpoint.checkpoints(tmp_path)
    assert (step4.name, step8.name) == ("step_0000004", "step_0000008")
    state = step8 / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # a full disk / killed copy
    with caplog.at_level("WARNING"):
        res = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=10, stop_after=0)
    assert res.metrics["resumed_from"] == 4
    expected = torch.load(step4 / "state.pt", weights_only=False)["model"]
    got = res.model.state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert str(state) in caplog.text and "does not load" in caplog.text
    assert not step8.exists()  # removed, so pruning can never keep it over the checkpoints that replace it


def test_only_unreadable_checkpoints_start_over(packed, tmp_path):
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    (only,) = checkpoint.checkpoints(tmp_path)
    (only / "state.pt").write_bytes(b"not a checkpoint")
    res = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0 and res.metrics["steps"] == 4
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step_0000004"]
    assert torch.load(only / "state.pt", weights_only=False)["step"] == 4  # rewritten, readable


def test_stale_temporary_checkpoint_folders_are_removed(packed, tmp_path):
    root, _ = packed
    stale = tmp_path / "checkpoints" / ".step_0000004.k3j_x9q2.tmp"
    stale.mkdir(parents=True)
    (stale / "state.pt").write_bytes(b"half written")
    keep = tmp_path / "checkpoints" / "notes.txt"  # anything else is not ours to delete
    keep.write_text("x")
    ds = packing.PackedDataset(root / "train", seed=0)
    res = training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=1)
    assert res.metrics["resumed_from"] == 0 and not stale.exists() and keep.is_file()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")] == []


def test_a_different_setup_starts_over_and_keeps_the_old_checkpoints(packed, tmp_path):
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    training.train(model.build_model(SIZE, 300), ds, cfg(), tmp_path, max_steps=4)
    # changed params: the old checkpoints are kept aside, the run starts from step 0
    res = training.train(model.build_model(SIZE, 300), ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0
    assert checkpoint.checkpoints(tmp_path) and any((tmp_path / "checkpoints.stale").iterdir())
    # same params, different starting weights (e.g. a re-trained base model): starts over too
    other = model.build_model(SIZE, 300, seed=1)
    assert training.state_sha256(other) != training.state_sha256(model.build_model(SIZE, 300))
    res = training.train(other, ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 0
    # unchanged: resumes (nothing left to do)
    res = training.train(model.build_model(SIZE, 300, seed=1), ds, cfg(lr=1e-3), tmp_path, max_steps=4)
    assert res.metrics["resumed_from"] == 4
    res = training.train(model.build_model(SIZE, 300), ds, cfg(lr=1e-3), tmp_path, max_steps=4, resume=False)
    assert res.metrics["resumed_from"] == 0


def test_seq_len_mismatch_is_a_clear_error(packed, tmp_path):
    root, _ = packed
    with pytest.raises(packing.DataError, match="re-pack"):
        training.train(model.build_model(SIZE, 300), packing.PackedDataset(root / "train"), cfg(seq_len=32), tmp_path,
                       max_steps=1)


def test_grad_accumulation_matches_a_larger_batch(packed, tmp_path):
    root, _ = packed
    ds = packing.PackedDataset(root / "train", seed=0)
    one = training.train(model.build_model(SIZE, 300), ds, cfg(batch_size=8), tmp_path / "1", max_steps=3)
    two = training.train(model.build_model(SIZE, 300), ds, cfg(batch_size=4, grad_accum=2), tmp_path / "2", max_steps=3)
    assert one.metrics["tokens"] == two.metrics["tokens"]
    for p, q in zip(one.model.parameters(), two.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


DDP_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys, torch
    from tokstudy import model, packing, params, training
    from tokstudy.params import ModelSize
    root, out = sys.argv[1], sys.argv[2]
    size = ModelSize(name="test", n_layers=2, d_model=32, n_heads=4, d_ff=64, n_kv_heads=None, rope_theta=10000.0,
                     pad_vocab_to=64, tie_embeddings=False)
    cfg = dataclasses.replace(
        params.load("smoke").train("pretrain"), stage="pretrain", size=size, seq_len=16, batch_size=2, grad_accum=1,
        lr=3e-3, min_lr_ratio=0.1, warmup_steps=2, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0,
        checkpoint_every=100, keep_checkpoints=2, eval_every=100, eval_batches=1, log_every=2, compile=False,
        fsdp=False)
    res = training.train(model.build_model(size, 300), packing.PackedDataset(root + "/train", seed=0), cfg,
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
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"], strict=True))
    m = r0["metrics"]
    assert m["world_size"] == 2 and m["tokens"] == 8 * 2 * 2 * 16 and m["final_loss"] < m["initial_loss"]
    assert (tmp_path / "run" / "checkpoints" / "step_0000008" / "state.pt").is_file()
