"""Run records with provenance, and the tidy results table built from them.

Every run (a tokenizer's metrics, an embedding transfer, a fine-tune, ...)
writes one JSON file under ``results/<profile>/runs/``::

    {"kind": "tokenizer_metrics", "name": "gpt4-m",
     "provenance": {"git_commit": ..., "git_dirty": ..., "params": {...},
                    "seed": ..., "inputs": {path: sha256}, "versions": {...},
                    "created": ...},
     "rows": [{"metric": "nsl", "value": 0.81, "dataset": "python", ...}, ...]}

:func:`collect` concatenates the rows of every run into one tidy CSV (one
metric value per line), which is the only input of :mod:`tokstudy.plots`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokstudy import paths, threads

log = logging.getLogger(__name__)

ID_COLUMNS = ("profile", "kind", "run")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | Path) -> str:
    """A hash of a file, or of every file under a directory (names + contents)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def git_state(root: Path = paths.ROOT) -> dict[str, Any]:
    def run(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def _versions() -> dict[str, str]:
    """Installed versions from package metadata (no imports: torch alone takes seconds)."""
    out = {"python": platform.python_version()}
    for dist in ("tokstudy", "tokenizers", "transformers", "torch", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:  # a missing optional package is not an error here
            pass
    return out


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "raw"}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def provenance(params: Any = None, seed: int | None = None, inputs: Iterable[str | Path] = ()) -> dict:
    """Git commit, params, seed, input hashes, package versions and CPU thread/kernel settings for a run."""
    hashes = {}
    for p in inputs:
        p = Path(p)
        if p.exists():
            hashes[paths.relative(p)] = sha256_tree(p)
    return {
        **git_state(),
        "params": _jsonable(params),
        "seed": seed,
        "inputs": hashes,
        "versions": _versions(),
        "cpu_kernels": threads.recorded(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_run(
    profile: str,
    kind: str,
    name: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    params: Any = None,
    seed: int | None = None,
    inputs: Iterable[str | Path] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write one run's rows and provenance to ``results/<profile>/runs/<kind>-<name>.json``."""
    rows = [_jsonable(dict(r)) for r in rows]
    for r in rows:
        if "metric" not in r or "value" not in r:
            raise ValueError(f"every result row needs 'metric' and 'value'; got {sorted(r)}")
    record = {
        "profile": profile,
        "kind": kind,
        "name": name,
        "provenance": provenance(params, seed, inputs),
        "rows": rows,
        **({"extra": _jsonable(extra)} if extra else {}),
    }
    path = paths.runs_dir(profile) / f"{kind}-{name}.json"
    paths.atomic_write(path, json.dumps(record, indent=1, sort_keys=False) + "\n")
    log.info("wrote %d result rows to %s", len(rows), path)
    return path


def read_run(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def paper_rows(paper_dir: str | Path | None = None) -> list[dict]:
    """The paper's numbers (``data/paper/*.csv``) as tidy rows with ``profile="paper"``."""
    import pandas as pd

    d = Path(paper_dir) if paper_dir else paths.DATA / "paper"
    rows: list[dict] = []
    if (f := d / "table1_nsl.csv").is_file():
        for r in pd.read_csv(f).to_dict("records"):
            rows.append({"kind": "paper_table1", "run": r["tokenizer"], "tokenizer": r["tokenizer"],
                         "vocab_size": r["vocab_size"], "dataset": f"mean:{r['domain']}",
                         "domain": r["domain"], "metric": "nsl", "value": r["nsl"], "source": r["source"]})
    if (f := d / "vocab_sweep.csv").is_file():
        for r in pd.read_csv(f).to_dict("records"):
            for domain in ("code", "english", "multilingual"):  # Rényi: code and English only
                for metric, col in (("nsl", f"nsl_{domain}"), ("renyi_efficiency", f"renyi_{domain}")):
                    if col not in r:
                        continue
                    rows.append({"kind": "paper_sweep", "run": f"gpt4-{r['vocab_size']}", "tokenizer": "gpt4",
                                 "regex": "gpt4", "mix": "code70", "vocab_size": r["vocab_size"],
                                 "dataset": f"mean:{domain}", "domain": domain, "metric": metric,
                                 "value": r[col], "source": "the authors' released compression_results.csv"})
    if (f := d / "regex_ablation.csv").is_file():
        for r in pd.read_csv(f).to_dict("records"):
            rows.append({"kind": "paper_regex", "run": r["regex"], "regex": r["regex"], "vocab_size": r["vocab_size"],
                         "dataset": "mean:code", "domain": "code", "metric": "nsl", "value": r["nsl_code"],
                         "source": r["source"]})
            rows.append({"kind": "paper_regex", "run": r["regex"], "regex": r["regex"], "vocab_size": r["vocab_size"],
                         "dataset": "humaneval", "metric": "humaneval_pass@1", "value": r["humaneval_pass1"] / 100,
                         "source": r["source"]})
    if (f := d / "transfer.csv").is_file():
        for r in pd.read_csv(f).to_dict("records"):
            for metric, col in (("humaneval_pass@1", "humaneval_pass1"), ("humaneval_pass@100", "humaneval_pass100"),
                                ("mbpp_pass@1", "mbpp_pass1"), ("mbpp_pass@100", "mbpp_pass100")):
                rows.append({"kind": "paper_transfer", "run": r["condition"], "method": r["condition"],
                             "metric": metric, "value": r[col] / 100, "source": r["source"]})
    for r in rows:
        r["profile"] = "paper"
    return rows


def collect(profile: str, extra_dirs: Iterable[str | Path] = (), include_paper: bool = True):
    """Build the tidy results table of ``profile`` and write it as CSV.

    ``extra_dirs`` adds run directories of other profiles (e.g. committed GPU
    results) so figures can show them beside the local numbers; their rows keep
    their own ``profile`` column.
    """
    import pandas as pd

    records = []
    dirs = [paths.runs_dir(profile), *map(Path, extra_dirs)]
    for d in dirs:
        for f in sorted(Path(d).glob("*.json")):
            run = read_run(f)
            prov = run.get("provenance", {})
            for row in run["rows"]:
                records.append(
                    {
                        "profile": run.get("profile", profile),
                        "kind": run["kind"],
                        "run": run["name"],
                        **row,
                        "git_commit": prov.get("git_commit"),
                    }
                )
    if not records:
        raise FileNotFoundError(
            f"no run records under {[str(d) for d in dirs]}; run the pipeline (dvc repro) or the notebooks first"
        )
    if include_paper:
        records.extend(paper_rows())
    df = pd.DataFrame.from_records(records)
    front = [c for c in (*ID_COLUMNS, "metric", "value") if c in df.columns]
    df = df[front + [c for c in df.columns if c not in front]]
    out = paths.results_csv(profile)
    paths.atomic_write(out, df.to_csv(index=False))
    log.info("collected %d rows from %d run directories into %s", len(df), len(dirs), out)
    return df
