"""Drop dvc.lock entries of stages that dvc.yaml no longer defines (DVC keeps them; `make repro` runs this),
and the executed notebooks under ``runs/<profile>/`` that no stage writes any more.

A stale entry misleads a reader of dvc.lock (results that no stage makes any more) and is never
read by DVC; a stale executed notebook (committed for cpu, so the runs can be read without running them)
shows a run that the pipeline no longer makes. Only ``runs/<profile>/*.ipynb`` of the file's profile is
touched: each is a papermill output of one of our stages. ``--check`` lists both and exits 1 instead of
writing (tests/test_dvc_deps.py).
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


def executed_notebooks(root: Path = ROOT) -> tuple[Path | None, set[Path]]:
    """``(runs/<profile>, the executed notebooks the stages write there)``: each stage command's papermill output."""
    from dvc.repo import Repo

    out: set[Path] = set()
    with Repo(str(root)) as repo:
        for s in repo.index.stages:
            cmd = s.cmd if isinstance(s.cmd, str) else " ".join(s.cmd or [])
            books = [w for w in cmd.split() if w.endswith(".ipynb")]
            if len(books) >= 2 and books[1].startswith("runs/"):
                out.add(root / books[1])
    folders = {p.parent for p in out}
    return (folders.pop() if len(folders) == 1 else None), out


def stale_notebooks(root: Path = ROOT) -> list[Path]:
    """Executed notebooks in ``runs/<profile>/`` that no stage of dvc.yaml writes."""
    folder, written = executed_notebooks(root)
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.ipynb") if p not in written)


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
    books = stale_notebooks()
    if args.check:
        for name in gone:
            print(f"dvc.lock: {name} is no stage of dvc.yaml; run `python tools/prune_lock.py`")
        for book in books:
            print(f"{book.relative_to(ROOT)}: no stage of dvc.yaml writes it; run `python tools/prune_lock.py`")
        return 1 if gone or books else 0
    for book in books:
        book.unlink()
    if books:
        print(f"runs/: removed {len(books)} executed notebooks that no stage writes any more")
    if gone:
        for name in gone:
            del lock["stages"][name]
        with open(path, "w", encoding="utf-8") as fh:
            yaml.dump(lock, fh)
        print(f"dvc.lock: removed {len(gone)} entries of stages dvc.yaml no longer defines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
