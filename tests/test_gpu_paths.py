"""The `gpu` profile's code paths on CPU: bf16 autocast, torch.compile (inductor), FSDP2 under torchrun, FSDP resume.

No GPU has run this project; these tests run the same training code with only the
device differing (issue 12). Sizes are toy; the multi-process tests launch
``torch.distributed.run`` with two gloo processes, like the DDP test in test_training.py.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import tiny_bpe
from tokstudy import checkpoint, model, packing, params, training
from tokstudy.params import ModelSize

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
TEXTS = [f"def g{i}(y):\n    return y - {i} * {i % 5}\n" for i in range(60)]
TINY = ModelSize(name="tiny", n_layers=2, d_model=32, n_heads=4, d_ff=64, n_kv_heads=None, rope_theta=10000.0,
                 pad_vocab_to=64, tie_embeddings=False)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    tok = tiny_bpe(TEXTS, 300, SPECIALS)
    packing.pack(TEXTS, tok, root / "train", seq_len=16)
    packing.pack(TEXTS[:10], tok, root / "val", seq_len=16)
    return root


def gpu_cfg(**kw):
    """The `gpu` profile's pretraining settings through the same loader, at toy size and run length."""
    toy = dict(size=TINY, seq_len=16, batch_size=2, warmup_steps=2, lr=3e-3, checkpoint_every=4, eval_every=4,
               eval_batches=1, log_every=2)
    return dataclasses.replace(params.load("gpu").train("pretrain"), **{**toy, **kw})


def test_precision_and_compile_resolve_from_the_config():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    auto = params.load("gpu").train("pretrain")
    assert (auto.precision, auto.compile, auto.fsdp) == ("auto", "auto", False)
    assert training.resolve_precision(auto, cuda) == "bf16" and training.resolve_precision(auto, cpu) == "fp32"
    assert training.resolve_compile(auto, cuda) is True and training.resolve_compile(auto, cpu) is False
    forced = dataclasses.replace(auto, precision="bf16", compile=True)
    assert training.resolve_precision(forced, cpu) == "bf16" and training.resolve_compile(forced, cpu) is True
    off = dataclasses.replace(auto, precision="fp32", compile=False)
    assert training.resolve_precision(off, cuda) == "fp32" and training.resolve_compile(off, cuda) is False
    with training.autocast_for(cpu, "bf16")():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with training.autocast_for(cpu, "fp32")():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bad_precision_is_a_params_error(tmp_path):
    text = (params.paths.PARAMS_FILE).read_text().replace("  precision: auto ", "  precision: fp16 ", 1)
    bad = tmp_path / "params.yaml"
    bad.write_text(text)
    with pytest.raises(params.ParamsError, match="precision"):
        params.load("cpu", bad)


def test_gpu_profile_shape_builds():
    """The gpu profile's 12L/d768 body: hand-computed parameter count (built on the meta device: no memory)."""
    size = params.load("gpu").train("pretrain").size
    assert (size.n_layers, size.d_model, size.n_heads, size.d_ff) == (12, 768, 12, 2048)
    with torch.device("meta"):
        m = model.build_model(size, 512)
    d, ff = 768, 2048
    per_layer = 4 * d * d + 3 * d * ff + 2 * d  # q,k,v,o + gate,up,down + two RMSNorms
    assert model.param_counts(m)["params_body"] == 12 * per_layer + d == 84_953_856
    assert model.param_counts(m)["params_embedding"] == 512 * d


def test_bf16_autocast_on_cpu_trains_and_resumes(packed, tmp_path):
    ds = packing.PackedDataset(packed / "train", seed=0)
    val = packing.PackedDataset(packed / "val", shuffle=False)
    cfg = gpu_cfg(precision="bf16", compile=False, grad_accum=1, batch_size=4)
    res = training.train(model.build_model(TINY, 300), ds, cfg, tmp_path / "a", val_dataset=val, max_steps=12)
    m = res.metrics
    assert m["dtype"] == "bf16" and m["compile"] is False and m["device"] == "cpu"
    assert all(math.isfinite(r["loss"]) for r in res.curve) and res.loss_decreased
    assert math.isfinite(m["val_loss"])
    assert all(p.dtype == torch.float32 for p in res.model.parameters())  # fp32 master weights
    # pre-empted at step 6 (checkpoint at 4), resumed: the same weights as the uninterrupted run
    training.train(model.build_model(TINY, 300), ds, cfg, tmp_path / "b", val_dataset=val, max_steps=12, stop_after=6)
    done = training.train(model.build_model(TINY, 300), ds, cfg, tmp_path / "b", val_dataset=val, max_steps=12)
    assert done.metrics["resumed_from"] == 4
    a, b = res.model.state_dict(), done.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # an fp32 setup does not resume a bf16 run's checkpoints
    fp32 = training.train(model.build_model(TINY, 300), ds, dataclasses.replace(cfg, precision="fp32"),
                          tmp_path / "b", max_steps=12, stop_after=0)
    assert fp32.metrics["resumed_from"] == 0 and (tmp_path / "b" / "checkpoints.stale").is_dir()


