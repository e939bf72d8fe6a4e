"""Pipeline step ``model_ablations`` (notebook 10): the regex / vocab-size / FVT fine-tunes side by side with the paper.

:func:`ablation_table` reads the ``evaluate-<run>.json`` records of the ``models:`` fine-tunes at the
largest byte budget and groups them as the paper's Tables 2-4 do (docs/paper.md#model-side-study):

* ``regex``: FVT runs whose tokenizers share one vocab size and differ in regex (gpt4 / punct / identity);
* ``vocab``: FVT runs with GPT-4-regex tokenizers of different sizes (ours sorted beside the paper's
  32k..256k by rank: the sizes differ, the question, does size matter, is the same);
* ``transfer``: the run of one tokenizer with FVT and with random init (and ``keep``, for reference).

Each row holds held-out code bits/byte, HumanEval canonical-solution bits/byte with its CI, the mean
per-problem difference from the FVT run of the ``transfer`` group (``ref_run``, the gpt4-m FVT run
that every group shares) with a paired bootstrap CI, and the paper's HumanEval pass@1 for the
matching condition (``data/paper``). :func:`model_ablations` writes ``results/<p>/model_ablations.csv``;
the figures step draws it (``figures/<p>/model_ablations.{png,pdf}``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tokstudy import paths, results
from tokstudy.bootstrap import bootstrap_ci
from tokstudy.errors import EvaluateError, ParamsError
from tokstudy.params import Params
from tokstudy.stages import inputs

PAPER_TRANSFER = {"fvt": "gpt4-32k fvt", "random": "gpt4-32k no-fvt"}


def _scores(P: Params, run: str) -> dict:
    """Held-out code bits/byte and HumanEval solution bits/byte (+ CI) of one run's evaluate record."""
    record = inputs.run_record(P, "evaluate", run)
    run_record = results.read_run(record)
    rows = run_record["rows"]
    code = [r for r in rows if r["metric"] == "bits_per_byte" and r.get("dataset") == "mean:code"]
    sol = [r for r in rows if r["metric"] == "solution_bits_per_byte" and r.get("dataset") == "humaneval"]
    if not code or not sol:
        raise EvaluateError(f"{record} has no held-out code or solution bits/byte: re-run its evaluate stage")
    return {"code_bpb": code[0]["value"], "solution_bpb": sol[0]["value"], "ci_low": sol[0]["ci_low"],
            "ci_high": sol[0]["ci_high"],
            "per_problem": run_record.get("extra", {}).get("solution_bpb", {}).get("humaneval", {})}


def _paired(P: Params, scores: dict, ref: dict) -> dict:
    """Mean per-problem difference of solution bits/byte against ``ref`` with its paired bootstrap CI."""
    common = sorted(set(scores["per_problem"]) & set(ref["per_problem"]))
    if not common:
        return {"diff_vs_ref": None, "diff_ci_low": None, "diff_ci_high": None}
    diffs = [scores["per_problem"][t] - ref["per_problem"][t] for t in common]
    cfg = P.evaluate.solution_bpb
    lo, hi = bootstrap_ci(diffs, cfg.n_boot, cfg.confidence, P.seed)
    return {"diff_vs_ref": sum(diffs) / len(diffs), "diff_ci_low": lo, "diff_ci_high": hi}


