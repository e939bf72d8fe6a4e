"""Result tables as text: for the terminal, scripts and papers.

``render(frame, fmt)`` writes one ``pandas.DataFrame`` as an aligned table,
JSON records, CSV, a Markdown (GitHub) table or a LaTeX ``tabular``.
``with_baseline`` adds relative-% columns against one named row, as
nanochat's ``tok_eval`` prints "relative diff %" against GPT-2 / GPT-4.

A named index (e.g. ``tokenizer`` of a pivot table) becomes the first
column(s), so JSON and CSV keep the row labels. JSON and CSV carry full
precision (CSV round-trips through ``pandas.read_csv``); the human formats
round floats to ``digits`` decimals.

>>> import pandas as pd
>>> df = pd.DataFrame({"nsl": [1.0, 0.75]}, index=pd.Index(["llama2", "ours"], name="tokenizer"))
>>> print(render(with_baseline(df, "llama2", ["nsl"]), "csv"), end="")
tokenizer,nsl,nsl vs llama2 %
llama2,1.0,0.0
ours,0.75,-25.0
"""

from __future__ import annotations

import pandas as pd

from tokstudy.errors import TokstudyError

FORMATS = ("table", "json", "csv", "md", "latex")


class TableError(TokstudyError, ValueError):
    """A bad --format or --baseline: the message names the flag and the choices."""


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a named index moved into columns (an unnamed RangeIndex is dropped)."""
    if any(n is not None for n in frame.index.names):
        return frame.reset_index()
    return frame.reset_index(drop=True)


def render(frame: pd.DataFrame, fmt: str, digits: int = 3) -> str:
    """``frame`` as text in ``fmt`` (one of ``FORMATS``), ending with a newline."""
    if fmt not in FORMATS:
        raise TableError(f"--format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    flat = _flat(frame)
    flat.columns = [str(c) for c in flat.columns]
    if fmt == "json":
        return flat.to_json(orient="records", indent=2, force_ascii=False) + "\n"
    if fmt == "csv":
        return flat.to_csv(index=False)
    if fmt == "md":
        return flat.to_markdown(index=False, floatfmt=f".{digits}f") + "\n"
    if fmt == "latex":
        return flat.to_latex(index=False, float_format=f"%.{digits}f", escape=True)
    return flat.to_string(index=False, float_format=f"{{:.{digits}f}}".format) + "\n"


def with_baseline(frame: pd.DataFrame, baseline: str, columns) -> pd.DataFrame:
    """``frame`` plus a ``"<col> vs <baseline> %"`` column per column: ``100 * (value / baseline's value - 1)``.

    ``baseline`` is a row label of ``frame``'s index; its own row gets 0.0.
    Negative = smaller than the baseline (for NSL: fewer tokens).
    """
    if baseline not in frame.index:
        rows = ", ".join(map(str, frame.index))
        raise TableError(f"--baseline {baseline!r} is not a row of the table; give one of: {rows}")
    out = frame.copy()
    for col in columns:
        if col not in frame.columns:
            cols = ", ".join(map(str, frame.columns))
            raise TableError(f"--baseline: no column {col!r} in the table (columns: {cols})")
        base = frame.loc[baseline, col]
        if not pd.api.types.is_number(base) or base == 0 or pd.isna(base):
            raise TableError(f"--baseline {baseline!r}: its {col!r} value is {base!r}; a relative % needs a "
                             "non-zero number, pick another baseline")
        out[f"{col} vs {baseline} %"] = 100.0 * (frame[col] / base - 1.0)
    return out
