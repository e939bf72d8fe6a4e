"""Reading ``params.yaml``: the raw mapping, profile layers, and errors that name YAML paths.

:func:`read_yaml` gives the file's mapping; :class:`Loader` resolves a section
with ``profiles.<p>.<section>`` deep-merged over it (:func:`merge`) and builds a
validated dataclass from it, turning every validation error into one
:class:`ParamsError` that names the YAML path the bad value came from
(:func:`origin`) and the file.  What the sections hold is :mod:`tokstudy.params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import pydantic
import yaml

from tokstudy import paths
from tokstudy.errors import ParamsError


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    """``base`` updated by ``over``, recursively for nested mappings (profile overrides)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path | None = None) -> dict:
    """The raw mapping of a params file; a syntax error is a one-line :class:`ParamsError` naming file and line."""
    path = Path(path) if path else paths.PARAMS_FILE
    if not path.is_file():
        raise ParamsError(f"no params file at {path}; give an existing params.yaml")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise ParamsError(f"{where}: YAML syntax error ({what}); fix the file's syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


class Loader:
    """One load of one file: the raw mapping, the profile, and errors that name YAML paths and the file."""

    def __init__(self, raw: dict, profile: str, file: Path):
        self.raw, self.profile, self.file = raw, profile, file
        self.prof = raw["profiles"][profile] or {}

    def fail(self, ypath: str, problem: str) -> ParamsError:
        return ParamsError(f"{self.file}: {ypath}: {problem}")

    def need(self, mapping: Mapping, key: str, ypath: str) -> Any:
        if not isinstance(mapping, Mapping):
            raise self.fail(ypath, f"must be a mapping, got {mapping!r}")
        if key not in mapping:
            raise self.fail(f"{ypath}.{key}" if ypath else key, "missing key; add it to params.yaml")
        return mapping[key]

    def section(self, name: str) -> tuple[dict, list[tuple[str, Mapping]]]:
        """Top-level ``name`` with ``profiles.<p>.name`` merged over it, and the layers (most specific first)."""
        base = self.need(self.raw, name, "")
        over = self.prof.get(name) or {}
        for ypath, value in ((name, base), (f"profiles.{self.profile}.{name}", over)):
            if not isinstance(value, Mapping):
                raise self.fail(ypath, f"must be a mapping, got {value!r}")
        return merge(base, over), [(f"profiles.{self.profile}.{name}", over), (name, base)]

    def build(self, cls, data: Mapping, layers: list[tuple[str, Mapping]], home: str | None = None, **resolved):
        """``cls(**data, **resolved)``; a validation error names the YAML path the bad value came from
        (a missing key: under ``home``, by default the least specific layer)."""
        try:
            return cls(**data, **resolved)
        except pydantic.ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = [str(p) for p in err["loc"] if not isinstance(p, int)]  # list indices: the list's path
                ypath = origin(layers, loc, missing=err["type"] == "missing")
                if err["type"] == "missing" and home:
                    ypath = ".".join([home, *loc])
                if err["type"] == "missing":
                    problems.append(f"{ypath}: missing key; add it to params.yaml")
                elif err["type"] == "unexpected_keyword_argument":
                    allowed = sorted(f.name for f in fields(cls) if f.name not in resolved)
                    problems.append(f"{ypath}: unknown key; allowed: {allowed}")
                elif err["type"] == "value_error":  # a check of several fields (__post_init__)
                    problems.append(f"{ypath}: {err['msg'].removeprefix('Value error, ')}")
                else:
                    problems.append(f"{ypath}: {err['msg']} (got {repr(err.get('input'))[:80]})")
            raise ParamsError(f"{self.file}: " + "; ".join(problems)) from None


def origin(layers: list[tuple[str, Mapping]], loc: list[str], missing: bool) -> str:
    """The YAML path of ``loc``: in the most specific layer that holds it (a missing key: the base layer)."""
    if not loc:
        return next((prefix for prefix, data in layers if data), layers[-1][0])
    if not missing:
        for prefix, data in layers:
            node, found = data, True
            for part in loc:
                if isinstance(node, Mapping) and part in node:
                    node = node[part]
                else:
                    found = False
                    break
            if found:
                return ".".join([prefix, *loc])
    return ".".join([layers[-1][0], *loc])
