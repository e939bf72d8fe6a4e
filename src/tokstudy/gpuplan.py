"""How long each ``gpu``-profile stage should take on one H100, from the FLOPs model and stated assumptions.

No GPU has run this project, so this is a plan, not a measurement: training time =
tokens x replicates x 3 x forward FLOPs/token (:func:`tokstudy.costs.flops_per_token` at half the window)
/ (MFU x 989 TFLOP/s, the H100 SXM bf16 dense peak); evaluation time = forward FLOPs of the
bits/byte windows at the same rate plus HumanEval decoding (steps x seconds per decode step,
one batch per problem since n <= batch_size) plus sandbox judging. The assumptions are
:data:`ASSUMPTIONS`; ``make gpu`` measures the real tokens/s and MFU (benchmarks/bench_train.py)
so they can be checked. ``python -m tokstudy.gpuplan`` prints the table of README "GPU".
"""

from __future__ import annotations

import math
import sys

from tokstudy import costs
from tokstudy.params import Params

H100_BF16_PEAK = 989e12  # FLOP/s, dense (NVIDIA H100 SXM datasheet)
ASSUMPTIONS = {
    "mfu": 0.30,  # bf16 + torch.compile, 12L/d768, 32k tokens/step: nanoGPT-class runs reach 0.3-0.5
    "code_bytes_per_token": 3.5,  # 32k-256k code tokenizers do better (cpu 8k: 3.4); fewer bytes/token = more time
    "decode_step_s": 0.015,  # one HF generate step of a 282M model, batch <= 64, eager (launch-bound)
    "judge_s": 0.3,  # one sandboxed HumanEval test run
    "stage_overhead_s": 60,  # kernel start, imports, compile, packing, checkpoints
}
LIMIT_S = 600


def _train_s(P: Params, vocab: int, tokens: float, a: dict) -> float:
    cfg = P.train("pretrain")
    shape = costs.shape_from_size(cfg.size, vocab, context=cfg.seq_len)
    return tokens * 3 * costs.flops_per_token(shape, ctx=cfg.seq_len / 2) / (a["mfu"] * H100_BF16_PEAK)


def _datasets(P: Params, domain: str | None = None) -> int:
    """Test datasets of the profile's corpus (one per ``language`` of its sources), of ``domain`` or all."""
    chosen = P.corpus.sources or tuple(P.sources)
    return len({s.language for n, s in P.sources.items() if n in chosen and domain in (None, s.domain)})


def _forward_s(P: Params, vocab: int, n_bytes: float, a: dict) -> float:
    """Scoring ``n_bytes`` of text plus every HumanEval solution once (bits/byte windows)."""
    ev, cfg = P.evaluate, P.train("pretrain")
    shape = costs.shape_from_size(cfg.size, vocab, context=ev.bpb.seq_len)
    tokens = n_bytes / a["code_bytes_per_token"] + 164 * ev.bpb.seq_len
    return tokens * costs.flops_per_token(shape, ctx=ev.bpb.seq_len / 2) / (a["mfu"] * H100_BF16_PEAK)


def _evaluate_s(P: Params, vocab: int, a: dict) -> float:
    ev = P.evaluate
    forward = _forward_s(P, vocab, _datasets(P) * ev.bpb.max_bytes, a)
    he = ev.humaneval
    problems = he.limit or 164
    decode = problems * math.ceil(he.n / he.batch_size) * he.max_new_tokens * a["decode_step_s"]
    judge = problems * he.n * a["judge_s"] / he.workers
    speed = (ev.speed.prompts + ev.speed.warmup) * ev.speed.max_new_tokens * a["decode_step_s"]
    return forward + decode + judge + speed


def stage_estimates(P: Params, assumptions: dict | None = None) -> list[dict]:
    """One row per model-side stage of profile ``P``: stage, tokens, estimated seconds, within the 10 min limit."""
    a = {**ASSUMPTIONS, **(assumptions or {})}
    rows = []
    for spec in P.models.values():  # a stage trains (evaluates) every replicate of its run
        vocab = P.tokenizer(spec.tokenizer).vocab_size
        tokens = spec.tokens if spec.tokens is not None else spec.bytes / a["code_bytes_per_token"]
        rows.append({"stage": f"{spec.stage}@{spec.name}", "tokens": tokens * spec.seeds,
                     "seconds": spec.seeds * _train_s(P, vocab, tokens, a) + a["stage_overhead_s"]})
        replicates = (spec.seeds - 1) * _forward_s(P, vocab, _datasets(P, "code") * P.evaluate.bpb.max_bytes, a)
        rows.append({"stage": f"evaluate_{spec.stage}@{spec.name}", "tokens": None,
                     "seconds": _evaluate_s(P, vocab, a) + replicates + a["stage_overhead_s"]})
    for r in rows:
        r["within_limit"] = r["seconds"] <= LIMIT_S
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the markdown table for ``--profile`` (default gpu); exit 1 when a stage exceeds 10 minutes."""
    import argparse

    from tokstudy import params

    ap = argparse.ArgumentParser(prog="python -m tokstudy.gpuplan", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="gpu")
    rows = stage_estimates(params.load(ap.parse_args(argv).profile))
    print("| stage | tokens | estimated min | <= 10 min |\n|---|---|---|---|")
    for r in rows:
        tokens = f"{r['tokens'] / 1e6:.1f}M" if r["tokens"] else "-"
        print(f"| {r['stage']} | {tokens} | {r['seconds'] / 60:.1f} | {'yes' if r['within_limit'] else 'NO'} |")
    print(f"assumptions: {ASSUMPTIONS}, H100 bf16 dense peak {H100_BF16_PEAK / 1e12:.0f} TFLOP/s")
    return 0 if all(r["within_limit"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
