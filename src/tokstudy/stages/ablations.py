"""Pipeline step ``model_ablations`` (notebook 10): the regex / vocab-size / FVT fine-tunes side by side with the paper.

:func:`ablation_table` reads the ``evaluate-<run>.json`` records of the ``models:`` fine-tunes at the
largest byte budget and groups them as the paper's Tables 2-4 do (docs/paper.md#model-side-study):

* ``regex``: FVT runs whose tokenizers share one vocab size and differ in regex (gpt4 / punct / identity);
* ``vocab``: FVT runs with GPT-4-regex tokenizers of different sizes (ours sorted beside the paper's
  32k..256k by rank: the sizes differ, the question, does size matter, is the same);
* ``transfer``: the run of one tokenizer with FVT and with random init (and ``keep``, for reference).

* ``beyond``: beyond the paper, FOCUS instead of FVT and a SuperBPE tokenizer instead of the GPT-4 regex, each
  against the same gpt4-m FVT run;
* ``budget``: every fine-tune against the base model it starts from (does fine-tuning help, at each budget?).

Every fine-tune runs ``train.finetune.seeds`` replicates (data seeds: which chunks fill the budget and
their order; replicate k of every run sees the same text). Each row holds, averaged over its replicates,
held-out code bits/byte (with its spread over seeds) and HumanEval canonical-solution bits/byte with an
interval over seeds and problems, the mean per-problem difference from the reference run (``ref_run``: the
gpt4-m FVT run every group shares; for ``budget`` the base model) with an interval over seeds and problems
(replicates paired by index, problems by task: :func:`tokstudy.bootstrap.seeds_problems_ci`),
``significant`` where that interval excludes 0, the difference of each seed on its own, and the paper's
HumanEval pass@1 for the matching condition (``data/paper``) with its difference from the paper's FVT
condition (``paper_diff_vs_ref``, pass@1 points: higher is better there, lower bits/byte here).
:func:`model_ablations` writes ``results/<p>/model_ablations.csv``;
the figures step draws it (``figures/<p>/model_ablations.{png,pdf}``).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from tokstudy import paths, results
from tokstudy.bootstrap import seeds_problems_ci
from tokstudy.errors import EvaluateError, ParamsError
from tokstudy.params import Params
from tokstudy.stages import inputs

PAPER_TRANSFER = {"fvt": "gpt4-32k fvt", "random": "gpt4-32k no-fvt"}
PAPER_COMPARISONS = ("regex", "vocab", "transfer")  # the groups the paper has a number for


def _replicate(P: Params, name: str) -> dict:
    """Held-out code bits/byte and per-problem HumanEval solution bits/byte of one model's evaluate record."""
    record = inputs.run_record(P, "evaluate", name)
    run_record = results.read_run(record)
    rows = run_record["rows"]
    code = [r for r in rows if r["metric"] == "bits_per_byte" and r.get("dataset") == "mean:code"]
    per_problem = run_record.get("extra", {}).get("solution_bpb", {}).get("humaneval", {})
    if not code or not per_problem:
        raise EvaluateError(f"{record} has no held-out code or per-problem solution bits/byte: re-run its "
                            "evaluate stage")
    return {"code_bpb": code[0]["value"], "per_problem": per_problem}


def _scores(P: Params, run: str) -> list[dict]:
    """:func:`_replicate` of every replicate of ``run`` (``train.<stage>.seeds``), replicate 0 first."""
    return [_replicate(P, name) for name, _seed in P.model(run).replicates(P.seed)]


def _table(reps: list[dict], ref: list[dict] | None) -> tuple[list[str], list[list[float]]]:
    """Problems common to every replicate, and per replicate the values (or, with ``ref``, the differences from
    ``ref``'s replicate of the same index; a reference with one replicate, the base, pairs with all)."""
    tables = reps + (ref or [])
    common = sorted(set.intersection(*(set(r["per_problem"]) for r in tables)))
    if not common:
        raise EvaluateError("the replicates' evaluate records share no HumanEval problem")
    if ref is None:
        return common, [[r["per_problem"][t] for t in common] for r in reps]
    if len(ref) not in (1, len(reps)):
        raise EvaluateError(f"{len(reps)} replicates compared with a reference of {len(ref)}: pair by index needs "
                            "as many (train.finetune.seeds)")
    return common, [[r["per_problem"][t] - ref[k if len(ref) > 1 else 0]["per_problem"][t] for t in common]
                    for k, r in enumerate(reps)]


