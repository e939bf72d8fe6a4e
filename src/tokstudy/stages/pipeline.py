"""Every stage of dvc.yaml in one process, in DVC's order, at any profile: ``python -m tokstudy.stages all``.

DVC runs the pipeline (``dvc repro``): one papermill kernel per stage, skipping what is current.
The smoke inputs that the tests and nbval read are built by this instead, because a kernel per
stage costs more than the smoke work itself. It asks DVC for the stages and their order
(``dvc.yaml``, resolved against params.yaml), reads each stage's notebook and ``-p``/``-y``
parameters from its command, and calls the step that notebook calls (:data:`STEPS`, one line per
notebook), at the profile given instead of the file's. Nothing is skipped: every output is
rewritten, so what it leaves is current for the code that ran.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from tokstudy import paths
from tokstudy.params import Params

log = logging.getLogger(__name__)


def _corpus(P, p):
    from tokstudy.stages import corpus
    return [corpus.build_corpus(P)]


def _tokenizer(P, p):
    from tokstudy.stages import tokenizers
    return [f for v in p["variants"] for f in (tokenizers.train_tokenizer(P, v), tokenizers.compression(P, v))]


def _metrics(P, p):
    from tokstudy.stages import tokenizers
    return [tokenizers.compression(P, name) for name in p["tokenizers"]]


def _transfer(P, p):
    from tokstudy.stages import transfer
    return [f for target in p["targets"] for f in transfer.transfer_all(P, target)]


def _train(P, p):
    from tokstudy.stages import train
    return [train.train(P, run, replicate=k) for run in p["runs"] for k in range(P.model(run).seeds)]


def _evaluate(P, p):
    from tokstudy.stages import evaluation
    return [evaluation.evaluate(P, run) for run in p["runs"]] + [
        evaluation.evaluate_replicate(P, run, k) for run in p["runs"] for k in range(1, P.model(run).seeds)]


def _costs(P, p):
    from tokstudy.stages import costs
    return [costs.costs(P)]


def _figures(P, p):
    from tokstudy.stages import figures, summary
    return [png for png, _pdf in figures.figures(P).values()] + list(summary.summary(P).values())


def _vocab(P, p):
    from tokstudy.stages import vocab
    return vocab.vocab_analysis(P)


def _ablations(P, p):
    from tokstudy.stages import ablations
    return [ablations.model_ablations(P)]


#: notebook -> the step calls its code cells make (a test checks each notebook against this table)
STEPS: dict[str, Callable[[Params, dict], list[Path]]] = {
    "00_corpus": _corpus, "01_train_tokenizer": _tokenizer, "02_tokenizer_metrics": _metrics,
    "03_embedding_transfer": _transfer, "04_pretrain_base": _train, "05_finetune": _train, "06_evaluate": _evaluate,
    "07_costs": _costs, "08_figures": _figures, "09_vocab_analysis": _vocab, "10_model_ablations": _ablations,
}


def notebook_call(cmd: str) -> tuple[str, dict]:
    """``(notebook stem, parameters)`` of a stage command ``papermill ... IN.ipynb OUT.ipynb -p k v -y yaml``."""
    words = shlex.split(cmd)
    i = next(i for i, w in enumerate(words) if w.endswith(".ipynb"))
    params: dict = {}
    rest = words[i + 2:]
    for j, w in enumerate(rest):
        if w == "-p":
            params[rest[j + 1]] = yaml.safe_load(rest[j + 2])
        elif w == "-y":
            params.update(yaml.safe_load(rest[j + 1]))
    return Path(words[i]).stem, params


def stages(root: Path | None = None) -> list[tuple[str, str, dict]]:
    """``(stage address, notebook stem, parameters)`` of every dvc.yaml stage, dependencies first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root or paths.ROOT)) as repo:
        graph = repo.index.graph.reverse(copy=True)  # DVC's edges point from a stage to what it depends on
        order = {s.addressing: i for i, s in enumerate(repo.index.stages)}
        ordered = nx.lexicographical_topological_sort(graph, key=lambda s: order[s.addressing])
        out = []
        for stage in ordered:
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            out.append((stage.addressing, *notebook_call(cmd)))
    return out


def run_all(P: Params, root: Path | None = None) -> list[Path]:
    """Run every stage's step at profile ``P.profile``, in DVC's order; returns every path written."""
    from tqdm.auto import tqdm

    written: list[Path] = []
    todo = stages(root)
    for address, notebook, params in tqdm(todo, desc=f"stages ({P.profile})", unit="stage"):
        log.info("%s: %s %s", address, notebook, params)
        written += [p for p in STEPS[notebook](P, params) if p is not None]
    return written


__all__ = ["STEPS", "notebook_call", "run_all", "stages"]
