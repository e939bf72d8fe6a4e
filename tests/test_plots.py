"""tokstudy.plots: figures drawn from synthetic tidy rows."""

import pandas as pd

from tokstudy import paths, plots


def test_speed_check_draws_png_and_pdf_from_csv_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "figures_dir", lambda profile: tmp_path / profile)
    common = {"profile": "smoke", "kind": "costs", "run": "costs", "anchor": "a", "source": "random-weights"}
    rows = [{**common, "metric": "speed_measured_ratio", "tokenizer": t, "vocab_size": v, "value": x}
            for t, v, x in (("a", 300, 1.0), ("b", 400, 1.2))]
    for regime, pred in (("steps", 1.25), ("compute", 1.1)):
        rows += [{**common, "metric": "speed_predicted_ratio", "tokenizer": "a", "vocab_size": 300, "value": 1.0,
                  "regime": regime, "primary": regime == "steps"},
                 {**common, "metric": "speed_predicted_ratio", "tokenizer": "b", "vocab_size": 400, "value": pred,
                  "regime": regime, "primary": regime == "steps"},
                 {**common, "metric": "speed_prediction_mae", "value": abs(1.2 / pred - 1), "regime": regime,
                  "primary": regime == "steps"}]
    df = pd.DataFrame(rows)
    out = plots.speed_check(df, "smoke")
    assert [p.name for p in out] == ["speed_check.png", "speed_check.pdf"]
    assert all(p.parent == tmp_path / "smoke" and p.stat().st_size > 0 for p in out)
    assert plots.FIGURES["speed_check"] is plots.speed_check
    assert plots.speed_check(df[df["metric"] != "speed_measured_ratio"], "smoke") is None