def _summary(P: Params, reps: list[dict], ref: list[dict] | None) -> dict:
    """Means over replicates with their intervals over seeds and problems; the paired difference from ``ref``."""
    cfg = P.evaluate.solution_bpb
    _, values = _table(reps, None)
    codes = [r["code_bpb"] for r in reps]
    lo, hi = seeds_problems_ci(values, cfg.n_boot, cfg.confidence, P.seed)
    out = {"seeds": len(reps), "code_bpb": sum(codes) / len(codes),
           "code_bpb_seed_sd": statistics.stdev(codes) if len(codes) > 1 else 0.0,
           "solution_bpb": sum(map(sum, values)) / sum(map(len, values)), "ci_low": lo, "ci_high": hi}
    if ref is None:
        return {**out, "diff_vs_ref": None, "diff_ci_low": None, "diff_ci_high": None, "significant": None,
                "diff_by_seed": ""}
    _, diffs = _table(reps, ref)
    dlo, dhi = seeds_problems_ci(diffs, cfg.n_boot, cfg.confidence, P.seed)
    by_seed = [sum(d) / len(d) for d in diffs]
    return {**out, "diff_vs_ref": sum(by_seed) / len(by_seed), "diff_ci_low": dlo, "diff_ci_high": dhi,
            "significant": bool(dlo > 0 or dhi < 0), "diff_by_seed": " ".join(f"{d:+.4f}" for d in by_seed)}


def _groups(P: Params) -> list[tuple[str, str, str]]:
    """``(comparison, run, label)`` for every ablation run at the largest fine-tuning byte budget."""
    tunes = [s for s in P.models.values() if s.stage == "finetune"]
    top = max((s.bytes for s in tunes), default=None)
    plain = {n for n, v in P.tokenizers.items() if v.transition is None}  # SuperBPE runs: the `beyond` group
    fvt = [s for s in tunes if s.bytes == top and s.method == "fvt" and s.tokenizer in plain]
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
    paper_methods = ("keep", "fvt", "random")
    out += [("transfer", s.name, s.method) for s in tunes if s.bytes == top and s.method in paper_methods
            and (s.tokenizer in switched or s.method == "keep")]
    out += [("beyond", s.name, f"{s.method} {_regex(P, s.tokenizer)}") for s in tunes if s.bytes == top
            and (s.method == "focus" or s.tokenizer not in plain)]
    out += [("budget", s.name, f"{s.method} {s.budget}") for s in tunes if s.method in paper_methods
            and (s.tokenizer in switched or s.method == "keep")]
    return out


def _regex(P: Params, variant: str) -> str:
    """A tokenizer's pre-tokenization as a label: its regex, or ``superbpe`` for a SuperBPE variant."""
    v = P.tokenizer(variant)
    return "superbpe" if v.transition is not None else str(v.regex)


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
    base = {s.init for s in P.models.values() if s.stage == "finetune" and s.method == "keep"}
    base_run = next(iter(sorted(base)), None)
    rows, rank = [], {}
    for comparison, run, label in groups:
        i = rank[comparison] = rank.get(comparison, -1) + 1
        pass1, source, paper_label = (_paper(comparison, label, i, paper_dir) if comparison in PAPER_COMPARISONS
                                      else (None, "", ""))
        spec = P.model(run)
        against, against_run = (ref, ref_run) if comparison != "budget" else (
            (_scores(P, base_run), base_run) if base_run else (None, None))
        rows.append({"comparison": comparison, "run": run, "label": label, "tokenizer": spec.tokenizer,
                     "method": spec.method, "budget_bytes": spec.bytes,
                     **_summary(P, _scores(P, run), against if run != against_run else None),
                     "ref_run": against_run, "paper_label": paper_label, "paper_pass1": pass1,
                     "paper_source": source})
    table = pd.DataFrame(rows)
    # the paper's own difference for the same question: pass@1 points against its FVT condition (gpt4-32k fvt)
    ref_paper = table.loc[(table["comparison"] == "transfer") & (table["run"] == ref_run), "paper_pass1"]
    ref_pass1 = float(ref_paper.iloc[0]) if len(ref_paper) and pd.notna(ref_paper.iloc[0]) else None
    table["paper_diff_vs_ref"] = [None if ref_pass1 is None or pd.isna(v) or run == ref_run else v - ref_pass1
                                  for v, run in zip(table["paper_pass1"], table["run"], strict=True)]
    return table


def model_ablations(P: Params) -> Path:
    """Write ``results/<p>/model_ablations.csv`` (the figures step draws it); returns its path."""
    table = ablation_table(P)
    return paths.atomic_write(paths.results_dir(P.profile) / "model_ablations.csv",
                              table.to_csv(index=False, float_format="%.4f"))


__all__ = ["ablation_table", "model_ablations"]