def _groups(P: Params) -> list[tuple[str, str, str]]:
    """``(comparison, run, label)`` for every ablation run at the largest fine-tuning byte budget."""
    tunes = [s for s in P.models.values() if s.stage == "finetune"]
    top = max((s.bytes for s in tunes), default=None)
    fvt = [s for s in tunes if s.bytes == top and s.method == "fvt"]
    if not fvt:
        raise ParamsError("models.finetune: the model ablations need FVT fine-tunes at the largest byte budget; "
                          "params.yaml has none")
    by_vocab: dict[int, list] = {}
    for s in fvt:
        by_vocab.setdefault(P.tokenizer(s.tokenizer).vocab_size, []).append(s)
    regex_runs = max(by_vocab.values(), key=lambda runs: len({P.tokenizer(s.tokenizer).regex for s in runs}))
    out = [("regex", s.name, P.tokenizer(s.tokenizer).regex) for s in regex_runs]
    gpt4 = sorted((s for s in fvt if P.tokenizer(s.tokenizer).regex == "gpt4"),
                  key=lambda s: P.tokenizer(s.tokenizer).vocab_size)
    out += [("vocab", s.name, _k(P.tokenizer(s.tokenizer).vocab_size)) for s in gpt4]
    switched = {s.tokenizer for s in tunes if s.method == "random"}
    out += [("transfer", s.name, s.method) for s in tunes
            if s.bytes == top and (s.tokenizer in switched or s.method == "keep")]
    return out


def _k(size: int) -> str:
    """A vocabulary size as people write it: 4096 -> ``4k``, 32000 -> ``32k``, 512 -> ``512``."""
    return f"{round(size / 1000)}k" if size >= 1000 else str(size)


def _paper(comparison: str, label: str, rank: int, paper_dir: Path) -> tuple[float | None, str, str]:
    """The paper's HumanEval pass@1 (%), its source and the paper's own name of the condition (its vocab size,
    regex or transfer condition) for one ablation row; None and "" where it has none."""
    if comparison == "regex":
        df = pd.read_csv(paper_dir / "regex_ablation.csv")
        hit = df[df["regex"] == label]
        name = label
    elif comparison == "vocab":
        df = pd.read_csv(paper_dir / "vocab_pass1.csv").sort_values("vocab_size")
        hit = df.iloc[[rank]] if rank < len(df) else df.iloc[[]]
        name = _k(int(hit["vocab_size"].iloc[0])) if len(hit) else ""
    else:
        df = pd.read_csv(paper_dir / "transfer.csv")
        hit = df[df["condition"] == PAPER_TRANSFER.get(label, "")]
        name = PAPER_TRANSFER.get(label, "")
    if hit.empty:
        return None, "", ""
    return float(hit["humaneval_pass1"].iloc[0]), str(hit["source"].iloc[0]), name


def ablation_table(P: Params, paper_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per ablation run: comparison, run, label, our bits/byte (code, solution + CI), paper pass@1."""
    paper_dir = Path(paper_dir) if paper_dir else paths.DATA / "paper"
    groups = _groups(P)
    ref_run = next((run for comparison, run, label in groups if comparison == "transfer" and label == "fvt"), None)
    if ref_run is None:
        raise ParamsError("models.finetune: the model ablations compare against an FVT fine-tune of the tokenizer "
                          "a `method: random` run also switches to, at the largest budget; params.yaml has none")
    ref = _scores(P, ref_run)
    rows, rank = [], {}
    for comparison, run, label in groups:
        i = rank[comparison] = rank.get(comparison, -1) + 1
        pass1, source, paper_label = _paper(comparison, label, i, paper_dir)
        spec, scores = P.model(run), _scores(P, run)
        rows.append({"comparison": comparison, "run": run, "label": label, "tokenizer": spec.tokenizer,
                     "method": spec.method, "budget_bytes": spec.bytes,
                     **{k: v for k, v in scores.items() if k != "per_problem"},
                     "ref_run": ref_run, **_paired(P, scores, ref), "paper_label": paper_label, "paper_pass1": pass1,
                     "paper_source": source})
    return pd.DataFrame(rows)


def model_ablations(P: Params) -> Path:
    """Write ``results/<p>/model_ablations.csv`` (the figures step draws it); returns its path."""
    table = ablation_table(P)
    return paths.atomic_write(paths.results_dir(P.profile) / "model_ablations.csv",
                              table.to_csv(index=False, float_format="%.4f"))


__all__ = ["ablation_table", "model_ablations"]
