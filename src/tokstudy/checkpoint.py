"""Training checkpoints on disk: write atomically, list, prune, and find the newest one that loads.

What it does
    A checkpoint is ``<out_dir>/checkpoints/step_NNNNNNN/state.pt``, one
    ``torch.save`` of a dict (model, optimizer, scheduler, per-rank RNG states,
    curves, metrics, and the fingerprint of the run that wrote it). :func:`save`
    writes it through :func:`tokstudy.paths.atomic_dir` and keeps the newest
    ``keep``; :func:`load_latest` returns the newest checkpoint that *loads*,
    skipping (with a warning naming it) a truncated or corrupt one;
    :func:`remove_stale_temps` removes the ``.step_*.tmp`` folders of killed writes.

What it does not do
    No model or optimizer logic: what goes into the state dict, and what a
    mismatching fingerprint means, is :mod:`tokstudy.training`'s business.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokstudy import paths

log = logging.getLogger(__name__)

DIRNAME = "checkpoints"
STATE = "state.pt"
_STEP = re.compile(r"^step_(\d+)$")


def root(out_dir: str | Path) -> Path:
    return Path(out_dir) / DIRNAME


def checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``out_dir/checkpoints``, oldest first (unfinished writes never appear)."""
    r = root(out_dir)
    if not r.is_dir():
        return []
    return sorted(p for p in r.iterdir() if _STEP.match(p.name) and (p / STATE).is_file())


def remove_stale_temps(out_dir: str | Path) -> list[Path]:
    """Remove the temporary folders (``.step_*.XXXXXXXX.tmp``) that killed checkpoint writes left."""
    r = root(out_dir)
    if not r.is_dir():
        return []
    removed = []
    for p in sorted(r.glob(".step_*.tmp")):
        name = p.name[1:].split(".", 1)[0]
        removed += paths.remove_stale_temps(r / name)
    for p in removed:
        log.warning("removed %s, left by an interrupted checkpoint write", p)
    return removed


def save(out_dir: str | Path, step: int, state: Mapping[str, Any], keep: int) -> Path:
    """Write ``state`` as checkpoint ``step`` and delete all but the newest ``keep`` (at least 1)."""
    path = root(out_dir) / f"step_{step:07d}"
    with paths.atomic_dir(path) as tmp:
        torch.save(dict(state), tmp / STATE)
    for old in checkpoints(out_dir)[: -max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_latest(out_dir: str | Path) -> tuple[Path | None, dict | None, list[Path]]:
    """``(path, state, unreadable)``: the newest checkpoint that loads, and the newer ones that did not.

    A checkpoint whose ``state.pt`` cannot be read (truncated by a full disk or
    a killed copy, corrupt) is skipped with a warning naming it, so the run
    resumes from the previous intact one. ``(None, None, unreadable)`` if none loads.
    """
    unreadable: list[Path] = []
    for path in reversed(checkpoints(out_dir)):
        try:
            state = torch.load(path / STATE, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - torch/pickle/zip raise many types for a damaged file
            first = (str(e).splitlines() or [""])[0]
            log.warning("checkpoint %s does not load (%s: %s); trying the previous one",
                        path / STATE, type(e).__name__, first)
            unreadable.append(path)
            continue
        return path, state, unreadable
    return None, None, unreadable


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
