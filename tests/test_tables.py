"""tables.render / with_baseline: hand-checked strings, round-trips and one-line errors."""

import io
import json

import pandas as pd
import pytest

from tokstudy import tables


@pytest.fixture
def nsl():
    return pd.DataFrame({"python": [1.0, 0.9123], "c_cpp": [2.0, 2.5]},
                        index=pd.Index(["llama2", "ours"], name="tokenizer"))


def test_with_baseline_hand_computed(nsl):
    out = tables.with_baseline(nsl, "llama2", ["python", "c_cpp"])
    assert list(out.columns) == ["python", "c_cpp", "python vs llama2 %", "c_cpp vs llama2 %"]
    assert out.loc["llama2", "python vs llama2 %"] == 0.0
    assert out.loc["ours", "python vs llama2 %"] == pytest.approx(-8.77)  # 100 * (0.9123 / 1.0 - 1)
    assert out.loc["ours", "c_cpp vs llama2 %"] == pytest.approx(25.0)  # 100 * (2.5 / 2.0 - 1)
    assert list(nsl.columns) == ["python", "c_cpp"]  # the input is not changed


def test_render_table_md_latex_exact(nsl):
    assert tables.render(nsl, "table") == ("tokenizer  python  c_cpp\n"
                                           "   llama2   1.000  2.000\n"
                                           "     ours   0.912  2.500\n")
    assert tables.render(nsl, "md") == ("| tokenizer   |   python |   c_cpp |\n"
                                        "|:------------|---------:|--------:|\n"
                                        "| llama2      |    1.000 |   2.000 |\n"
                                        "| ours        |    0.912 |   2.500 |\n")
    assert tables.render(tables.with_baseline(nsl, "llama2", ["python"]), "latex") == (
        "\\begin{tabular}{lrrr}\n\\toprule\n"
        "tokenizer & python & c\\_cpp & python vs llama2 \\% \\\\\n\\midrule\n"
        "llama2 & 1.000 & 2.000 & 0.000 \\\\\n"
        "ours & 0.912 & 2.500 & -8.770 \\\\\n\\bottomrule\n\\end{tabular}\n")


def test_json_parses_and_csv_round_trips_full_precision(nsl):
    assert json.loads(tables.render(nsl, "json")) == [
        {"tokenizer": "llama2", "python": 1.0, "c_cpp": 2.0},
        {"tokenizer": "ours", "python": 0.9123, "c_cpp": 2.5}]
    back = pd.read_csv(io.StringIO(tables.render(nsl, "csv")), index_col="tokenizer")
    pd.testing.assert_frame_equal(back, nsl)


def test_unnamed_range_index_is_not_a_column():
    df = pd.DataFrame({"metric": ["nsl"], "value": [0.5]})
    assert tables.render(df, "csv") == "metric,value\nnsl,0.5\n"


def test_unknown_format_is_one_line_error(nsl):
    msg = r"^--format 'xlsx' is unknown; use one of table, json, csv, md, latex$"
    with pytest.raises(tables.TableError, match=msg):
        tables.render(nsl, "xlsx")


def test_unknown_baseline_names_the_rows(nsl):
    msg = r"^--baseline 'gpt2' is not a row of the table; give one of: llama2, ours$"
    with pytest.raises(tables.TableError, match=msg):
        tables.with_baseline(nsl, "gpt2", ["python"])


def test_zero_or_missing_baseline_value_is_an_error(nsl):
    nsl.loc["llama2", "python"] = 0.0
    with pytest.raises(tables.TableError, match="non-zero number"):
        tables.with_baseline(nsl, "llama2", ["python"])
    with pytest.raises(tables.TableError, match="no column 'java'"):
        tables.with_baseline(nsl, "ours", ["java"])
