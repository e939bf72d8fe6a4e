"""``python -m tokstudy.stages STEP ITEM --profile P``: one model-side pipeline step from the shell.

    python -m tokstudy.stages train RUN --profile P        stages.train.train (also under torchrun)
    python -m tokstudy.stages transfer TARGET --profile P  stages.transfer.transfer_all (or --method M ...)
    python -m tokstudy.stages all --profile P              every dvc.yaml stage in one process (stages.pipeline)

The torchrun entry point: name the run positionally,
``torchrun --standalone --nproc_per_node 2 -m tokstudy.stages train base --profile cpu``; every rank
trains, rank 0 alone writes the model and the run record. ``tokstudy finetune RUN`` is ``train RUN``.
"""

from __future__ import annotations

import argparse
import logging
import sys


def _steps(text: str) -> int:
    """An argparse ``type``: a number of optimizer steps, a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tokstudy.stages", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)

    p = sub.add_parser("train", help="pre-train / fine-tune a params.yaml `models:` run (also under torchrun)",
                       description="Pack the data of one params.yaml `models:` run, train it (resuming), save the "
                                   "model and write results/<profile>/runs/train-RUN.json "
                                   "(tokstudy.stages.train.train).")
    p.add_argument("run", metavar="RUN", help="a key of params.yaml `models:` (base, keep-b1, fvt-b2, ...) or one "
                                              "of its replicates RUN-s1, RUN-s2, ... (train.<stage>.seeds)")
    p.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints and start over")
    p.add_argument("--fsdp", action="store_true", help="shard with FSDP2 instead of DDP (under torchrun)")
    p.add_argument("--max-steps", type=_steps, default=None, help="override the run length in optimizer steps")
    p.add_argument("--stop-after", type=_steps, default=None,
                   help="stop after this many steps (simulate pre-emption)")

    p = sub.add_parser("transfer", help="give the base model a tokenizer variant (every transfer.methods)",
                       description="Swap the base model's tokenizer for variant TARGET with each method, writing "
                                   "data/<profile>/models/TARGET-METHOD-init and transfer-TARGET-METHOD.json "
                                   "(tokstudy.stages.transfer.transfer_all).")
    p.add_argument("target", metavar="TARGET", help="a tokenizer variant of params.yaml (e.g. gpt4-m)")
    p.add_argument("--profile", default=None, help="params.yaml profile (default: the file's `profile`)")
    p.add_argument("--method", action="append", dest="methods", default=None,
                   help="fvt / random / mean / merged (repeatable; default: params.yaml transfer.methods)")
    p.add_argument("--base-model", default=None, help="a local HF model dir (default: data/<profile>/models/base)")

    p = sub.add_parser("all", help="every dvc.yaml stage's step in one process, in DVC's order (smoke inputs)",
                       description="Run the step of every dvc.yaml stage at PROFILE in one process, dependencies "
                                   "first, rewriting every output (tokstudy.stages.pipeline): the smoke inputs that "
                                   "the tests and nbval read. `dvc repro` is the pipeline itself.")
    p.add_argument("--profile", required=True, help="params.yaml profile (smoke builds in about two minutes)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one step; prints the run record(s) written."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:  # `all` is quiet (its progress bar counts stages); a single step logs
        logging.basicConfig(level=logging.WARNING if args.step == "all" else logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from tokstudy import params

    P = params.load(args.profile)
    if args.step == "all":
        from tokstudy.stages import pipeline

        written = pipeline.run_all(P)
    elif args.step == "train":
        import torch.distributed

        from tokstudy.stages import train

        run, k, _seed = P.replicate(args.run)  # the run, or its replicate k (the name the pipeline's hints give)
        try:
            written = [train.train(P, run.name, replicate=k, resume=not args.no_resume, fsdp=args.fsdp,
                                    max_steps=args.max_steps, stop_after=args.stop_after)]
        finally:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
    else:
        from tokstudy.stages import transfer

        written = transfer.transfer_all(P, args.target, args.methods, base_model=args.base_model)
    written = [path for path in written if path is not None]
    if args.step == "all":
        print(f"profile {args.profile}: every dvc.yaml stage ran; {len(written)} outputs written")
    else:
        for path in written:
            print(f"wrote {path}")
    return 0


def _guarded(argv: list[str]) -> int:
    """:func:`main` with the CLI's error contract: a user-fixable error is one line and exit status 2."""
    import os

    from tokstudy.errors import TokstudyError

    try:
        return main(argv)
    except TokstudyError as exc:
        if os.environ.get("TOKSTUDY_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {str(exc).strip()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_guarded(sys.argv[1:]))
