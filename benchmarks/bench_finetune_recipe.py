"""The `keep` fine-tune recipe (peak lr, warmup fraction), chosen by held-out code bits/byte.

Starts from the cpu profile's base model (``data/cpu/models/base``, tokenizer ``general-m``) and
fine-tunes it once per (budget, lr) on the chunked, language-stratified sample of the cpu corpus's
train split that the ``train`` step packs (:func:`tokstudy.stages.train.finetune_texts`), through
the package's training loop (:func:`tokstudy.training.train`; every setting but ``lr`` and
``warmup_steps`` is the profile's ``train.finetune``). Each model, the base before it, and the
pipeline's own ``keep-b1`` / ``keep-b2`` models when present (trained before this change: the
leading bytes of a shuffle of whole files, lr 1e-3, 10 warmup steps) are scored with
:func:`tokstudy.bpb.bpb_rows` on the code datasets of the test split, capped like ``evaluate.bpb``
but tighter (``--max-bytes``: 5000 bytes per dataset, ~90 KB in all); the number reported is the
mean over code datasets (``mean:code``), lower is better. A recipe passes when it beats the base at every budget; the
chosen lr is the passing one whose smallest gain across budgets is largest, and it is run once
more per budget with the profile's fixed ``train.finetune.warmup_steps`` for comparison.
The lr is reported also relative to the base's final lr (``train.lr * train.min_lr_ratio``).

    python benchmarks/bench_finetune_recipe.py                      # writes benchmarks/results/finetune_recipe.json
    python benchmarks/bench_finetune_recipe.py --lrs 3e-3 1e-3 3e-4 1e-4 --warmup 0.2 --max-bytes 25000

~5 min on 2 shared cores at the defaults (3 lrs x 2 budgets, and the chosen lr at fixed warmup).

Nothing under data/ or results/ is written: packed data and checkpoints go to a temporary folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from tokstudy import bpb, lm, packing, params, paths, training
from tokstudy.metrics import limit_texts
from tokstudy.stages import evaluation, inputs
from tokstudy.stages import train as train_step

OUT = Path(__file__).resolve().parent / "results" / "finetune_recipe.json"
RUNS = ("keep-b1", "keep-b2")


def warmup_steps(fraction: float, n_tokens: int, tokens_per_step: int) -> int:
    """Warmup steps as ``fraction`` of a one-pass run over ``n_tokens`` (at least 1)."""
    return max(1, round(fraction * math.ceil(n_tokens / tokens_per_step)))


def code_bpb(model, tok, datasets, seq_len: int, batch_size: int) -> float:
    rows = bpb.bpb_rows(model, tok, datasets, seq_len, batch_size)
    return next(r["value"] for r in rows if r["dataset"] == "mean:code")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4])
    ap.add_argument("--warmup", type=float, default=0.1, help="warmup steps as a fraction of the run's steps")
    ap.add_argument("--chunk-bytes", type=int, default=None, help="default: train.finetune_chunk_bytes")
    ap.add_argument("--seed", type=int, default=None, help="data seed (default: the profile's seed)")
    ap.add_argument("--max-bytes", type=int, default=5000,
                    help="held-out bytes per code dataset (at most evaluate.bpb.max_bytes; 5000: a ~5 min sweep)")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)

    P = params.load("cpu")
    seed = P.seed if args.seed is None else args.seed
    if args.chunk_bytes is None:
        args.chunk_bytes = P.model("keep-b1").chunk_bytes
    ev = P.evaluate.bpb
    held = {name: (dom, texts) for name, (dom, texts) in evaluation.heldout_datasets(P).items() if dom == "code"}
    if args.max_bytes < ev.max_bytes:
        held = {name: (dom, limit_texts(texts, ev.max_docs, args.max_bytes)) for name, (dom, texts) in held.items()}
    held_bytes = sum(len(t.encode("utf-8")) for _, ts in held.values() for t in ts)
    base_dir = inputs.model_dir(P, "base")
    base_cfg = P.train("pretrain")
    base_final_lr = base_cfg.lr * base_cfg.min_lr_ratio
    ft = P.train("finetune")
    t_start = time.perf_counter()

    model, tok = lm.load_model(base_dir, "cpu")
    base_bpb = code_bpb(model, tok, held, ev.seq_len, ev.batch_size)
    t_eval = time.perf_counter() - t_start
    print(f"base: code bits/byte {base_bpb:.4f} over {held_bytes} bytes, {len(held)} datasets ({t_eval:.0f} s)")
    reference = {}
    for run in RUNS:  # the pipeline's fine-tunes of before this change, if built
        d = paths.model_dir(P.profile, run)
        if lm.is_model_dir(d):
            m, _ = lm.load_model(d, "cpu")
            reference[run] = code_bpb(m, tok, held, ev.seq_len, ev.batch_size)
            print(f"{run} (old sampling, lr {ft.lr:g}, {ft.warmup_steps} warmup steps): {reference[run]:.4f}")

    rows = []
    tok_path = inputs.tokenizer_file(P, "general-m")
    tokens_per_step = ft.batch_size * ft.grad_accum * ft.seq_len

    def finetune(run, texts, ds, meta, lr: float, warm: int, tmp: Path) -> dict:
        t0 = time.perf_counter()
        spec = P.model(run)
        cfg = dataclasses.replace(ft, lr=lr, warmup_steps=warm, checkpoint_every=10**9, eval_every=10**9,
                                  log_every=10**9)
        model = train_step.initial_model(P, spec, meta.vocab_size, cfg)
        res = training.train(model, ds, cfg, tmp / run / f"lr{lr:g}-w{warm}", resume=False, seed=P.seed,
                             tokens=meta.n_tokens)
        value = code_bpb(res.model, tok, held, ev.seq_len, ev.batch_size)
        steps = res.metrics["max_steps"]
        row = {"run": run, "budget_bytes": spec.bytes, "chunks": len(texts), "tokens": meta.n_tokens,
               "steps": steps, "warmup_steps": warm, "lr": lr, "lr_over_base_final": lr / base_final_lr,
               "code_bpb": value, "delta_vs_base": value - base_bpb, "beats_base": value < base_bpb,
               "wall_s": round(time.perf_counter() - t0, 1)}
        print(f"{run} lr {lr:g} ({lr / base_final_lr:.2f}x base final), {steps} steps, warmup {warm}: "
              f"{value:.4f} ({value - base_bpb:+.4f}) in {row['wall_s']} s")
        return row

    with tempfile.TemporaryDirectory(prefix="bench_finetune_") as tmp:
        data = {}
        for run in RUNS:
            spec = P.model(run)
            texts = train_step.finetune_texts(P, spec, spec.bytes, args.chunk_bytes, seed)
            meta = packing.pack(texts, tok_path, Path(tmp) / run / "packed", ft.seq_len)
            ds = packing.PackedDataset(Path(tmp) / run / "packed", seed=seed, seq_len=ft.seq_len, tokenizer=tok_path)
            data[run] = (texts, ds, meta)
            warm = warmup_steps(args.warmup, meta.n_tokens, tokens_per_step)
            rows += [finetune(run, texts, ds, meta, lr, warm, Path(tmp)) for lr in args.lrs]
        # the recipe: of the lrs that beat the base at every budget, the one whose smallest gain is largest
        passing = sorted({r["lr"] for r in rows} - {r["lr"] for r in rows if not r["beats_base"]})
        best = min(passing, key=lambda lr: max(r["delta_vs_base"] for r in rows if r["lr"] == lr), default=None)
        # the same lr with the profile's fixed warmup (train.finetune.warmup_steps), as the step has it today
        fixed = [finetune(run, *data[run], best, ft.warmup_steps, Path(tmp)) for run in RUNS] if best else []

    out = {
        "what": "held-out code bits/byte (mean over code datasets of the cpu test split) after a keep fine-tune "
                "of data/cpu/models/base, per budget and peak lr; lower is better",
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "threads": torch.get_num_threads()},
        "profile": "cpu", "tokenizer": "general-m", "data_seed": seed, "chunk_bytes": args.chunk_bytes,
        "warmup_fraction": args.warmup,
        "heldout": {"datasets": sorted(held), "bytes": held_bytes, "max_docs": ev.max_docs,
                    "max_bytes": min(args.max_bytes, ev.max_bytes)},
        "base_final_lr": base_final_lr, "base_code_bpb": base_bpb,
        "old_pipeline_models_code_bpb": reference,
        "rows": rows,
        "choice": "of the lrs that beat the base at every budget, the one whose smallest gain over the base "
                  "(across budgets) is largest",
        "passing_lrs": passing, "chosen_lr": best,
        "chosen_lr_over_base_final": None if best is None else best / base_final_lr,
        "chosen_lr_with_fixed_warmup_steps": fixed,
        "note": "one data seed and one training run per cell; the held-out set is 5000 bytes per code dataset",
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    paths.atomic_write(args.json, json.dumps(out, indent=1) + "\n")
    print(f"passing lrs {passing}; chosen {best}; wrote {args.json} ({out['wall_s']} s)")
    return 0 if best is not None else 1


if __name__ == "__main__":
    sys.exit(main())