@pytest.mark.slow
def test_compiled_training_matches_eager(packed, tmp_path):
    """torch.compile (inductor on CPU): fp32 losses track eager's; bf16 + compile (one H100's path) trains too."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    ds = packing.PackedDataset(packed / "train", seed=0)
    val = packing.PackedDataset(packed / "val", shuffle=False)
    runs = {}
    for name, precision, compiled in (("eager", "fp32", False), ("compiled", "fp32", True), ("bf16", "bf16", True)):
        cfg = gpu_cfg(precision=precision, compile=compiled, log_every=1)  # the gpu profile's grad_accum 2
        runs[name] = training.train(model.build_model(TINY, 300), ds, cfg, tmp_path / name, max_steps=6,
                                    val_dataset=val if name == "bf16" else None)
    eager, comp, bf16 = runs["eager"], runs["compiled"], runs["bf16"]
    assert comp.metrics["compile"] is True and eager.metrics["compile"] is False
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the model: it did not just run eagerly
    assert len(comp.curve) == len(eager.curve) == 6
    for e, c, b in zip(eager.curve, comp.curve, bf16.curve, strict=True):
        assert c["loss"] == pytest.approx(e["loss"], rel=1e-3)
        assert b["loss"] == pytest.approx(e["loss"], rel=3e-2)  # bf16 matmuls: ~3 significant digits
    assert [b["loss"] for b in bf16.curve] != [c["loss"] for c in comp.curve]  # bf16 autocast did change the numerics
    for k, v in eager.model.state_dict().items():  # the checkpointed / returned model has plain (uncompiled) keys
        torch.testing.assert_close(comp.model.state_dict()[k], v, rtol=1e-3, atol=1e-4)
    assert (bf16.metrics["dtype"], bf16.metrics["compile"]) == ("bf16", True)
    assert math.isfinite(bf16.metrics["val_loss"])


FSDP_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    from tokstudy import model, packing, params, training
    import torch
    from torch._dynamo.utils import counters
    from tokstudy.params import ModelSize
    root, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    size = ModelSize(name="tiny", n_layers=2, d_model=32, n_heads=4, d_ff=64, n_kv_heads=None, rope_theta=10000.0,
                     pad_vocab_to=64, tie_embeddings=False)
    cfg = dataclasses.replace(
        params.load("gpu").train("pretrain"), size=size, seq_len=16, batch_size=2, warmup_steps=2, lr=3e-3,
        checkpoint_every=4, eval_every=4, eval_batches=1, log_every=2)
    if mode == "fsdp":
        cfg = dataclasses.replace(cfg, precision="fp32", compile=False)
    else:  # the gpu profile's own choices, forced on CPU
        cfg = dataclasses.replace(cfg, precision="bf16", compile=True, fsdp=True)
    ds = packing.PackedDataset(root + "/train", seed=0)
    val = packing.PackedDataset(root + "/val", shuffle=False)

    def run(name, fsdp, **kw):
        c = dataclasses.replace(cfg, fsdp=fsdp) if mode == "fsdp" else cfg
        res = training.train(model.build_model(size, 300), ds, c, f"{out}/{name}", val_dataset=val, **kw)
        return res

    out_state = {}
    if mode == "fsdp":
        ddp = run("ddp", False, max_steps=8)
        full = run("full", True, max_steps=8)
        part = run("part", True, max_steps=8, stop_after=6)
        done = run("part", True, max_steps=8)
        runs = {"ddp": ddp, "full": full, "part": part, "done": done}
    else:
        part = run("gpu", True, max_steps=6, stop_after=5)
        done = run("gpu", True, max_steps=6)
        graphs = counters["stats"]["unique_graphs"]
        # fsdp: false (the profile's default under torchrun): DDP, and no_sync through the compiled wrapper
        ddp = training.train(model.build_model(size, 300), ds, dataclasses.replace(cfg, fsdp=False), f"{out}/ddp",
                             max_steps=3)
        runs = {"part": part, "done": done, "ddp": ddp}
        out_state["graphs"] = (graphs, counters["stats"]["unique_graphs"])
    rank = torch.distributed.get_rank()
    for name, res in runs.items():
        out_state[name] = {"metrics": res.metrics, "curve": res.curve,
                           "state": None if res.model is None else res.model.state_dict()}
    torch.save(out_state, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()
    """
)


