"""Result tables as text: for the terminal, scripts and papers.

``render(frame, fmt)`` writes one ``pandas.DataFrame`` as an aligned table,
JSON records, CSV, a Markdown (GitHub) table or a LaTeX ``tabular``.
``with_baseline`` adds relative-% columns against one named row, as
nanochat's ``tok_eval`` prints "relative diff %" against GPT-2 / GPT-4.

A named index (e.g. ``tokenizer`` of a pivot table) becomes the first
column(s), so JSON and CSV keep the row labels. JSON and CSV carry full
precision (CSV round-trips through ``pandas.read_csv``); the human formats
round floats to ``digits`` decimals and leave missing values empty.

>>> import pandas as pd
>>> df = pd.DataFrame({"nsl": [1.0, 0.75]}, index=pd.Index(["llama2", "ours"], name="tokenizer"))
>>> print(render(with_baseline(df, "llama2", ["nsl"]), "csv"), end="")
tokenizer,nsl,nsl vs llama2 %
llama2,1.0,0.0
ours,0.75,-25.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokstudy.errors import TableError

if TYPE_CHECKING:  # pandas is imported on use: `tokstudy --help` stays fast
    import pandas as pd

FORMATS = ("table", "json", "csv", "md", "latex")


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
        return flat.to_markdown(index=False, floatfmt=f".{digits}f", missingval="") + "\n"
    if fmt == "latex":
        return flat.to_latex(index=False, float_format=f"%.{digits}f", escape=True, na_rep="")
    return flat.to_string(index=False, float_format=f"{{:.{digits}f}}".format, na_rep="") + "\n"


def check_baseline(baseline: str, labels):
    """The row label in ``labels`` that ``baseline`` names (compared as text); else a one-line error listing them.

    Call it before the work that makes the table, so a typo fails at once.
    """
    labels = list(dict.fromkeys(labels))
    match = [lab for lab in labels if str(lab) == str(baseline)]
    if not match:
        names = ", ".join(map(str, labels))
        raise TableError(f"--baseline {baseline!r} is not a row of the table; give one of: {names}")
    return match[0]


def with_baseline(frame: pd.DataFrame, baseline: str, columns, level: str | None = None) -> pd.DataFrame:
    """``frame`` plus a ``"<col> vs <baseline> %"`` column per column: ``100 * (value / baseline's value - 1)``.

    ``baseline`` is a row label of ``frame``'s index (compared as text, so ``"300"``
    finds the row ``300``); its own row gets 0.0. With a MultiIndex, ``level`` names
    the level holding ``baseline`` and each row is compared with the baseline row
    that shares its other levels (e.g. the same dataset).
    Negative = smaller than the baseline (for NSL: fewer tokens).
    """
    import pandas as pd

    match = check_baseline(baseline, frame.index.get_level_values(level) if level else frame.index)
    out = frame.copy()
    for col in columns:
        if col not in frame.columns:
            cols = ", ".join(map(str, frame.columns))
            raise TableError(f"--baseline: no column {col!r} in the table (columns: {cols})")
        if level:
            denom = frame[col].xs(match, level=level).reindex(frame.index.droplevel(level)).to_numpy()
        else:
            denom = frame.loc[[match], col].to_numpy()[:1].repeat(len(frame))
        bad = [i for i, d in enumerate(denom) if not pd.api.types.is_number(d) or pd.isna(d) or d == 0]
        if bad:
            row, value = frame.index[bad[0]], denom[bad[0]]
            raise TableError(f"--baseline {baseline!r}: its {col!r} for row {row} is {value} (a relative % needs a "
                             "non-zero number); pick another baseline")
        out[f"{col} vs {baseline} %"] = 100.0 * (frame[col].to_numpy() / denom - 1.0)
    return out
