"""The advisory size report (tools/size_report.py): it measures what it says, and fails nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import size_report  # noqa: E402


def test_sizes_are_measured_largest_first(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(80))
    big, small = tmp_path / "big.py", tmp_path / "small.py"
    big.write_text(f"def short():\n    return 1\n\n\nclass C:\n    def long(self):\n{body}\n", encoding="utf-8")
    small.write_text("x = 1\n", encoding="utf-8")
    assert size_report.module_sizes([small, big], root=tmp_path) == [(86, "big.py"), (1, "small.py")]
    assert size_report.function_sizes([big, small], root=tmp_path) == [(81, "big.py:6 long"), (2, "big.py:1 short")]


def test_report_prints_and_exits_0():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "size_report.py"), "--top", "3"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("size report (advisory):") and "largest modules:" in out and "largest functions:" in out