def _torchrun(packed, tmp_path, mode: str) -> tuple[dict, dict]:
    script = tmp_path / "run.py"
    script.write_text(FSDP_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(packed), str(tmp_path), mode]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tuple(torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))


def _losses(run: dict) -> list[float]:
    return [r["loss"] for r in run["curve"]]


@pytest.mark.slow
def test_fsdp2_two_cpu_processes_match_ddp_and_resume_exactly(packed, tmp_path):
    r0, r1 = _torchrun(packed, tmp_path, "fsdp")
    full, done, ddp = r0["full"], r0["done"], r0["ddp"]
    assert full["metrics"]["fsdp"] is True and full["metrics"]["world_size"] == 2 and ddp["metrics"]["fsdp"] is False
    assert full["metrics"]["final_loss"] < full["metrics"]["initial_loss"]
    # the full model comes back on rank 0 only; both ranks logged the same (all-reduced) curve
    assert r1["full"]["state"] is None and _losses(r1["full"]) == _losses(full)
    # FSDP's reduce-scatter averages gradients like DDP's all-reduce: the same weights up to float order
    for k, v in ddp["state"].items():
        torch.testing.assert_close(full["state"][k], v, rtol=1e-4, atol=1e-5)
    # a checkpoint written under FSDP (step 4; pre-empted at 6) resumes to the uninterrupted run's weights
    assert r0["part"]["metrics"]["steps"] == 6 and done["metrics"]["resumed_from"] == 4
    assert full["state"].keys() == done["state"].keys()
    assert all(torch.equal(full["state"][k], done["state"][k]) for k in full["state"])
    assert _losses(full) == _losses(done)
    ckpt = torch.load(checkpoint.checkpoints(tmp_path / "part")[-1] / "state.pt", weights_only=False)
    assert ckpt["step"] == 8 and ckpt["model"].keys() == full["state"].keys() and len(ckpt["rng"]) == 2


@pytest.mark.slow
def test_gpu_profile_compile_fsdp_bf16_on_two_cpu_processes(packed, tmp_path):
    """The gpu profile's config (grad_accum 2, compile, bf16) at toy size under FSDP2 (trains, checkpoints, resumes)
    and under DDP (gradient accumulation through ``no_sync`` of the compiled wrapper)."""
    r0, r1 = _torchrun(packed, tmp_path, "gpu")
    m = r0["done"]["metrics"]
    assert (m["dtype"], m["compile"], m["fsdp"], m["world_size"]) == ("bf16", True, True, 2)
    assert m["tokens_per_step"] == 2 * 2 * 2 * 16  # batch * grad_accum (the gpu profile's 2) * ranks * seq_len
    assert m["resumed_from"] == 4 and m["steps"] == 6
    assert all(math.isfinite(r["loss"]) for r in r0["done"]["curve"]) and math.isfinite(m["val_loss"])
    assert _losses(r1["done"]) == _losses(r0["done"]) and r1["done"]["state"] is None
    assert all(torch.isfinite(v).all() for v in r0["done"]["state"].values())
    fsdp_graphs, all_graphs = r0["graphs"]
    assert fsdp_graphs >= 1 and all_graphs > fsdp_graphs  # dynamo captured the FSDP model, then the DDP one
    ddp = r0["ddp"]["metrics"]
    assert (ddp["dtype"], ddp["compile"], ddp["fsdp"], ddp["steps"]) == ("bf16", True, False, 3)
    assert _losses(r1["ddp"]) == _losses(r0["ddp"]) and all(math.isfinite(x) for x in _losses(r0["ddp"]))
