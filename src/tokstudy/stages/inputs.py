"""What a pipeline step reads, where it lives, and which DVC stage makes it: the one table of hints.

A step never builds a missing input (DVC does, from dvc.yaml). Each function here
returns the path of one input of a profile and raises :class:`~tokstudy.errors.MissingInput`
when it is not there; the message names the stage that makes it (:func:`maker`) and the
command to run. Reading the file is the caller's business, so this module stays light
(no tokenizer, model or corpus code in the closure of a step that only needs a path).

The stages (dvc.yaml) and the notebooks that run them:

==========================  ====================================  ==========================================
input                       stage                                 notebook (``-p`` parameters)
==========================  ====================================  ==========================================
corpus split / manifest     ``corpus``                            ``00_corpus``
tokenizer variant           ``train_tokenizer@V`` /               ``01_train_tokenizer -y 'variants: [V]'``
                            ``truncate_tokenizers``
compression record          the tokenizer's stage, or             ``02_tokenizer_metrics`` (references)
                            ``reference_metrics``
transfer output             ``transfer@T``                        ``03_embedding_transfer -p target T``
model of a ``models:`` run  ``pretrain@R`` / ``finetune@R``       ``04_pretrain_base`` / ``05_finetune -p run R``
evaluate record             ``evaluate_pretrain@R`` /             ``06_evaluate -p run R``
                            ``evaluate_finetune@R``
model_ablations.csv         ``model_ablations``                   ``10_model_ablations``
==========================  ====================================  ==========================================
"""

from __future__ import annotations

from pathlib import Path

from tokstudy import paths
from tokstudy.errors import MissingInput
from tokstudy.params import Params

CORPUS_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl", "manifest.json")
MODEL_MARKER = "config.json"  # a Hugging Face model directory holds it


def maker(P: Params, kind: str, name: str) -> tuple[str, str]:
    """``(dvc stage, notebook command)`` that makes input ``name`` of ``kind``.

    ``kind``: ``corpus`` | ``tokenizer`` | ``compression`` | ``model`` | ``evaluate`` | ``ablations``.
    An unknown variant or run is a :class:`~tokstudy.errors.ParamsError` (from ``P``).
    """
    p = f"-p profile {P.profile}"
    if kind == "corpus":
        return "corpus", f"notebooks/00_corpus.ipynb {p}"
    if kind == "compression" and name not in P.tokenizers:
        return "reference_metrics", f"notebooks/02_tokenizer_metrics.ipynb {p} -y 'tokenizers: [{name}]'"
    if kind in ("tokenizer", "compression"):
        stage = "truncate_tokenizers" if P.tokenizer(name).truncate_of else f"train_tokenizer@{name}"
        return stage, f"notebooks/01_train_tokenizer.ipynb {p} -y 'variants: [{name}]'"
    if kind == "model" and name not in P.models and name.endswith("-init"):  # <target>-<method>-init
        target = name.removesuffix("-init").rsplit("-", 1)[0]
        return f"transfer@{target}", f"notebooks/03_embedding_transfer.ipynb {p} -p target {target}"
    if kind == "model":
        spec = P.model(name)
        book = "04_pretrain_base" if spec.stage == "pretrain" else "05_finetune"
        return f"{spec.stage}@{name}", f"notebooks/{book}.ipynb {p} -p run {name}"
    if kind == "evaluate":
        spec = P.model(name)
        return f"evaluate_{spec.stage}@{name}", f"notebooks/06_evaluate.ipynb {p} -p run {name}"
    if kind == "ablations":
        return "model_ablations", f"notebooks/10_model_ablations.ipynb {p}"
    raise ValueError(f"unknown input kind {kind!r}")


def missing(P: Params, kind: str, name: str, path: Path) -> MissingInput:
    """The one error for a missing input: what is missing, where, and the stage that makes it."""
    stage, notebook = maker(P, kind, name)
    return MissingInput(f"no {kind} {name!r} for profile {P.profile!r} ({path}): run `dvc repro {stage}` "
                        f"(or papermill {notebook})")


def corpus_file(P: Params, name: str) -> Path:
    """``data/<profile>/corpus/<name>`` (a split's JSONL or ``manifest.json``)."""
    if name not in CORPUS_FILES:
        raise ValueError(f"unknown corpus file {name!r}; one of {CORPUS_FILES}")
    f = paths.corpus_dir(P.profile) / name
    if not f.is_file():
        raise missing(P, "corpus", "corpus", f)
    return f


def tokenizer_file(P: Params, name: str) -> Path:
    """The ``tokenizer.json`` of trained (or truncated) variant ``name``."""
    f = paths.tokenizer_dir(P.profile, name) / "tokenizer.json"
    if not f.is_file():
        raise missing(P, "tokenizer", name, f)
    return f


def model_dir(P: Params, name: str) -> Path:
    """``data/<profile>/models/<name>``: a ``models:`` run or a transfer output ``<target>-<method>-init``."""
    d = paths.model_dir(P.profile, name)
    if not (d / MODEL_MARKER).is_file():
        raise missing(P, "model", name, d)
    return d


def ablation_table(P: Params) -> Path:
    """``results/<profile>/model_ablations.csv`` (the ``model_ablations`` stage)."""
    f = paths.results_dir(P.profile) / "model_ablations.csv"
    if not f.is_file():
        raise missing(P, "ablations", "model_ablations", f)
    return f


def run_record(P: Params, kind: str, name: str) -> Path:
    """``results/<profile>/runs/<kind>-<name>.json`` of a ``compression`` or ``evaluate`` step."""
    f = paths.runs_dir(P.profile) / f"{kind}-{name}.json"
    if not f.is_file():
        raise missing(P, kind, name, f)
    return f


__all__ = ["ablation_table", "corpus_file", "maker", "missing", "model_dir", "run_record", "tokenizer_file"]
