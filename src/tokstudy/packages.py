"""Which package version a corpus source reads: Debian (dpkg), PyPI, npm or a JDK.

:func:`versions` gives ``({package: version}, {package: how it was found})``
for the manifest; an unknown package gets ``None`` for both (recorded, not
guessed).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

from tokstudy.params import SourceSpec


@functools.cache
def dpkg_version(pkg: str) -> str | None:
    """The installed Debian version of ``pkg``; None when dpkg does not know it (or is absent)."""
    try:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", pkg],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    v = r.stdout.strip()
    return v if r.returncode == 0 and v else None


def _jdk_release_version(zip_path: str) -> str | None:
    # a JDK's src.zip lives in <jdk>/lib/; <jdk>/release names the build
    release = Path(zip_path).resolve().parent.parent / "release"
    with contextlib.suppress(OSError):
        fields = dict(
            line.split("=", 1) for line in release.read_text(encoding="utf-8").splitlines() if "=" in line
        )
        v = fields.get("JAVA_RUNTIME_VERSION") or fields.get("JAVA_VERSION")
        if v:
            return v.strip('"')
    return None


def package_version(pkg: str, spec: SourceSpec) -> tuple[str | None, str | None]:
    """(version, how it was found) of a package a source reads; (None, None) when unknown."""
    v = dpkg_version(pkg)
    if v:
        return v, "dpkg"
    try:
        return importlib.metadata.version(pkg), "pypi"
    except Exception:  # noqa: BLE001 - unknown distribution, bad metadata: version unknown
        pass
    if spec.root:
        for pj in (Path(spec.root) / pkg / "package.json", Path(spec.root) / "node_modules" / pkg / "package.json"):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                return str(json.loads(pj.read_text(encoding="utf-8"))["version"]), "npm"
    if spec.kind == "zip" and spec.path:
        v = _jdk_release_version(spec.path)
        if v:
            return v, "jdk-release"
    return None, None


def versions(spec: SourceSpec) -> tuple[dict, dict]:
    """``({package: version}, {package: via})`` for every package of ``spec`` (plus Python for the stdlib)."""
    found, via = {}, {}
    if spec.kind == "python-stdlib":
        found["python"], via["python"] = platform.python_version(), "interpreter"
    for pkg in spec.package:
        found[pkg], via[pkg] = package_version(pkg, spec)
    return found, via


__all__ = ["dpkg_version", "package_version", "versions"]
