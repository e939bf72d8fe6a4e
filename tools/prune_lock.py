"""Drop dvc.lock entries of stages that dvc.yaml no longer defines (DVC keeps them; `make repro` runs this).

A stale entry misleads a reader of dvc.lock (results that no stage makes any more) and is never
read by DVC. ``--check`` lists them and exits 1 instead of writing (tests/test_dvc_deps.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def defined_stages(root: Path = ROOT) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {s.addressing for s in repo.index.stages if getattr(s, "cmd", None)}


def stale(lock: dict, defined: set[str]) -> list[str]:
    """The stage names of ``lock`` (a parsed dvc.lock) that are not in ``defined``."""
    return sorted(set(lock.get("stages", {})) - defined)


def main(argv: list[str] | None = None) -> int:
    from ruamel.yaml import YAML

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="list stale entries and exit 1; write nothing")
    args = ap.parse_args(argv)
    path = ROOT / "dvc.lock"
    yaml = YAML()
    yaml.width = 4096
    lock = yaml.load(path)
    gone = stale(lock, defined_stages())
    if args.check:
        for name in gone:
            print(f"dvc.lock: {name} is no stage of dvc.yaml; run `python tools/prune_lock.py`")
        return 1 if gone else 0
    if gone:
        for name in gone:
            del lock["stages"][name]
        with open(path, "w", encoding="utf-8") as fh:
            yaml.dump(lock, fh)
        print(f"dvc.lock: removed {len(gone)} entries of stages dvc.yaml no longer defines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
