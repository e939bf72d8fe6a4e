"""What a pipeline step reads, where it lives, and which DVC stage makes it.

A step never builds a missing input (DVC does, from dvc.yaml). Each function here
returns the path of one input of a profile and raises :class:`~tokstudy.errors.MissingInput`
when it is not there; the message names the stage that makes it (:func:`maker`) and the
command to run. Reading the file is the caller's business, so this module stays light
(no tokenizer, model or corpus code in the closure of a step that only needs a path).

The one table of "which stage makes this" is dvc.yaml itself: :func:`maker` finds the stage
whose ``outs`` hold the input's path, so a stage that is renamed, split or merged needs no
second edit here. Outside a checkout (no dvc.yaml, e.g. an installed package) the hint names
the ``tokstudy`` verb or ``python -m tokstudy.stages`` step that makes the input instead.

Outside a checkout: ``tokstudy corpus``, ``tokstudy train --variant V``, ``python -m tokstudy.stages
train R`` / ``transfer T``, or the step function (:data:`KINDS`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from tokstudy import paths
from tokstudy.errors import MissingInput
from tokstudy.params import Params

CORPUS_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl", "manifest.json")
MODEL_MARKER = "config.json"  # a Hugging Face model directory holds it
KINDS = {  # kind -> (the output path dvc.yaml declares, with ${profile}; what makes it outside a checkout)
    "corpus": ("data/${profile}/corpus", "tokstudy corpus --profile {profile}"),
    "tokenizer": ("data/${profile}/tokenizers/{name}", "tokstudy train --variant {name} --profile {profile}"),
    "tokenizer_train": ("results/${profile}/runs/tokenizer_train-{name}.json",
                        "tokstudy train --variant {name} --profile {profile}"),
    "compression": ("results/${profile}/runs/compression-{name}.json",
                    "tokstudy.stages.tokenizers.compression(params.load({profile!r}), {name!r})"),
    "model": ("data/${profile}/models/{name}", "python -m tokstudy.stages train {name} --profile {profile}"),
    "evaluate": ("results/${profile}/runs/evaluate-{name}.json",
                 "tokstudy.stages.evaluation.evaluate(params.load({profile!r}), {name!r})"),
    "ablations": ("results/${profile}/model_ablations.csv",
                  "tokstudy.stages.ablations.model_ablations(params.load({profile!r}))"),
}


@functools.cache
def _stage_outs(dvc_yaml: Path, params_yaml: Path) -> dict[str, tuple[str, str]] | None:
    """``{declared out path: (stage address, notebook)}`` of dvc.yaml (``foreach`` expanded against
    params.yaml, ``${profile}`` left as written); None where there is no dvc.yaml."""
    import yaml

    if not dvc_yaml.is_file():
        return None
    raw = yaml.safe_load(params_yaml.read_text(encoding="utf-8"))
    outs = {}
    for name, stage in (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("stages") or {}).items():
        items: dict = {None: None}
        if "foreach" in stage:  # `foreach: ${a.b}` over a params dict (keys) or list (items)
            node = raw
            for part in str(stage["foreach"]).strip("${}").split("."):
                node = node[part]
            items = {k: k for k in node} if isinstance(node, (dict, list)) else {}
            stage = stage["do"]
        notebook = next((w for w in str(stage.get("cmd", "")).split() if w.endswith(".ipynb")), "")
        for key in items:
            for out in stage.get("outs", []):
                path = out if isinstance(out, str) else next(iter(out))
                if key is not None:
                    path = path.replace("${key}", str(key)).replace("${item}", str(key))
                outs[path] = (name if key is None else f"{name}@{key}", notebook)
    return outs


def maker(P: Params, kind: str, name: str) -> tuple[str, str]:
    """``(dvc stage, notebook)`` that makes input ``name`` of ``kind``, from dvc.yaml's ``outs``.

    ``kind``: ``corpus`` | ``tokenizer`` | ``tokenizer_train`` | ``compression`` | ``model`` | ``evaluate`` |
    ``ablations``.
    An unknown variant or run is a :class:`~tokstudy.errors.ParamsError` (from ``P``); an input that no
    stage of dvc.yaml declares is a ``LookupError`` (a pipeline bug, not a user's). Outside a checkout
    the stage is ``""`` and the second item is the command that makes the input.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown input kind {kind!r}")
    if kind in ("tokenizer", "tokenizer_train") or (kind == "compression" and name in P.tokenizers):
        P.tokenizer(name)  # an unknown variant: ParamsError naming it
    elif kind == "evaluate" or (kind == "model" and not name.endswith("-init")):
        P.replicate(name)  # a run of `models` or one of its replicates <run>-s<k>; else ParamsError naming it
    declared, verb = KINDS[kind]
    outs = _stage_outs(paths.ROOT / "dvc.yaml", paths.PARAMS_FILE)
    if outs is None:
        if kind == "model" and name.endswith("-init") and name not in P.models:  # <target>-<method>-init
            return "", f"python -m tokstudy.stages transfer {name.removesuffix('-init').rsplit('-', 1)[0]} " \
                       f"--profile {P.profile}"
        return "", verb.format(name=name, profile=P.profile)
    out = declared.replace("{name}", name)
    if out not in outs:
        raise LookupError(f"no stage of dvc.yaml declares {out} among its outs")
    return outs[out]


def hint(P: Params, kind: str, name: str) -> str:
    """What to run to make an input: ```dvc repro STAGE` (notebook NB)`` in a checkout, else the command."""
    stage, how = maker(P, kind, name)
    return f"`dvc repro {stage}` (notebook {how})" if stage else f"`{how}`"


def missing(P: Params, kind: str, name: str, path: Path) -> MissingInput:
    """The one error for a missing input: what is missing, where, and the stage that makes it."""
    return MissingInput(f"no {kind} {name!r} for profile {P.profile!r} ({path}): run {hint(P, kind, name)}")


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
    """``results/<profile>/runs/<kind>-<name>.json`` of a ``tokenizer_train``, ``compression`` or ``evaluate`` step."""
    f = paths.runs_dir(P.profile) / f"{kind}-{name}.json"
    if not f.is_file():
        raise missing(P, kind, name, f)
    return f


__all__ = ["ablation_table", "corpus_file", "hint", "maker", "missing", "model_dir", "run_record", "tokenizer_file"]
